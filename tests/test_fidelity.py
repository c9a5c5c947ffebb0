"""The fidelity table (docs/fidelity.yaml -> docs/fidelity.md) is current, every project
reference in it exists, and config/paper.yaml holds the official settings it says it does."""

import re
import subprocess
import sys

import pytest

from conftest import REPO
from vlm4vla import pipeline as P
from vlm4vla.config import load_config

sys.path.insert(0, str(REPO / "scripts"))
import fidelity_table  # noqa: E402


def test_fidelity_md_is_generated_from_the_yaml():
    proc = subprocess.run([sys.executable, "scripts/fidelity_table.py", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("item", fidelity_table.load(), ids=lambda it: it["item"])
def test_every_project_reference_exists(item):
    ref = item["project"].split(" (")[0]
    path, _, symbol = ref.partition("::")
    assert (REPO / path).exists(), ref
    if symbol:
        assert re.search(rf"\b{re.escape(symbol)}\b", (REPO / path).read_text()), ref


def test_a_status_that_is_not_a_match_says_why(tmp_path):
    bad = tmp_path / "f.yaml"
    bad.write_text("items:\n  - {item: x, paper: a, official: b, project: c, status: open}\n")
    with pytest.raises(ValueError, match="needs a note"):
        fidelity_table.load(bad)


def test_paper_scale_uses_the_official_settings():
    cfg = load_config([REPO / "config/config.yaml", REPO / "config/paper.yaml"])
    lib = cfg["benchmarks"]["libero_10"]
    assert lib["action_norm"]["clip"] == 0.65 and lib["action_norm"]["bounds"] == "q01_q99"
    assert lib["augment"] == {"crop_scale": 0.9, "color_jitter": True, "eval_center_crop": 0.9}
    assert cfg["train"]["warmup_steps"] == 250 and cfg["train"]["lr_schedule"] == "constant"
    fp16 = {m for m, c in cfg["models"].items() if c.get("precision") == "fp16"}
    assert fp16 == {"paligemma_3b", "paligemma2_3b", "kosmos2"}
    for b, r in P.all_runs(cfg):  # the official forward and freeze scope: every model's default
        mcfg = P.model_cfg(cfg, r, b)
        assert mcfg.get("vla_forward", "official") == "official"
        assert mcfg.get("vision_freeze", "tower") == "tower"


def test_mixed_precision_follows_the_model():
    from vlm4vla.train.loop import LoopConfig, mixed_precision
    assert mixed_precision(False, "fp16") == "no"  # CPU: fp32
    assert mixed_precision(True, "fp16") == "fp16" and mixed_precision(True, "bf16") == "bf16"
    with pytest.raises(ValueError, match="precision='fp32'"):
        mixed_precision(True, "fp32")
    train = {"steps": 1, "lr": 1e-3}
    assert LoopConfig.from_train_cfg(train).precision == "bf16"
    assert LoopConfig.from_train_cfg(train, precision="fp16").precision == "fp16"
