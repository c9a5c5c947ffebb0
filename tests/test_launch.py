"""vlm4vla.launch: a DVC stage's command runs here, or as srun with the profile's resources."""

import subprocess
import sys

import pytest

from conftest import REPO
from vlm4vla.launch import ENV, rule_resources, srun_command


def test_resources_are_the_profiles_for_the_rule():
    res = rule_resources(REPO / "profiles/slurm", "finetune_vla", threads=3)
    assert res["gpu"] == 1 and res["mem_mb"] == 8000 and res["runtime"] == 720
    assert res["cpus_per_task"] == 3  # `threads` in the profile = the rule's threads
    cmd = srun_command(res, "finetune_vla", ["python", "workflow_scripts/finetune_vla.py", "--x"])
    assert cmd[:3] == ["srun", "--job-name=finetune_vla", "--ntasks=1"]
    assert {"--gpus=1", "--mem=8000M", "--time=720", "--cpus-per-task=3"} <= set(cmd)
    assert cmd[-3:] == ["python", "workflow_scripts/finetune_vla.py", "--x"]
    table = rule_resources(REPO / "profiles/slurm", "table_main", threads=1)
    assert "gpu" not in table and table["mem_mb"] == 2000  # default-resources only


def test_several_gpus_start_under_accelerate():
    cmd = srun_command({"gpu": 4}, "finetune_vla", ["python", "train.py"])
    assert cmd[-7:] == ["accelerate", "launch", "--num_machines", "1", "--num_processes", "4", "train.py"]
    assert "--gpus=4" in cmd


def _launch(env_value, *cmd):
    env = {"PATH": "/usr/bin:/bin:" + str(REPO), "PYTHONPATH": str(REPO / "src")}
    if env_value is not None:
        env[ENV] = env_value
    return subprocess.run([sys.executable, "-m", "vlm4vla.launch", "--rule", "evaluate", "--threads", "2",
                           "--", *cmd], capture_output=True, text=True, env=env, cwd=REPO)


def test_without_a_profile_the_command_runs_here_with_its_exit_status():
    ok = _launch(None, sys.executable, "-c", "print('ran here')")
    assert ok.returncode == 0 and ok.stdout.strip() == "ran here" and "[launch]" not in ok.stderr
    bad = _launch(None, sys.executable, "-c", "raise SystemExit(3)")
    assert bad.returncode == 3  # dvc sees the stage fail


def test_a_missing_profile_is_named():
    proc = _launch("profiles/nope", sys.executable, "-c", "pass")
    assert proc.returncode != 0 and "profiles/nope/config.yaml is missing" in proc.stderr


@pytest.mark.parametrize("rule", ["prepare_demos", "finetune_vla", "evaluate", "pretrain_vlm",
                                  "finetune_vlm", "eval_vqa", "stage1_fast", "generate_vqa"])
def test_every_heavy_dvc_stage_goes_through_the_launcher(rule):
    import yaml
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    mine = [s for name, s in stages.items() if name == rule or name.startswith(rule + "-")]
    assert mine, f"no {rule} stage in dvc.yaml"
    assert all(s["cmd"].startswith(f"python -m vlm4vla.launch --rule {rule} ") for s in mine)
