"""Shared fixtures: workspaces that copy the repository so workflow tests never touch it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CLIP_065 = {"bounds": "q01_q99", "clip": 0.65, "fixed_bound": 0.65}  # the Bridge / LIBERO recipe


def tiny_training_step(demos_dir: Path, tmp_path: Path, chunk: int = 4, action_norm: dict = CLIP_065) -> dict:
    """Two training steps of a tiny qwen2.5-VL (56 px) on a converted episode store: the
    check every dataset loader's test ends with. Returns train_vla's info; the policy is
    written to tmp_path / "pol"."""
    from vlm4vla.train.vla import train_vla

    model = {"backbone": "qwen2_5_vl", "init": "scratch", "freeze": [], "head_width": 32,
             "arch": {"hidden_size": 32, "num_hidden_layers": 1, "image_size": 56}}
    train = {"steps": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 0, "grad_clip": 1.0,
             "weight_decay": 0.0, "checkpoint_every": 0, "log_every": 1}
    return train_vla(model, train, chunk=chunk, demos_dir=demos_dir, out_dir=tmp_path / "pol",
                     state_dir=tmp_path / "state", seed=0, threads=1, progress=False,
                     action_norm=action_norm)


def copy_repo(dst: Path) -> Path:
    """Copy the repository's source files (tracked + untracked, not ignored) into `dst`."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


def workflow_env(workdir: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(workdir / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONHASHSEED"] = "0"
    return env


def run(cmd: list[str], cwd: Path, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=workflow_env(cwd), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        logs = ""
        for log in sorted((cwd / "logs").rglob("*.log")) if (cwd / "logs").exists() else []:
            logs += f"\n--- {log.relative_to(cwd)} ---\n{log.read_text()[-3000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}{logs}")
    return proc


SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny test config run once through Snakemake; shared by the workflow tests."""
    work = copy_repo(tmp_path_factory.mktemp("tiny_run"))
    run([*SNAKEMAKE, "--cores", "2", "--configfile", "config/test.yaml"], cwd=work)
    return work
