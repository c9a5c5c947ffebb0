# One target rule per paper artifact. Each builds only what it needs.


rule table_main:
    input:
        evals=main_eval_files(),
        policies=main_policy_dirs(),
    output:
        csv=P.TABLE_MAIN["csv"],
        md=P.TABLE_MAIN["md"],
    params:
        cfg=CONFIG_ARGS,
        spec=lambda w: canonical_json(P.table_main_spec(config)),
    log:
        "logs/table_main.log",
    shell:
        "{PY} workflow_scripts/table_main.py {params.cfg} --out-csv {output.csv}"
        " --out-md {output.md} > {log} 2>&1"


rule figure_main:
    input:
        P.TABLE_MAIN["csv"],
    output:
        png=P.FIGURE_MAIN["png"],
        svg=P.FIGURE_MAIN["svg"],
    log:
        "logs/figure_main.log",
    shell:
        "{PY} workflow_scripts/figure_main.py --table {input} --png {output.png}"
        " --svg {output.svg} > {log} 2>&1"
