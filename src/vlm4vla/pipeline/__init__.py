"""The stage graph, in one place, for both orchestrators (`from vlm4vla import pipeline as P`).

The stage table (stages.py) declares every stage once; the Snakemake rules (rules/stages.smk)
and the DVC stage generator (workflow_scripts/make_dvc_yaml.py) are both built from it, so the
two tools cannot drift apart. A spec is the exact config fragment a stage's result depends on:
Snakemake gets it as a rule param (change it -> that rule re-runs, nothing else), the stage's
script reads its settings from it, and DVC tracks the keys it reads (trace.py) as params.

Modules, one job each (everything is re-exported here, so callers write `P.<name>`):
    paths.py        artifact paths
    runs.py         the run-name grammar and the model config a run name stands for
    experiments.py  which runs and VLM jobs each table and figure needs
    specs.py        each stage's spec (the config slice its result depends on)
    trace.py        the config keys a spec reads (DVC params)
    stages.py       the stage table: script, arguments, inputs, outputs, spec, code per stage
"""

from .paths import (  # noqa: F401
    AUX_TABLE, CAPABILITY_CORR, CAPABILITY_TABLE, EVAL_FILES, FIGURE_AUX, FIGURE_CAPABILITY,
    FIGURE_MAIN, GENERAL_SCORES, PAPER_REPORTED, RESULTS, TABLE_MAIN, TABLE_PAPER, VQA_DATA,
    demos_dir, eval_dir, fast_state_dir, fast_vlm_dir, policy_dir, state_dir, table_paths,
    vlm_dir, vlm_state_dir, vqa_eval_dir)
from .runs import (  # noqa: F401
    AUX_PREFIX, FAST_PREFIX, LABEL_KEYS, PRETRAIN_VLM, SEED_PREFIX, STAGE1, VARIANTS,
    VARIANT_SEP, base_model_cfg, model_cfg, parse_run, pretrain_input, run_name, run_seed,
    seeded, split_run, start_model, start_vlm, start_vlm_input)
from .experiments import (  # noqa: F401
    RUN_TABLES, AuxArm, RunTable, ablation_runs, active_tables, all_runs, aux_arm_list, aux_arms,
    aux_runs, aux_vlm_jobs, capability_runs, init_runs, main_grid, main_runs, pretrain_jobs, stage1_jobs,
    supports_vqa, table_runs, vision_runs, vqa_eval_jobs)
from .specs import (  # noqa: F401
    BENCH_EVAL_KEYS, BENCH_TRAIN_KEYS, EVAL_ONLY_KEYS, EVAL_VIEW_KEYS, aux_spec, capability_spec, demo_spec,
    eval_spec, paper_spec, pretrain_spec, stage1_spec, table_spec, train_spec, vlm_train_spec,
    vqa_data_spec, vqa_eval_spec)
from .trace import pick, read_keys, without  # noqa: F401
from .stages import (  # noqa: F401
    STAGES, Stage, artifact_paths, job_command, job_inputs, job_outputs, job_spec, job_wildcards,
    stage_code)
