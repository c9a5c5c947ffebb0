"""The stage table: every stage of the pipeline, declared once, for both orchestrators.

rules/stages.smk turns each entry into a Snakemake rule (wildcards in its output patterns)
and workflow_scripts/make_dvc_yaml.py into one DVC stage per job (`jobs(cfg)`), so both
tools get the same inputs, outputs, command line and re-run trigger:

    STAGES["finetune_vla"]          a Stage
      .jobs(cfg)                    [(benchmark, model), ...]: what DVC lists, what the
                                    tables need (Snakemake finds them from its targets)
      .inputs(cfg, **wildcards)     {name: [paths]}
      .outputs(**wildcards)         {name: path}
      .args                         the script's arguments, with {wildcard}, {input.x},
                                    {output.x}, {threads} and .extra's names filled in
      .spec(cfg, *wildcard values)  the config slice the result depends on: Snakemake's
                                    re-run param; its keys (trace.read_keys) are DVC's params
      .code                         the library code it runs (DVC deps)

Adding a stage is one entry here, its script in workflow_scripts/ and, if it is a paper
artifact, a caption in report/ (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

from . import paths as D
from .experiments import (RUN_TABLES, active_tables, all_runs, aux_arm_list, aux_runs, aux_vlm_jobs,
                          capability_runs, pretrain_jobs, stage1_jobs, table_runs, vqa_eval_jobs)
from .runs import PRETRAIN_VLM, pretrain_input, start_vlm, start_vlm_input
from . import specs as S


def _one(cfg) -> list[tuple]:
    return [()]


def _no_inputs(cfg, **w) -> dict:
    return {}


def _no_extra(cfg, **w) -> dict:
    return {}


def _one_thread(cfg) -> int:
    return 1


def _train_threads(cfg) -> int:
    return cfg["threads"]


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline (see the module docstring)."""
    script: str  # workflow_scripts/<script>.py
    args: tuple[str, ...]  # the script's arguments (after --configfile ...), a word group each
    outputs: Callable[..., dict[str, str]]  # (**wildcards) -> {name: path}
    code: tuple[str, ...]  # library code the script runs: DVC deps (io.py is added to all)
    wildcards: tuple[str, ...] = ()  # () -> a single job
    jobs: Callable[[dict], list[tuple]] = _one  # cfg -> wildcard values of every job
    inputs: Callable[..., dict[str, list[str]]] = _no_inputs  # (cfg, **wildcards) -> {name: [paths]}
    # published dataset files it reads, (cfg, **wildcards) -> [paths]: DVC deps; Snakemake
    # inputs where they exist, so a paper-scale plan needs no data and a job whose dataset is
    # missing fails itself, naming it
    data: Callable[..., list[str]] = lambda cfg, **w: []
    spec: Callable[..., dict] | None = None  # (cfg, *wildcard values) -> config slice
    extra: Callable[..., dict[str, str]] = _no_extra  # (cfg, **wildcards) -> more names for args
    threads: Callable[[dict], int] = _one_thread
    train: bool = False  # a training job: holds a GPU where there is one; `accelerate` over several
    heavy: bool = True  # DVC starts it through vlm4vla.launch (SLURM when a profile says so)
    reads_config: bool = True  # the script takes --configfile
    directories: tuple[str, ...] = ()  # outputs that are folders
    metrics: tuple[str, ...] = ()  # outputs DVC shows as metrics (`dvc metrics show`)
    report: dict[str, tuple[str, str]] = field(default_factory=dict)  # output -> (caption, category)
    artifact: bool = False  # a paper table / figure: built by `snakemake` with no target


# --- inputs shared by several stages ------------------------------------------------------
def _runs_inputs(runs) -> dict:
    return {"evals": [f"{D.eval_dir(b, r)}/summary.json" for b, r in runs],
            "policies": [D.policy_dir(b, r) for b, r in runs]}


def _vqa_metrics(jobs) -> list[str]:
    return [f"{D.vqa_eval_dir(m, v)}/metrics.json" for m, v in jobs]


def _aux_inputs(cfg) -> dict:
    return {"evals": [f"{D.eval_dir(b, r)}/summary.json" for b, r in aux_runs(cfg)],
            "vqa": _vqa_metrics(dict.fromkeys((a.vlm_model, a.vlm) for a in aux_arm_list(cfg)))}


def _paper_tables(cfg) -> list[tuple[str, str]]:
    """(paper experiment, CSV) the paper-vs-reproduced table reads: the run tables, and
    Figure 4's table as the paper's "auxiliary" experiment when it is configured."""
    tables = [(t, D.table_paths(t)["csv"]) for t in active_tables(cfg)]
    return tables + ([("auxiliary", D.AUX_TABLE["csv"])] if cfg["experiments"].get("aux") else [])


def _capability_inputs(cfg) -> dict:
    runs = capability_runs(cfg)
    starts = {start_vlm(r) for _, r in runs}
    measured = cfg["experiments"]["capability"]["x"] == "measured"
    x = _vqa_metrics(j for j in vqa_eval_jobs(cfg) if j in starts) if measured else [D.GENERAL_SCORES]
    return {"evals": [f"{D.eval_dir(b, r)}/summary.json" for b, r in runs], "x": x}


def _needs_vqa(cfg) -> list[tuple]:
    return [()] if aux_vlm_jobs(cfg) or vqa_eval_jobs(cfg) or pretrain_jobs(cfg) else []


def _if(key: str) -> Callable[[dict], list[tuple]]:
    return lambda cfg: [()] if cfg["experiments"].get(key) else []


_MODELS_TRAIN = ("src/vlm4vla/models", "src/vlm4vla/train")
_VQA_CODE = (*_MODELS_TRAIN, "src/vlm4vla/data/vqa", "src/vlm4vla/eval/vqa_metrics.py")
_TABLE_CODE = ("src/vlm4vla/report/tables.py", "src/vlm4vla/report/stats.py", "src/vlm4vla/eval/metrics.py")


# --- the stages, in pipeline order ----------------------------------------------------------
STAGES: dict[str, Stage] = {
    # scripted-expert demonstrations recorded in the simulator (or a published dataset)
    "prepare_demos": Stage(
        script="prepare_demos", wildcards=("benchmark",),
        jobs=lambda cfg: [(b,) for b in sorted({b for b, _ in all_runs(cfg)})],
        outputs=lambda benchmark: {"demos": D.demos_dir(benchmark)}, directories=("demos",),
        args=("--benchmark {benchmark}", "--out {output.demos}"), spec=S.demo_spec,
        code=("src/vlm4vla/sim", "src/vlm4vla/data/demos.py", "src/vlm4vla/data/episodes.py",
              "src/vlm4vla/data/sources.py", "src/vlm4vla/data/libero_hdf5.py")),
    # VLA fine-tuning: backbone + ActionQuery + MLP head, from the run's start VLM
    "finetune_vla": Stage(
        script="finetune_vla", wildcards=("benchmark", "model"), jobs=all_runs,
        inputs=lambda cfg, benchmark, model: {"demos": [D.demos_dir(benchmark)],
                                              "vlm": start_vlm_input(cfg, benchmark, model)},
        outputs=lambda benchmark, model: {"policy": D.policy_dir(benchmark, model)},
        directories=("policy",),
        extra=lambda cfg, benchmark, model: {"state": D.state_dir(benchmark, model)},
        args=("--benchmark {benchmark}", "--model {model}", "--demos {input.demos}",
              "--out {output.policy}", "--state {state}"),
        spec=S.train_spec, threads=_train_threads, train=True,
        code=(*_MODELS_TRAIN, "src/vlm4vla/data")),
    # closed-loop evaluation on held-out initial states
    "evaluate": Stage(
        script="evaluate", wildcards=("benchmark", "model"), jobs=all_runs,
        inputs=lambda cfg, benchmark, model: {"policy": [D.policy_dir(benchmark, model)]},
        outputs=lambda benchmark, model: {f.split(".")[0]: f"{D.eval_dir(benchmark, model)}/{f}"
                                          for f in D.EVAL_FILES},
        metrics=("summary",),
        extra=lambda cfg, benchmark, model: {"out": D.eval_dir(benchmark, model)},
        args=("--benchmark {benchmark}", "--model {model}", "--policy {input.policy}", "--out {out}",
              "--workers {threads}"),
        spec=S.eval_spec, threads=lambda cfg: cfg["evaluate"]["workers"],
        code=("src/vlm4vla/eval", "src/vlm4vla/sim", *_MODELS_TRAIN, "src/vlm4vla/data/normalize.py")),
    # result tables: see the loop below
    "table_paper_vs_reproduced": Stage(
        script="table_paper_vs_reproduced", heavy=False, artifact=True,
        inputs=lambda cfg: {"reported": [D.PAPER_REPORTED],
                            "tables": [p for _, p in _paper_tables(cfg)]},
        outputs=lambda: dict(D.TABLE_PAPER),
        extra=lambda cfg: {"tables": " ".join(f"--table {t}={p}" for t, p in _paper_tables(cfg))},
        args=("--reported {input.reported}", "{tables}", "--out-csv {output.csv}", "--out-md {output.md}"),
        spec=S.paper_spec, report={"md": ("report/table_paper_vs_reproduced.rst", "Tables")},
        code=("src/vlm4vla/report/paper_compare.py", "src/vlm4vla/report/stats.py")),
    "figure_main": Stage(
        script="figure_main", heavy=False, artifact=True, reads_config=False,
        inputs=lambda cfg: {"table": [D.TABLE_MAIN["csv"]]}, outputs=lambda: dict(D.FIGURE_MAIN),
        args=("--table {input.table}", "--png {output.png}", "--svg {output.svg}"),
        report={"png": ("report/figure_main.rst", "Figures")}, code=("src/vlm4vla/report/figures.py",)),
    # auxiliary embodied VQA: one store from the simulator scenes of every vqa benchmark
    "generate_vqa": Stage(
        script="generate_vqa", jobs=_needs_vqa,
        data=lambda cfg: [e[s] for _, e in sorted(cfg["vqa"].get("files", {}).items()) for s in ("train", "eval")],
        outputs=lambda: {"vqa": D.VQA_DATA}, directories=("vqa",), args=("--out {output.vqa}",),
        spec=S.vqa_data_spec,
        code=("src/vlm4vla/data/vqa", "src/vlm4vla/sim", "src/vlm4vla/data/demos.py",
              "src/vlm4vla/data/folder_store.py")),
    # the embedded stand-in for a pretrained VLM: the tiny architecture trained as a VLM
    "pretrain_vlm": Stage(
        script="finetune_vlm", wildcards=("model",), jobs=lambda cfg: [(m,) for m in pretrain_jobs(cfg)],
        inputs=lambda cfg, model: {"vqa": [D.VQA_DATA]},
        outputs=lambda model: {"vlm": D.vlm_dir(model, PRETRAIN_VLM)}, directories=("vlm",),
        extra=lambda cfg, model: {"vlm": PRETRAIN_VLM, "state": D.vlm_state_dir(model, PRETRAIN_VLM)},
        args=("--model {model}", "--vlm {vlm}", "--vqa {input.vqa}", "--out {output.vlm}",
              "--state {state}"),
        spec=S.pretrain_spec, threads=_train_threads, train=True, code=_VQA_CODE),
    # a VLM tuned on one auxiliary VQA task (Figure 4)
    "finetune_vlm": Stage(
        script="finetune_vlm", wildcards=("model", "vlm"), jobs=aux_vlm_jobs,
        inputs=lambda cfg, model, vlm: {"vqa": [D.VQA_DATA], "start": pretrain_input(cfg, model)},
        outputs=lambda model, vlm: {"vlm": D.vlm_dir(model, vlm)}, directories=("vlm",),
        extra=lambda cfg, model, vlm: {"state": D.vlm_state_dir(model, vlm)},
        args=("--model {model}", "--vlm {vlm}", "--vqa {input.vqa}", "--out {output.vlm}",
              "--state {state}"),
        spec=S.vlm_train_spec, threads=_train_threads, train=True, code=_VQA_CODE),
    # VQA scores of a VLM on the held-out split (Figure 3's x, Figure 4's VQA column)
    "eval_vqa": Stage(
        script="eval_vqa", wildcards=("model", "vlm"), jobs=vqa_eval_jobs,
        inputs=lambda cfg, model, vlm: {"vqa": [D.VQA_DATA], "start": pretrain_input(cfg, model),
                                        "vlm": [] if vlm == "base" else [D.vlm_dir(model, vlm)]},
        outputs=lambda model, vlm: {n: f"{D.vqa_eval_dir(model, vlm)}/{n}.{ext}"
                                    for n, ext in (("metrics", "json"), ("predictions", "jsonl"))},
        metrics=("metrics",),
        extra=lambda cfg, model, vlm: {"out": D.vqa_eval_dir(model, vlm),
                                       "weights": "" if vlm == "base" else f"--weights {D.vlm_dir(model, vlm)}"},
        args=("--model {model}", "--vlm {vlm}", "--vqa {input.vqa}", "{weights}", "--out {out}"),
        spec=S.vqa_eval_spec, threads=_train_threads, code=_VQA_CODE),
    # Table 4's stage 1: the VLM learns FAST action tokens on a benchmark's demos
    "stage1_fast": Stage(
        script="stage1_fast", wildcards=("benchmark", "model", "stage1"), jobs=stage1_jobs,
        inputs=lambda cfg, benchmark, model, stage1: {"demos": [D.demos_dir(benchmark)],
                                                      "start": pretrain_input(cfg, model)},
        outputs=lambda benchmark, model, stage1: {"vlm": D.fast_vlm_dir(benchmark, model, stage1)},
        directories=("vlm",),
        extra=lambda cfg, benchmark, model, stage1: {"state": D.fast_state_dir(benchmark, model, stage1)},
        args=("--benchmark {benchmark}", "--model {model}", "--stage1 {stage1}", "--demos {input.demos}",
              "--out {output.vlm}", "--state {state}"),
        spec=S.stage1_spec, threads=_train_threads, train=True, code=(*_MODELS_TRAIN, "src/vlm4vla/data")),
    # Figure 4: auxiliary VQA tuning vs the VLA it starts
    "figure_aux": Stage(
        script="figure_aux", heavy=False, artifact=True, jobs=_if("aux"), inputs=_aux_inputs,
        outputs=lambda: {**D.AUX_TABLE, **D.FIGURE_AUX},
        args=("--out-csv {output.csv}", "--out-md {output.md}", "--png {output.png}", "--svg {output.svg}"),
        spec=S.aux_spec, report={"md": ("report/table_aux.rst", "Tables"),
                                 "png": ("report/figure_aux.rst", "Figures")},
        code=("src/vlm4vla/report/aux.py", "src/vlm4vla/report/stats.py", "src/vlm4vla/report/figures.py",
              "src/vlm4vla/report/tables.py", "src/vlm4vla/eval/metrics.py", "src/vlm4vla/eval/chains.py")),
    # Figure 3: general capability of the start VLM vs VLA success
    "figure_capability": Stage(
        script="figure_capability", heavy=False, artifact=True, jobs=_if("capability"),
        inputs=_capability_inputs,
        outputs=lambda: {**D.CAPABILITY_TABLE, "corr": D.CAPABILITY_CORR, **D.FIGURE_CAPABILITY},
        args=("--out-csv {output.csv}", "--out-corr {output.corr}", "--out-md {output.md}",
              "--png {output.png}", "--svg {output.svg}"),
        spec=S.capability_spec, report={"md": ("report/table_capability.rst", "Tables"),
                                        "png": ("report/figure_capability.rst", "Figures")},
        code=("src/vlm4vla/report/capability.py", "src/vlm4vla/report/stats.py",
              "src/vlm4vla/report/aux.py", "src/vlm4vla/report/figures.py")),
}


def _run_table(name: str) -> Stage:
    """A result table of evaluation runs (experiments.RUN_TABLES): one stage each."""
    return Stage(
        script="make_table", heavy=False, artifact=True,
        jobs=lambda cfg: [()] if table_runs(cfg, name) else [],
        inputs=lambda cfg: _runs_inputs(table_runs(cfg, name)),
        outputs=lambda: D.table_paths(name), extra=lambda cfg: {"table": name},
        args=("--table {table}", "--out-csv {output.csv}", "--out-md {output.md}"),
        spec=lambda cfg: S.table_spec(cfg, name), report={"md": (f"report/table_{name}.rst", "Tables")},
        code=_TABLE_CODE)


# run tables go after evaluation (dvc.yaml keeps this order)
STAGES = {**{k: STAGES[k] for k in ("prepare_demos", "finetune_vla", "evaluate")},
          **{f"table_{t}": _run_table(t) for t in RUN_TABLES},
          **{k: v for k, v in STAGES.items() if k not in ("prepare_demos", "finetune_vla", "evaluate")}}


# --- what a job of a stage is, concretely ---------------------------------------------------
def job_wildcards(name: str, values: tuple) -> dict[str, str]:
    return dict(zip(STAGES[name].wildcards, values))


def job_inputs(name: str, cfg: dict, **w) -> dict[str, list[str]]:
    return STAGES[name].inputs(cfg, **w)


def job_outputs(name: str, **w) -> dict[str, str]:
    return STAGES[name].outputs(**w)


def job_spec(name: str, cfg: dict, **w) -> dict | None:
    st = STAGES[name]
    return None if st.spec is None else st.spec(cfg, *(w[k] for k in st.wildcards))


def job_command(name: str, cfg: dict, config_args: str, threads: int, python: str = "python", **w) -> str:
    """The job's command line: `python workflow_scripts/<script>.py [config args] <args>`
    (`python` may be a launcher such as `accelerate launch ...`)."""
    st = STAGES[name]
    values = {**w, **st.extra(cfg, **w), "threads": threads,
              "input": SimpleNamespace(**{k: " ".join(v) for k, v in st.inputs(cfg, **w).items()}),
              "output": SimpleNamespace(**st.outputs(**w))}
    words = [python, f"workflow_scripts/{st.script}.py", config_args if st.reads_config else ""]
    words += [a.format(**values) for a in st.args]
    return " ".join(w_ for w_ in words if w_)


def artifact_paths(cfg: dict) -> list[str]:
    """Every paper table and figure this config builds (`rule all`)."""
    return [p for name, st in STAGES.items() if st.artifact and st.jobs(cfg) for p in st.outputs().values()]


def stage_code(name: str) -> list[str]:
    """Code a stage depends on (DVC deps): its script, the library it runs, io.py (every stage
    writes, and most read, artifacts through it)."""
    st = STAGES[name]
    return [f"workflow_scripts/{st.script}.py", *st.code, "src/vlm4vla/io.py"]
