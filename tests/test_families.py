"""The backbone family table (models/families.py) says what the registry's classes say, and
validating a config or building the stage graph never imports torch or model code."""

import subprocess
import sys
from pathlib import Path

import pytest

from vlm4vla.models import families
from vlm4vla.models.backbones import _REGISTRY, get_backbone, known_backbones

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", known_backbones())
def test_metadata_equals_the_class(name):
    # the registry is built from the table; the class itself must say the same
    fam = families.family(name)
    assert _REGISTRY[name] == fam.target
    cls = get_backbone(name)
    assert cls.__module__ == fam.module and cls.__name__ == fam.cls
    assert cls.name == name
    assert bool(getattr(cls, "supports_vqa", False)) == fam.supports_vqa == families.supports_vqa(name)
    if fam.supports_vqa and hasattr(cls, "lm_model_cls"):
        assert cls.lm_model_cls is not None, f"{name}: supports_vqa without an lm_model_cls"


def test_unknown_family_is_named():
    with pytest.raises(KeyError, match=r"unknown backbone 'nope'; known backbones: .*qwen2_5_vl"):
        families.family("nope")


@pytest.mark.parametrize("configs", [["config/config.yaml"], ["config/config.yaml", "config/test.yaml"],
                                     ["config/config.yaml", "config/cpu_large.yaml"]])
def test_config_and_stage_graph_import_no_model_code(configs):
    code = f"""
import sys
import vlm4vla.config as C, vlm4vla.pipeline as P
cfg = C.load_config({configs!r})
runs = P.all_runs(cfg)
jobs = P.vqa_eval_jobs(cfg), P.aux_vlm_jobs(cfg), P.pretrain_jobs(cfg), P.stage1_jobs(cfg)
specs = [P.train_spec(cfg, b, r) for b, r in runs] + [P.table_spec(cfg, t) for t in P.active_tables(cfg)]
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'safetensors')
               or m.startswith('vlm4vla.models.backbones'))
assert not heavy, heavy
print(len(runs))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0


@pytest.mark.parametrize("name", known_backbones())
def test_arch_keys_equal_the_tiny_build(name):
    """The arch keys config validation accepts are the keys the family's tiny build takes."""
    import importlib
    fam = families.family(name)
    tiny = getattr(importlib.import_module(fam.module), "TINY", None)
    assert fam.arch_keys() == (None if tiny is None else sorted(tiny))


def test_arch_typo_is_named_at_config_validation():
    from vlm4vla.config import ConfigError, validate_config
    import yaml
    raw = yaml.safe_load((REPO / "config/config.yaml").read_text())
    raw["models"]["qwen25vl_tiny"]["arch"] = {"num_hiden_layers": 4}
    with pytest.raises(ConfigError, match=r"'models\.qwen25vl_tiny\.arch': unknown arch key "
                                          r"'num_hiden_layers' - did you mean 'num_hidden_layers'"):
        validate_config(raw)
    raw["models"]["qwen25vl_tiny"]["arch"] = {"num_hidden_layers": 4}
    validate_config(raw)
    raw["models"]["c"] = {"backbone": "composed_pretrained", "init": "scratch", "arch": {"hidden_size": 8}}
    with pytest.raises(ConfigError, match="'models.c.arch': backbone 'composed_pretrained' has a fixed"):
        validate_config(raw)
