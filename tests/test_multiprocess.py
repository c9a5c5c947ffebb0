"""Several processes run the same training script unchanged (CPU processes with gloo stand
in for GPUs here): each trains on its slice of the global batch, and exactly one writes the
policy. Started with torchrun: `accelerate launch --cpu --num_processes 2` starts a single
process on a machine without an MPI hostfile (accelerate 1.x), so it would test nothing."""

import json
import shutil

import pytest

from conftest import run

pytestmark = pytest.mark.slow


def test_two_process_training_writes_one_policy(tiny_run, tmp_path):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    out, state = tmp_path / "policy", tmp_path / "state"
    proc = run(["torchrun", "--standalone", "--nproc_per_node", "2",
                "workflow_scripts/finetune_vla.py", "--configfile", "config/test.yaml",
                "--benchmark", "metaworld", "--model", "qwen25vl_tiny",
                "--demos", "results/demos/metaworld", "--out", str(out), "--state", str(state)],
               cwd=tiny_run, timeout=600)
    log = proc.stderr
    assert "data parallel over 2 processes" in log, log[-2000:]  # really two processes
    assert log.count("step 6/6") == 1, log[-2000:]  # only the main process logs
    info = json.loads((out / "policy.json").read_text())
    assert info["steps"] == 6 and (out / "policy.safetensors").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == ["policy.json", "policy.safetensors",
                                                     "tokenizer.json", "train_log.csv",
                                                     "train_log.jsonl"]
