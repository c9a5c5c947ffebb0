# One target rule per paper artifact, each building only what it needs:
#   snakemake --cores all table_main | table_ablation | table_init | table_vision_supervision
#                         figure_main | figure_aux | figure_capability
#                         table_paper_vs_reproduced


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
            "python workflow_scripts/make_table.py {params.cfg} --table {params.table}"
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
        "python workflow_scripts/table_paper_vs_reproduced.py {params.cfg} --reported {input.reported}"
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
        "python workflow_scripts/figure_main.py --table {input} --png {output.png}"
        " --svg {output.svg} > {log} 2>&1"


if config["experiments"].get("aux"):

    rule figure_aux:
        input:
            **aux_inputs(),
        output:
            csv=P.AUX_TABLE["csv"],
            md=report(P.AUX_TABLE["md"], caption="../report/table_aux.rst", category="Tables"),
            png=report(P.FIGURE_AUX["png"], caption="../report/figure_aux.rst", category="Figures"),
            svg=P.FIGURE_AUX["svg"],
        params:
            cfg=CONFIG_ARGS,
            spec=canonical_json(P.aux_spec(config)),
        log:
            "logs/figure_aux.log",
        shell:
            "python workflow_scripts/figure_aux.py {params.cfg} --out-csv {output.csv} --out-md {output.md}"
            " --png {output.png} --svg {output.svg} > {log} 2>&1"


if config["experiments"].get("capability"):

    rule figure_capability:
        input:
            **capability_inputs(),
        output:
            csv=P.CAPABILITY_TABLE["csv"],
            corr=P.CAPABILITY_CORR,
            md=report(P.CAPABILITY_TABLE["md"], caption="../report/table_capability.rst",
                      category="Tables"),
            png=report(P.FIGURE_CAPABILITY["png"], caption="../report/figure_capability.rst",
                       category="Figures"),
            svg=P.FIGURE_CAPABILITY["svg"],
        params:
            cfg=CONFIG_ARGS,
            spec=canonical_json(P.capability_spec(config)),
        log:
            "logs/figure_capability.log",
        shell:
            "python workflow_scripts/figure_capability.py {params.cfg} --out-csv {output.csv}"
            " --out-corr {output.corr} --out-md {output.md} --png {output.png} --svg {output.svg}"
            " > {log} 2>&1"
