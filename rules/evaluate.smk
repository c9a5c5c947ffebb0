# Closed-loop evaluation of a trained policy in the simulator, on held-out initial states.


rule evaluate:
    input:
        policy=P.policy_dir("{benchmark}", "{model}"),
    output:
        summary=f"{P.eval_dir('{benchmark}', '{model}')}/summary.json",
        episodes=f"{P.eval_dir('{benchmark}', '{model}')}/episodes.jsonl",
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.eval_spec, "benchmark", "model"),
        out=lambda w: P.eval_dir(w.benchmark, w.model),
    log:
        "logs/evaluate/{benchmark}/{model}.log",
    benchmark:
        "logs/benchmarks/evaluate/{benchmark}/{model}.tsv"
    threads: config["evaluate"]["workers"]
    shell:
        "python workflow_scripts/evaluate.py {params.cfg} --benchmark {wildcards.benchmark}"
        " --model {wildcards.model} --policy {input.policy} --out {params.out}"
        " --workers {threads} > {log} 2>&1"
