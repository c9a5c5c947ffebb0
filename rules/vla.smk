# VLA fine-tuning: VLM backbone + ActionQuery + MLP head on the demonstrations.


rule finetune_vla:
    input:
        demos=P.demos_dir("{benchmark}"),
        # the aux-tuned / stage-1 VLM a run starts from (none for scratch / pretrained)
        vlm=lambda w: P.start_vlm_input(config, w.benchmark, w.model),
    output:
        directory(P.policy_dir("{benchmark}", "{model}")),
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.train_spec, "benchmark", "model"),
        state=lambda w: P.state_dir(w.benchmark, w.model),
        launcher=lambda w, resources: launcher(resources.gpu),
    log:
        "logs/finetune_vla/{benchmark}/{model}.log",
    benchmark:
        "logs/benchmarks/finetune_vla/{benchmark}/{model}.tsv"
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS,
    shell:
        "{params.launcher} workflow_scripts/finetune_vla.py {params.cfg} --benchmark {wildcards.benchmark}"
        " --model {wildcards.model} --demos {input.demos} --out {output} --state {params.state}"
        " > {log} 2>&1"
