"""Integration: the tiny pipeline through a real single-node SLURM cluster.

scripts/slurm_local.sh starts munged + slurmctld + slurmd on loopback (installing slurm-wlm and
munge with apt if needed); Snakemake submits every job with sbatch through profiles/slurm
(snakemake-executor-plugin-slurm). The table and figure must be byte-identical to the local
run's. Needs root (daemons, apt); CI runs as root.
"""

import os
import shutil
import subprocess
import time

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, copy_repo, run
from test_workflow import _digests

pytestmark = pytest.mark.slow

SCRIPT = REPO / "scripts" / "slurm_local.sh"
TARGETS = ["table_main", "figure_main"]   # the main chain: demos -> train -> eval -> table -> figure
ARTIFACTS = ["results/tables/main.csv", "results/tables/main.md", "results/figures/main.png",
             "results/figures/main.svg"]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: starts munged/slurmctld/slurmd (and may apt-get install slurm-wlm munge)"
    have_slurm = all(shutil.which(t) for t in ("slurmctld", "slurmd", "sbatch", "munged"))
    if not have_slurm and not shutil.which("apt-get"):
        return "slurm-wlm/munge are not installed and there is no apt-get to install them"
    return None


def _script(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        pytest.fail("snakemake-executor-plugin-slurm is not installed (a dependency in pyproject.toml)")
    already_up = "slurmctld: running" in _script("status").stdout
    t0 = time.monotonic()
    proc = _script("start")
    assert proc.returncode == 0, f"slurm_local.sh start failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"slurm cluster up in {time.monotonic() - t0:.1f}s: {proc.stderr.strip()}")
    try:
        yield
    finally:
        if not already_up:  # leave a cluster someone else started alone
            stop = _script("stop")
            assert stop.returncode == 0, stop.stderr


def test_tiny_pipeline_through_slurm_matches_local_run(slurm_cluster, tiny_run, tmp_path):
    work = copy_repo(tmp_path)
    t0 = time.monotonic()
    proc = run([*SNAKEMAKE, *TARGETS, "--workflow-profile", "profiles/slurm",
                "--configfile", "config/test.yaml",
                # a short first poll: the plugin's default 40 s delay per chained job dominates
                "--slurm-init-seconds-before-status-checks", "2"], cwd=work, timeout=1500)
    print(f"tiny pipeline through SLURM: {time.monotonic() - t0:.1f}s")
    out = proc.stdout + proc.stderr
    # every job went through sbatch (none ran locally), training with one (fake) GPU
    submitted = out.count("has been submitted with SLURM jobid")
    # demos, VQA store + pretrain_vlm (the backbone is pretrained as a VLM first), 3 trainings
    # + 3 evaluations (the backbone and the init pair's scratch row), table, figure
    assert submitted == 11, out[-4000:]
    assert "Falling back to 'sacct'" not in out, "squeue status polling needs MinJobAge >= 3x init delay"
    finetune = out.split("rule finetune_vla:")[1].split("Shell command")[0]
    threads = yaml.safe_load((REPO / "config" / "test.yaml").read_text())["threads"]
    assert "gpu=1" in finetune and f"cpus_per_task={threads}" in finetune, finetune
    for rule in ("prepare_demos", "finetune_vla", "evaluate", "table_main", "figure_main"):
        assert f"slurm_logs/rule_{rule}/" in out, rule   # each rule's job log is a SLURM log
    assert _digests(work, ARTIFACTS) == _digests(tiny_run, ARTIFACTS)
    again = run([*SNAKEMAKE, *TARGETS, "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_dvc_repro_through_the_slurm_profile_matches_local_run(slurm_cluster, tiny_run, tmp_path,
                                                              monkeypatch):
    """`dvc repro` on the "login node": every heavy stage runs as an srun job with the rule's
    resources from profiles/slurm (vlm4vla.launch), and dvc.lock records the same hashes as
    the local run's artifacts."""
    import hashlib
    import sys

    work = copy_repo(tmp_path)
    run(["git", "init", "-q"], cwd=work)
    run([sys.executable, "workflow_scripts/make_dvc_yaml.py", "--configfile", "config/test.yaml",
         "--out", "dvc.yaml"], cwd=work)
    monkeypatch.setenv("VLM4VLA_LAUNCH_PROFILE", "profiles/slurm")  # run() passes os.environ on
    t0 = time.monotonic()
    proc = run(["dvc", "repro", "figure_main"], cwd=work, timeout=1500)
    print(f"dvc repro through SLURM: {time.monotonic() - t0:.1f}s")
    out = proc.stdout + proc.stderr
    launched = [line for line in out.splitlines() if line.startswith("[launch] srun")]
    # demos, VQA store, pretrain_vlm, 3 trainings + 3 evaluations (heavy); table and figure run here
    assert len(launched) == 9, out[-4000:]
    train = next(line for line in launched if "--job-name=finetune_vla" in line)
    assert "--gpus=1" in train and "--mem=8000M" in train, train
    assert _digests(work, ARTIFACTS) == _digests(tiny_run, ARTIFACTS)
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for st in lock["stages"].values() for o in st.get("outs", [])}
    for rel in ARTIFACTS:
        assert outs[rel] == hashlib.md5((tiny_run / rel).read_bytes()).hexdigest(), rel
    status = run(["dvc", "status", "figure_main"], cwd=work)
    assert "up to date" in status.stdout
