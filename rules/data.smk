# Dataset preparation: scripted-expert demonstrations recorded in the simulator.


rule prepare_demos:
    output:
        directory(P.demos_dir("{benchmark}")),
    params:
        cfg=CONFIG_ARGS,
        spec=spec(P.demo_spec, "benchmark"),
    log:
        "logs/prepare_demos/{benchmark}.log",
    benchmark:
        "logs/benchmarks/prepare_demos/{benchmark}.tsv"
    threads: 1
    shell:
        "python workflow_scripts/prepare_demos.py {params.cfg} --benchmark {wildcards.benchmark}"
        " --out {output} > {log} 2>&1"
