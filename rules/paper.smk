# One target rule per paper artifact, each building only what it needs:
#   snakemake --cores all table_main | table_ablation | table_init | figure_main
#                         table_paper_vs_reproduced


def table_inputs(table):
    runs = P.table_runs(config, table)
    return {"evals": [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs],
            "policies": [P.policy_dir(b, r) for b, r in runs]}


for _table in P.RUN_TABLES:

    rule:
        name:
            f"table_{_table}"
        input:
            **table_inputs(_table),
        output:
            csv=P.table_paths(_table)["csv"],
            md=report(P.table_paths(_table)["md"], caption=f"../report/table_{_table}.rst",
                      category="Tables"),
        params:
            cfg=CONFIG_ARGS,
            table=_table,
            spec=canonical_json(P.table_spec(config, _table)),
        log:
            f"logs/table_{_table}.log",
        shell:
            "{PY} workflow_scripts/make_table.py {params.cfg} --table {params.table}"
            " --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule table_paper_vs_reproduced:
    input:
        reported=P.PAPER_REPORTED,
        tables=[P.table_paths(t)["csv"] for t in P.active_tables(config)],
    output:
        csv=P.TABLE_PAPER["csv"],
        md=report(P.TABLE_PAPER["md"], caption="../report/table_paper_vs_reproduced.rst",
                  category="Tables"),
    params:
        cfg=CONFIG_ARGS,
        tables=" ".join(f"--table {t}={P.table_paths(t)['csv']}" for t in P.active_tables(config)),
        spec=canonical_json(P.paper_spec(config)),
    log:
        "logs/table_paper_vs_reproduced.log",
    shell:
        "{PY} workflow_scripts/table_paper_vs_reproduced.py {params.cfg} --reported {input.reported}"
        " {params.tables} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule figure_main:
    input:
        P.TABLE_MAIN["csv"],
    output:
        png=report(P.FIGURE_MAIN["png"], caption="../report/figure_main.rst", category="Figures"),
        svg=P.FIGURE_MAIN["svg"],
    log:
        "logs/figure_main.log",
    shell:
        "{PY} workflow_scripts/figure_main.py --table {input} --png {output.png}"
        " --svg {output.svg} > {log} 2>&1"
