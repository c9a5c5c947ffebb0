# Config loading, validation and helpers shared by every rule file.
import os
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Let a plain checkout work even before `pip install -e .` (the library lives in src/).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from vlm4vla import pipeline as P
from vlm4vla.config import ConfigError, canonical_json, read_config_files, validate_config

# The same files, merged the same way, are what the workflow scripts read: one config.
def _rel(path) -> str:
    """Config paths relative to the working directory when inside it: an absolute path in
    a rule param would make every job rerun after the checkout moves."""
    rel = os.path.relpath(os.path.abspath(path))
    return str(path) if rel.startswith("..") else rel


CONFIG_FILES = list(dict.fromkeys(["config/config.yaml", *map(_rel, workflow.overwrite_configfiles)]))
CONFIG_ARGS = " ".join(f"--configfile {shlex.quote(p)}" for p in CONFIG_FILES)

try:
    validate_config(config)  # named-key errors with "did you mean" hints; fills defaults
except ConfigError as e:
    raise WorkflowError(str(e)) from None
validate(config, "../config/schema.yaml")

try:
    _from_files = validate_config(read_config_files(CONFIG_FILES))
except ConfigError as e:
    raise WorkflowError(str(e)) from None
if _from_files != config:
    raise WorkflowError(
        "settings given with --config on the command line are not supported: the rule scripts "
        "(and `dvc repro`) read the config files. Put the settings in a YAML file and pass it "
        "with --configfile.")

# A training job holds one GPU where the machine has one (the default profile's `gpu=1`
# limit then runs them one at a time); on a CPU-only machine it holds none, so trainings run
# side by side like any other job (--cores decides). Cluster profiles set `gpu` per rule.
TRAIN_GPUS = 1 if shutil.which("nvidia-smi") else 0
NAME = r"[A-Za-z0-9_.\-]+"


wildcard_constraints:
    benchmark=NAME,
    model=NAME,


def launcher(gpus) -> str:
    """How a training job starts: plain python on CPU or one GPU; `accelerate launch` over
    the job's GPUs when a profile grants several (resource `gpu`, e.g. SLURM --gpus=N)."""
    n = int(gpus or 0)
    return "python" if n <= 1 else f"accelerate launch --num_machines 1 --num_processes {n}"


def spec(fn, *names):
    """A rule param holding the config fragment the rule depends on (re-run trigger)."""
    return lambda w: canonical_json(fn(config, *(getattr(w, n) for n in names)))


def all_targets():
    exps = config["experiments"]
    tables = [f for t in P.active_tables(config) for f in P.table_paths(t).values()]
    figures = [*P.FIGURE_MAIN.values()]
    if exps.get("aux"):
        figures += [*P.AUX_TABLE.values(), *P.FIGURE_AUX.values()]
    if exps.get("capability"):
        figures += [*P.CAPABILITY_TABLE.values(), P.CAPABILITY_CORR, *P.FIGURE_CAPABILITY.values()]
    return [*tables, *P.TABLE_PAPER.values(), *figures]


# --- inputs computed from the config (used by rules/aux.smk and rules/paper.smk) ----------
def pretrained_vlm(w):
    """The pretrain_vlm output a VLM-stage job starts from (none for other inits)."""
    return P.pretrain_input(config, w.model)


def table_inputs(table):
    runs = P.table_runs(config, table)
    return {"evals": [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs],
            "policies": [P.policy_dir(b, r) for b, r in runs]}


def vqa_metrics(jobs):
    return [f"{P.vqa_eval_dir(m, v)}/metrics.json" for m, v in jobs]


def aux_inputs():
    runs = P.aux_runs(config)
    return {"evals": [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs],
            "vqa": vqa_metrics((m, a) for m in config["experiments"]["aux"]["models"]
                               for a in P.aux_arms(config))}


def capability_inputs():
    runs = P.capability_runs(config)
    measured = config["experiments"]["capability"]["x"] == "measured"
    vqa = [j for j in P.vqa_eval_jobs(config) if j in {P.start_vlm(r) for _, r in runs}]
    return {"evals": [f"{P.eval_dir(b, r)}/summary.json" for b, r in runs],
            "x": vqa_metrics(vqa) if measured else [P.GENERAL_SCORES]}
