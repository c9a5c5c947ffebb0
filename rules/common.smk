# Config loading and validation, and the helpers that turn the stage table into rules.
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
    vlm=r"base|aux_[A-Za-z0-9_]+",  # a VLM start point (pretrain_vlm's folder is its own rule)
    stage1="|".join(P.STAGE1),


def launcher(gpus) -> str:
    """How a training job starts: plain python on CPU or one GPU; `accelerate launch` over
    the job's GPUs when a profile grants several (resource `gpu`, e.g. SLURM --gpus=N)."""
    n = int(gpus or 0)
    return "python" if n <= 1 else f"accelerate launch --num_machines 1 --num_processes {n}"


# --- rules from the stage table (rules/stages.smk); functions bind a stage name now -------
def stage_inputs(name):
    def inputs(w):
        w = dict(w.items())
        data = [p for p in P.STAGES[name].data(config, **w) if os.path.exists(p)]
        return {**P.job_inputs(name, config, **w), **({"data": data} if data else {})}
    return inputs


def stage_outputs(name):
    """Output patterns ({wildcard} left in), folders as directory(), captions for --report."""
    st = P.STAGES[name]
    out = P.job_outputs(name, **{k: f"{{{k}}}" for k in st.wildcards})
    for k in st.directories:
        out[k] = directory(out[k])
    for k, (caption, category) in st.report.items():
        out[k] = report(out[k], caption=f"../{caption}", category=category)
    return out


def stage_command(name):
    return lambda w, threads, resources: P.job_command(
        name, config, CONFIG_ARGS, threads, launcher(resources.get("gpu", 0)), **dict(w.items()))


def stage_spec(name):
    """The config slice the stage's result depends on, as a param: it changes -> re-run."""
    return lambda w: canonical_json(P.job_spec(name, config, **dict(w.items())))


def stage_log(name, root, ext):
    """<root>/<stage>/<wildcard>/.../<last wildcard><ext>, or <root>/<stage><ext>."""
    return os.path.join(root, name, *(f"{{{k}}}" for k in P.STAGES[name].wildcards)) + ext


def all_targets():
    return P.artifact_paths(config)
