# Every stage of the pipeline, one rule each, from the stage table (vlm4vla.pipeline.STAGES):
# the same inputs, outputs, command and re-run trigger that dvc.yaml gets from it. Targets:
#   snakemake --cores all table_main | table_ablation | table_init | table_vision_supervision
#                         figure_main | figure_aux | figure_capability | table_paper_vs_reproduced


for _name, _st in P.STAGES.items():
    if _st.wildcards or _st.jobs(config):  # one-job stages exist when their experiment does

        rule:
            name:
                _name
            input:
                unpack(stage_inputs(_name)),
            output:
                **stage_outputs(_name),
            params:
                cmd=stage_command(_name),
                spec=stage_spec(_name),
            log:
                stage_log(_name, "logs", ".log"),
            benchmark:
                stage_log(_name, "logs/benchmarks", ".tsv")
            threads: _st.threads(config)
            resources:
                **({"gpu": TRAIN_GPUS} if _st.train else {}),
            shell:
                "{params.cmd} > {log} 2>&1"
