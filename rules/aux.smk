# Auxiliary embodied VQA (Figure 4, Figure 3's x axis) and FAST action-token stage 1
# (Table 4): the VLM with its own language-model head, before any VLA training.


wildcard_constraints:
    vlm=r"base|aux_[A-Za-z0-9_]+",
    stage1="|".join(P.STAGE1),


rule generate_vqa:
    output:
        directory(P.VQA_DATA),
    params:
        cfg=CONFIG_ARGS,
        spec=canonical_json(P.vqa_data_spec(config)) if config.get("vqa") else "",
    log:
        "logs/generate_vqa.log",
    benchmark:
        "logs/benchmarks/generate_vqa.tsv"
    threads: 1
    shell:
        "python workflow_scripts/generate_vqa.py {params.cfg} --out {output} > {log} 2>&1"


rule pretrain_vlm:
    input:
        vqa=P.VQA_DATA,
    output:
        directory(P.vlm_dir("{model}", P.PRETRAIN_VLM)),
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.pretrain_spec, "model"),
        state=lambda w: P.vlm_state_dir(w.model, P.PRETRAIN_VLM),
        launcher=lambda w, resources: launcher(resources.gpu),
    log:
        "logs/pretrain_vlm/{model}.log",
    benchmark:
        "logs/benchmarks/pretrain_vlm/{model}.tsv"
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS,
    shell:
        "{params.launcher} workflow_scripts/finetune_vlm.py {params.cfg} --model {wildcards.model}"
        f" --vlm {P.PRETRAIN_VLM} --vqa {{input.vqa}} --out {{output}} --state {{params.state}} > {{log}} 2>&1"


rule finetune_vlm:
    input:
        vqa=P.VQA_DATA,
        start=pretrained_vlm,
    output:
        directory(P.vlm_dir("{model}", "{vlm}")),
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.vlm_train_spec, "model", "vlm"),
        state=lambda w: P.vlm_state_dir(w.model, w.vlm),
        launcher=lambda w, resources: launcher(resources.gpu),
    log:
        "logs/finetune_vlm/{model}/{vlm}.log",
    benchmark:
        "logs/benchmarks/finetune_vlm/{model}/{vlm}.tsv"
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS,
    shell:
        "{params.launcher} workflow_scripts/finetune_vlm.py {params.cfg} --model {wildcards.model}"
        " --vlm {wildcards.vlm} --vqa {input.vqa} --out {output} --state {params.state} > {log} 2>&1"


rule eval_vqa:
    input:
        vqa=P.VQA_DATA,
        vlm=lambda w: [] if w.vlm == "base" else [P.vlm_dir(w.model, w.vlm)],
        start=pretrained_vlm,
    output:
        metrics=f"{P.vqa_eval_dir('{model}', '{vlm}')}/metrics.json",
        predictions=f"{P.vqa_eval_dir('{model}', '{vlm}')}/predictions.jsonl",
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.vqa_eval_spec, "model", "vlm"),
        out=lambda w: P.vqa_eval_dir(w.model, w.vlm),
        weights=lambda w: "" if w.vlm == "base" else f"--weights {P.vlm_dir(w.model, w.vlm)}",
    log:
        "logs/eval_vqa/{model}/{vlm}.log",
    benchmark:
        "logs/benchmarks/eval_vqa/{model}/{vlm}.tsv"
    threads: config["threads"]
    shell:
        "python workflow_scripts/eval_vqa.py {params.cfg} --model {wildcards.model} --vlm {wildcards.vlm}"
        " --vqa {input.vqa} {params.weights} --out {params.out} > {log} 2>&1"


rule stage1_fast:
    input:
        demos=P.demos_dir("{benchmark}"),
        start=pretrained_vlm,
    output:
        directory(P.fast_vlm_dir("{benchmark}", "{model}", "{stage1}")),
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.stage1_spec, "benchmark", "model", "stage1"),
        state=lambda w: P.fast_state_dir(w.benchmark, w.model, w.stage1),
        launcher=lambda w, resources: launcher(resources.gpu),
    log:
        "logs/stage1_fast/{benchmark}/{model}/{stage1}.log",
    benchmark:
        "logs/benchmarks/stage1_fast/{benchmark}/{model}/{stage1}.tsv"
    threads: config["threads"]
    resources:
        gpu=TRAIN_GPUS,
    shell:
        "{params.launcher} workflow_scripts/stage1_fast.py {params.cfg} --benchmark {wildcards.benchmark}"
        " --model {wildcards.model} --stage1 {wildcards.stage1} --demos {input.demos} --out {output}"
        " --state {params.state} > {log} 2>&1"
