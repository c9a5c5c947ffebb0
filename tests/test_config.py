"""Config validation: typos and wrong types fail at once, naming the key."""

import copy
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, copy_repo, workflow_env
from vlm4vla.config import ConfigError, load_config, read_config_files, validate_config


def _cfg():
    return read_config_files([REPO / "config" / "config.yaml"])


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_are_valid(name):
    cfg = load_config([REPO / "config" / name])
    assert cfg["benchmarks"]["metaworld"]["eval_seed_offset"] == 100000  # default filled


def test_typo_names_key_and_suggests():
    cfg = _cfg()
    cfg["train"]["stpes"] = cfg["train"].pop("steps")
    with pytest.raises(ConfigError) as e:
        validate_config(cfg)
    assert "train.stpes" in str(e.value) and "did you mean 'steps'" in str(e.value)


def test_nested_typo_in_model_entry():
    cfg = _cfg()
    cfg["models"]["qwen25vl_tiny"]["frezee"] = ["vision"]
    with pytest.raises(ConfigError, match=r"models\.qwen25vl_tiny\.frezee.*did you mean 'freeze'"):
        validate_config(cfg)


def test_typo_in_a_section_that_reuses_another_schema_lists_its_keys():
    """vqa.train and pretrain.train are `$ref: #/properties/train`: the hint follows it."""
    cfg = _cfg()
    cfg["vqa"]["train"]["stepz"] = 3
    cfg["vqa"]["train"]["zzzz"] = 1
    with pytest.raises(ConfigError) as e:
        validate_config(cfg)
    msg = str(e.value)
    assert "unknown config key 'vqa.train.stepz' - did you mean 'steps'?" in msg
    assert "unknown config key 'vqa.train.zzzz' (valid keys: " in msg and "batch_size" in msg


def test_wrong_type_names_key():
    cfg = _cfg()
    cfg["train"]["batch_size"] = "eight"
    with pytest.raises(ConfigError, match=r"train\.batch_size"):
        validate_config(cfg)


def test_bad_enum_names_key():
    cfg = _cfg()
    cfg["models"]["qwen25vl_tiny"]["freeze"] = ["eyes"]
    with pytest.raises(ConfigError, match=r"models\.qwen25vl_tiny\.freeze\.0"):
        validate_config(cfg)


def test_unknown_backbone_and_dangling_reference():
    cfg = _cfg()
    cfg["models"]["qwen25vl_tiny"]["backbone"] = "gpt5_vl"
    with pytest.raises(ConfigError, match=r"models\.qwen25vl_tiny\.backbone.*gpt5_vl.*known"):
        validate_config(copy.deepcopy(cfg))
    cfg = _cfg()
    cfg["experiments"]["main"]["models"] = ["nope"]
    with pytest.raises(ConfigError, match=r"experiments\.main\.models.*'nope'"):
        validate_config(cfg)


def test_missing_config_file_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml does not exist"):
        load_config([tmp_path / "missing.yaml"])


def test_snakemake_rejects_typo_with_key_name(tmp_path):
    work = copy_repo(tmp_path)
    cfg = yaml.safe_load((work / "config" / "test.yaml").read_text())
    cfg["evaluate"]["workrs"] = cfg["evaluate"].pop("workers")
    (work / "config" / "typo.yaml").write_text(yaml.safe_dump(cfg))
    # Overlaying a file cannot remove config.yaml's `workers`, so the typo is the only error.
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config/typo.yaml"],
                          cwd=work, env=workflow_env(work), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "evaluate.workrs" in proc.stdout + proc.stderr
    assert "did you mean 'workers'" in proc.stdout + proc.stderr
    assert not (work / "results").exists()


def test_script_rejects_typo_cleanly(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["seeed"] = 1
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, str(REPO / "workflow_scripts" / "prepare_demos.py"),
                           "--configfile", str(tmp_path / "bad.yaml"), "--benchmark", "metaworld",
                           "--out", str(tmp_path / "demos")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown config key 'seeed' - did you mean 'seed'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "demos").exists()


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_shipped_configs_hold_out_evaluation_states(name):
    """Evaluation never starts from a state a demo may have come from (LIBERO has 50)."""
    from vlm4vla.data.demos import check_heldout
    from vlm4vla.sim.registry import get_benchmark

    cfg = load_config([REPO / "config" / name])
    for bench_cfg in cfg["benchmarks"].values():
        check_heldout(get_benchmark(bench_cfg["plugin"]), bench_cfg, cfg["seed"])


def test_paper_scale_dry_run_lists_the_whole_graph(tmp_path):
    from test_workflow import job_counts

    work = copy_repo(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "config/paper.yaml"],
                          cwd=work, env=workflow_env(work), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout + proc.stderr)
    # 10 backbones on CALVIN, LIBERO-10 and Simpler-Bridge, + 1 scratch twin (LIBERO-10),
    # + Table 3 on CALVIN and Simpler: 2 frozen variants x 3 models x 2, + Figure 4 on CALVIN:
    # (base + 3 tasks) x 3 seeds minus the main run, and its 7B panel: Qwen2.5-VL-7B base and
    # the released RoboBrain2, 3 seeds each minus the main run, + Table 4 on Bridge
    # (Qwen3-VL-4B): 6 cells minus the plain main run
    assert counts["finetune_vla"] == counts["evaluate"] == 30 + 1 + 12 + 11 + 5 + 5
    assert counts["prepare_demos"] == 3 and counts["generate_vqa"] == 1
    # VQA skill of the 3B base + 3 tuned VLMs, and of the 7B base and RoboBrain2
    assert counts["finetune_vlm"] == 3 and counts["eval_vqa"] == 6 and counts["stage1_fast"] == 2


def test_paper_scale_job_without_data_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "workflow_scripts" / "prepare_demos.py"),
                           "--configfile", str(REPO / "config" / "config.yaml"),
                           "--configfile", str(REPO / "config" / "paper.yaml"),
                           "--benchmark", "libero_10", "--out", str(tmp_path / "demos")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    # names the folder, the dataset (the official runs' RLDS set) and where to get it
    assert "data/libero/modified_libero_rlds: not a folder. Expected OpenVLA's modified LIBERO RLDS" \
        in proc.stderr and "git@hf.co:datasets/openvla/modified_libero_rlds" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "demos").exists()


def test_paper_scale_vqa_without_files_fails_clearly(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "workflow_scripts" / "generate_vqa.py"),
                           "--configfile", str(REPO / "config" / "config.yaml"),
                           "--configfile", str(REPO / "config" / "paper.yaml"),
                           "--out", str(tmp_path / "vqa")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "config key 'vqa.files." in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "vqa").exists()


def test_schema_default_is_the_one_declaration_library_callers_fall_back_to():
    from vlm4vla.config import schema_default
    from vlm4vla.eval.rollout import batch_envs

    assert batch_envs({}) == schema_default("evaluate", "batch_envs")
    from vlm4vla.train.loop import LoopConfig
    loop = LoopConfig(steps=1, lr=1.0)
    assert (loop.grad_accum, loop.lr_schedule) == (schema_default("train", "grad_accum"),
                                                   schema_default("train", "lr_schedule"))
    assert schema_default("vqa", "train", "grad_accum") == 1  # through vqa.train's $ref
    with pytest.raises(KeyError, match="no default for 'evaluate.workers'"):
        schema_default("evaluate", "workers")


def test_wait_protocol_is_libero_only_and_checked():
    cfg = _cfg()
    cfg["benchmarks"]["libero"]["wait_protocol"] = "official"
    validate_config(cfg)
    cfg["benchmarks"]["libero"]["wait_protocol"] = "offical"
    with pytest.raises(ConfigError, match="wait_protocol"):
        validate_config(cfg)
    cfg = _cfg()
    cfg["benchmarks"]["metaworld"]["wait_protocol"] = "official"
    with pytest.raises(ConfigError, match="'benchmarks.metaworld.wait_protocol' is for plugin 'libero' only"):
        validate_config(cfg)
