"""Run names, experiment expansion and config cross-checks of the aux / Table 4 / Figure 3
experiments (vlm4vla.pipeline, vlm4vla.config): fast, no training."""

import copy

import pytest
import yaml

from conftest import REPO
from vlm4vla import pipeline as P
from vlm4vla.config import ConfigError, load_config, validate_config


@pytest.fixture(scope="module")
def cfg():
    return load_config([REPO / "config/config.yaml", REPO / "config/test.yaml"])


def test_parse_run_grammar():
    assert P.parse_run("m") == {"model": "m", "start": None, "freeze": None, "seed": 0}
    assert P.parse_run("m--aux_depth--seed3") == {"model": "m", "start": "aux_depth", "freeze": None, "seed": 3}
    assert P.parse_run("m--fast_full--freeze_vision")["freeze"] == "freeze_vision"
    with pytest.raises(KeyError, match="unknown run modifier 'frozen'"):
        P.parse_run("m--frozen")
    with pytest.raises(KeyError, match="two start modifiers"):
        P.parse_run("m--scratch--aux_depth")
    with pytest.raises(KeyError, match="unknown stage 1 'fast_half'"):
        P.parse_run("m--fast_half")


def test_model_cfg_of_modified_runs(cfg):
    aux = P.model_cfg(cfg, "qwen25vl_tiny--aux_pointing--seed1")
    assert aux["init"] == "aux" and aux["vlm"] == "results/vqa/vlm/qwen25vl_tiny/aux_pointing"
    fast = P.model_cfg(cfg, "qwen25vl_tiny--fast_frozen_vision--freeze_vision", "metaworld")
    assert fast["vlm"] == "results/fast/metaworld/qwen25vl_tiny/frozen_vision"
    assert fast["freeze"] == ["vision"]
    with pytest.raises(KeyError, match="benchmark is needed"):
        P.model_cfg(cfg, "qwen25vl_tiny--fast_full")
    with pytest.raises(KeyError, match="VQA task 'colour' is not configured"):
        P.model_cfg(cfg, "qwen25vl_tiny--aux_colour")


def test_seed_runs_keep_the_seed0_backbone(cfg):
    base = P.train_spec(cfg, "metaworld", "qwen25vl_tiny")
    s1 = P.train_spec(cfg, "metaworld", "qwen25vl_tiny--seed1")
    assert "backbone_seed" not in base and base["seed"] == cfg["seed"]
    assert s1["seed"] == cfg["seed"] + 1 and s1["backbone_seed"] == cfg["seed"]
    assert {k: v for k, v in s1.items() if k not in ("seed", "backbone_seed", "model_name")} == \
        {k: v for k, v in base.items() if k not in ("seed", "model_name")}


def test_benchmark_recipe_overrides_train(cfg):
    c = copy.deepcopy(cfg)
    c["train"]["lr_schedule"] = "cosine"
    c["benchmarks"]["metaworld"].update(train_steps=7, lr_schedule="constant")
    spec = P.train_spec(c, "metaworld", "qwen25vl_tiny")
    assert spec["train"]["steps"] == 7 and spec["train"]["lr_schedule"] == "constant"
    other = [b for b in c["benchmarks"] if b != "metaworld"][0]
    c["benchmarks"][other].pop("lr_schedule", None)  # no override there: train's own
    assert P.train_spec(c, other, "qwen25vl_tiny")["train"]["lr_schedule"] == "cosine"
    # a recipe key changes training, never the demos; DVC tracks it for training
    assert P.demo_spec(c, "metaworld") == P.demo_spec(cfg, "metaworld")
    keys = P.read_keys(P.train_spec, c, "metaworld", "qwen25vl_tiny")
    assert {"benchmarks.metaworld.train_steps", "benchmarks.metaworld.lr_schedule"} <= set(keys)


def test_experiment_expansion(cfg):
    assert P.aux_runs(cfg) == [("metaworld", r) for r in sorted([
        "qwen25vl_tiny", "qwen25vl_tiny--seed1", "qwen25vl_tiny--aux_pointing",
        "qwen25vl_tiny--aux_pointing--seed1"])]
    vis = [r for _, r in P.vision_runs(cfg)]
    assert len(vis) == 6 and "qwen25vl_tiny" in vis and "qwen25vl_tiny--freeze_vision" in vis
    assert "qwen25vl_tiny--fast_full--freeze_vision" in vis
    assert P.stage1_jobs(cfg) == [("metaworld", "qwen25vl_tiny", "frozen_vision"),
                                  ("metaworld", "qwen25vl_tiny", "full")]
    # Figure 3 points: the main run and the seed-0 aux run; x from their start VLMs
    assert P.capability_runs(cfg) == [("metaworld", "qwen25vl_tiny"),
                                      ("metaworld", "qwen25vl_tiny--aux_pointing")]
    assert P.vqa_eval_jobs(cfg) == [("qwen25vl_tiny", "aux_pointing"), ("qwen25vl_tiny", "base")]
    runs = P.all_runs(cfg)
    assert len(runs) == len(set(runs))  # each run trained and evaluated once
    assert P.start_vlm_input(cfg, "metaworld", "qwen25vl_tiny--aux_pointing--seed1") == \
        ["results/vqa/vlm/qwen25vl_tiny/aux_pointing"]
    # init pretrain_vlm: the plain run starts from the pretrain_vlm folder, its scratch twin not
    assert P.start_vlm_input(cfg, "metaworld", "qwen25vl_tiny") == ["results/vqa/vlm/qwen25vl_tiny/pretrain"]
    assert P.start_vlm_input(cfg, "metaworld", "qwen25vl_tiny--scratch") == []
    assert P.pretrain_jobs(cfg) == ["qwen25vl_tiny"]


def _raw():
    raw = yaml.safe_load((REPO / "config/config.yaml").read_text())
    return copy.deepcopy(raw)


def test_null_in_an_overlay_drops_an_inherited_entry(tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("vqa: {tasks: {depth: null}}\nexperiments: {aux: {tasks: [pointing]}}\n")
    cfg = load_config([REPO / "config/config.yaml", overlay])
    assert "depth" not in cfg["vqa"]["tasks"] and "pointing" in cfg["vqa"]["tasks"]


def test_config_cross_checks_name_the_key():
    raw = _raw()
    raw["experiments"]["aux"]["tasks"] = ["pointing", "colour"]
    with pytest.raises(ConfigError, match=r"experiments\.aux\.tasks.*'colour'"):
        validate_config(raw)
    raw = _raw()
    raw["models"]["composed"] = {"backbone": "composed_pretrained", "init": "pretrained"}
    raw["experiments"]["aux"]["models"] = ["composed"]
    with pytest.raises(ConfigError, match=r"experiments\.aux\.models.*'composed'.*language-model head"):
        validate_config(raw)
    raw = _raw()
    del raw["vqa"]
    with pytest.raises(ConfigError, match="need a 'vqa' section"):
        validate_config(raw)
    raw = _raw()
    del raw["pretrain"]
    with pytest.raises(ConfigError, match="init 'pretrain_vlm', which needs a 'pretrain' section"):
        validate_config(raw)
    raw = _raw()
    raw["pretrain"]["tasks"] = ["general_vqa", "captions"]
    with pytest.raises(ConfigError, match=r"pretrain\.tasks"):
        validate_config(raw)
    raw = _raw()
    raw["vqa"]["tasks"]["pointng"] = {"train": 1, "eval": 1}
    with pytest.raises(ConfigError, match="vqa.tasks"):
        validate_config(raw)
    raw = _raw()
    raw["experiments"]["capability"]["benchmarks"] = ["calvin"]
    with pytest.raises(ConfigError, match="capability.benchmarks"):
        validate_config(raw)


def test_test_config_means_the_same_to_snakemake_and_dvc():
    """Snakemake overlays config/test.yaml on config/config.yaml; dvc.yaml generated from
    test.yaml makes every script read test.yaml alone. Every stage's spec must be the same
    under both, or `dvc repro` and `snakemake --configfile config/test.yaml` build different
    artifacts (a key set in config.yaml only, such as train.lr_schedule, would leak into one)."""
    snake = load_config([REPO / "config/config.yaml", REPO / "config/test.yaml"])
    dvc = load_config([REPO / "config/test.yaml"])
    assert P.all_runs(snake) == P.all_runs(dvc)
    checked = 0
    for name, st in P.STAGES.items():
        assert st.jobs(snake) == st.jobs(dvc), name
        for values in st.jobs(dvc) if st.spec else []:
            assert st.spec(snake, *values) == st.spec(dvc, *values), f"{name}{values} differs"
            checked += 1
    assert checked > 20


def test_paper_scale_keeps_the_papers_constant_lr():
    """config/paper.yaml is overlaid on config.yaml, whose Meta-World recipe decays the lr:
    every paper-scale training must still use the official warm-up-then-constant lr."""
    paper = load_config([REPO / "config/config.yaml", REPO / "config/paper.yaml"])
    assert {P.train_spec(paper, b, r)["train"]["lr_schedule"] for b, r in P.all_runs(paper)} == {"constant"}


def test_benchmark_protocol_overrides_evaluate(cfg):
    """The executed actions per chunk are a benchmark's protocol (official: CALVIN 10,
    LIBERO / Bridge 4, 2 or 1): benchmarks.<b>.execute_chunk wins over evaluate's, re-runs
    evaluation (Snakemake spec, DVC params) and never the demos."""
    c = copy.deepcopy(cfg)
    c["benchmarks"]["metaworld"]["execute_chunk"] = 2
    assert P.eval_spec(c, "metaworld", "qwen25vl_tiny")["evaluate"]["execute_chunk"] == 2
    assert P.eval_spec(cfg, "metaworld", "qwen25vl_tiny")["evaluate"]["execute_chunk"] == \
        cfg["evaluate"]["execute_chunk"]
    assert "benchmarks.metaworld.execute_chunk" in P.read_keys(P.eval_spec, c, "metaworld", "qwen25vl_tiny")
    assert P.demo_spec(c, "metaworld") == P.demo_spec(cfg, "metaworld")
