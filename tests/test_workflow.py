"""Integration: the tiny config through Snakemake and DVC, as a user would run them."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import REPO, SNAKEMAKE, copy_repo, run
from vlm4vla.data.episodes import EpisodeStore

pytestmark = pytest.mark.slow

DETERMINISTIC = ["results/tables/main.csv", "results/tables/main.md", "results/tables/ablation.csv",
                 "results/tables/ablation.md", "results/tables/init.csv", "results/tables/init.md",
                 "results/tables/paper_vs_reproduced.csv",
                 "results/tables/paper_vs_reproduced.md", "results/figures/main.png",
                 "results/figures/main.svg", "results/eval/metaworld/qwen25vl_tiny/summary.json",
                 "results/eval/metaworld/qwen25vl_tiny/episodes.jsonl",
                 "results/tables/aux.csv", "results/tables/aux.md", "results/figures/aux.png",
                 "results/figures/aux.svg", "results/tables/capability.csv",
                 "results/tables/capability.md", "results/tables/capability_correlations.csv",
                 "results/figures/capability.png", "results/figures/capability.svg",
                 "results/tables/vision_supervision.csv", "results/tables/vision_supervision.md",
                 "results/vqa/eval/qwen25vl_tiny/base/metrics.json",
                 "results/vqa/eval/qwen25vl_tiny/aux_pointing/metrics.json",
                 "results/vqa/data/records.jsonl", "results/vqa/data/meta.json"]


def _digests(root, rels):
    return {r: hashlib.sha256((root / r).read_bytes()).hexdigest() for r in rels}


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake dry run, without the 'total' line."""
    lines = dry_run_output.split("Job stats:")[1].splitlines()[3:]
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def _test_cfg():
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def test_every_artifact_is_real(tiny_run):
    cfg = _test_cfg()
    bench = cfg["benchmarks"]["metaworld"]
    store = EpisodeStore(tiny_run / "results/demos/metaworld")  # verifies checksums
    size = bench["image_size"]
    assert store.frames.shape[1:] == (size, size, 3) and store.frames.dtype == np.uint8
    assert sorted({e["task"] for e in store.episodes}) == sorted(bench["tasks"])
    assert len(store.episodes) == bench["demos_per_task"] * len(bench["tasks"])

    policy = tiny_run / "results/vla/metaworld/qwen25vl_tiny"
    meta = json.loads((policy / "policy.json").read_text())
    assert meta["param_counts"]["trainable"] > 0
    log = [json.loads(line) for line in (policy / "train_log.jsonl").read_text().splitlines()]
    assert log and all(np.isfinite(r["loss"]) for r in log)

    ev = tiny_run / "results/eval/metaworld/qwen25vl_tiny"
    summary = json.loads((ev / "summary.json").read_text())
    assert summary["complete"] is True
    episodes = [json.loads(line) for line in (ev / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == bench["eval_episodes_per_task"] * len(bench["tasks"])
    assert all(e["error"] is None for e in episodes)
    demo_seeds = {e["seed"] for e in store.episodes}
    assert not demo_seeds & {e["seed"] for e in episodes}, "evaluation must use held-out states"

    table = (tiny_run / "results/tables/main.csv").read_text().splitlines()
    assert table[0].startswith("benchmark,run,model,variant,backbone")
    rows = {r["run"]: r for r in (dict(zip(table[0].split(","), line.split(","))) for line in table[1:])}
    # the backbone grid plus the init experiment's pair (its from-scratch row)
    assert sorted(rows) == ["composed", "composed--scratch", "qwen25vl_tiny"]
    assert rows["composed--scratch"]["init"] == "scratch"
    row = rows["qwen25vl_tiny"]
    assert int(row["trials"]) == len(episodes)
    assert int(row["successes"]) == sum(e["success"] for e in episodes)
    assert "qwen25vl_tiny" in (tiny_run / "results/tables/main.md").read_text()
    with Image.open(tiny_run / "results/figures/main.png") as im:
        assert im.size[0] > 300 and im.size[1] > 200
    assert (tiny_run / "results/figures/main.svg").read_text().lstrip().startswith("<?xml")
    for rel in DETERMINISTIC:
        assert str(tiny_run) not in (tiny_run / rel).read_bytes().decode("latin-1")


def test_ablation_table_tests_against_full(tiny_run):
    import pandas as pd

    df = pd.read_csv(tiny_run / "results/tables/ablation.csv")
    assert sorted(df["variant"]) == ["freeze_vision", "full"]
    frozen = df[df["variant"] == "freeze_vision"].iloc[0]
    full = df[df["variant"] == "full"].iloc[0]
    assert frozen["params_trainable"] < full["params_trainable"] == full["params_total"]
    assert frozen["reference"] == "qwen25vl_tiny" and 0 <= frozen["p_value"] <= 1
    paper = pd.read_csv(tiny_run / "results/tables/paper_vs_reproduced.csv")
    row = paper[(paper["experiment"] == "ablation") & (paper["variant"] == "freeze_vision")
                & (paper["paper_backbone"] == "Qwen2.5-VL-3B")]
    assert set(row["status"]) == {"stand-in benchmark"} and set(row["run"]) == {"qwen25vl_tiny--freeze_vision"}
    assert (paper["paper_source"].notna()).all()


def test_init_table_pairs_pretrained_with_scratch(tiny_run):
    import pandas as pd

    df = pd.read_csv(tiny_run / "results/tables/init.csv").set_index("run")
    assert sorted(df.index) == ["composed", "composed--scratch"]
    assert df.loc["composed", "init"] == "pretrained" and df.loc["composed--scratch", "init"] == "scratch"
    assert df.loc["composed--scratch", "reference"] == "composed"
    assert df.loc["composed", "params_total"] == df.loc["composed--scratch", "params_total"]
    a = (tiny_run / "results/vla/metaworld/composed/policy.safetensors").read_bytes()
    b = (tiny_run / "results/vla/metaworld/composed--scratch/policy.safetensors").read_bytes()
    assert a != b


def test_aux_experiment_chain(tiny_run):
    """VQA store -> aux-tuned VLM -> VLA that starts from it -> Figure 4 table."""
    import pandas as pd
    from safetensors.torch import load_file

    from vlm4vla.data.vqa import VQAStore

    store = VQAStore(tiny_run / "results/vqa/data")  # verifies checksums
    counts = store.meta["counts"]
    assert counts["pointing"] == {"train": 12, "eval": 6} and counts["general_vqa"]["eval"] == 6
    vlm = load_file(str(tiny_run / "results/vqa/vlm/qwen25vl_tiny/aux_pointing/vlm.safetensors"))
    pol = load_file(str(tiny_run / "results/vla/metaworld/qwen25vl_tiny--aux_pointing/policy.safetensors"))
    base = load_file(str(tiny_run / "results/vla/metaworld/qwen25vl_tiny/policy.safetensors"))
    key = next(k for k in vlm if k.startswith("model.") and "embed_tokens" in k)
    pkey = "backbone.model." + key[len("model."):]
    assert pkey in pol and not (vlm[key] == base[pkey]).all()  # the aux VLA did not start from base
    df = pd.read_csv(tiny_run / "results/tables/aux.csv")
    assert sorted(df["arm"]) == ["aux_pointing", "base"] and set(df["seeds"]) == {2}
    assert set(df["trials"]) == {2 * 2 * 2}  # 2 seeds x 2 tasks x 2 episodes
    corr = pd.read_csv(tiny_run / "results/tables/capability_correlations.csv")
    assert list(corr["benchmark"]) == ["metaworld"] and list(corr["n_points"]) == [2]
    vis = pd.read_csv(tiny_run / "results/tables/vision_supervision.csv")
    assert len(vis) == 6 and set(vis["stage2_vision"]) == {"frozen", "trained"}
    assert sorted(set(vis["stage1"])) == ["FAST tokens, vision frozen", "FAST tokens, vision trained", "none"]
    fast = tiny_run / "results/fast/metaworld/qwen25vl_tiny/full"
    assert (fast / "vlm.safetensors").is_file() and (fast / "fast_tokenizer.json").is_file()


def test_pretrain_vlm_stage_starts_every_stage(tiny_run):
    """init pretrain_vlm: the tiny VLM is trained as a VLM from random weights first; aux
    tuning starts from it, the plain VLA run too, the --scratch twin does not."""
    from safetensors.torch import load_file

    vlm = tiny_run / "results/vqa/vlm/qwen25vl_tiny/pretrain"
    info = json.loads((vlm / "vlm.json").read_text())
    assert info["tasks"] == ["embodied_qa", "general_vqa"] and info["steps"] == 4
    assert info["model_cfg"]["init"] == "scratch"
    aux = json.loads((tiny_run / "results/vqa/vlm/qwen25vl_tiny/aux_pointing/vlm.json").read_text())
    assert aux["model_cfg"]["init"] == "aux" and aux["model_cfg"]["vlm"] == "results/vqa/vlm/qwen25vl_tiny/pretrain"
    pol = json.loads((tiny_run / "results/vla/metaworld/qwen25vl_tiny/policy.json").read_text())
    assert pol["model_cfg"]["init"] == "aux" and pol["model_cfg"]["vlm"] == "results/vqa/vlm/qwen25vl_tiny/pretrain"
    assert pol["model_cfg"]["head_width"] == 128
    w = load_file(str(vlm / "vlm.safetensors"))
    assert all(k.startswith(("model.", "lm_head.")) for k in w)


def test_html_report(tiny_run):
    run([*SNAKEMAKE, "--configfile", "config/test.yaml", "--report", "results/report.html"], cwd=tiny_run)
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "main.png" in html and "ablation.md" in html
    assert "aux.png" in html and "capability.png" in html and "vision_supervision.md" in html


def test_rerun_has_nothing_to_do(tiny_run):
    proc = run([*SNAKEMAKE, "-n", "--configfile", "config/test.yaml"], cwd=tiny_run)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_two_clean_runs_are_byte_identical(tiny_run, tmp_path):
    other = copy_repo(tmp_path)
    run([*SNAKEMAKE, "--cores", "2", "--configfile", "config/test.yaml"], cwd=other)
    assert _digests(tiny_run, DETERMINISTIC) == _digests(other, DETERMINISTIC)
    weights = sorted(p.relative_to(tiny_run) for p in (tiny_run / "results/vla").rglob("*") if p.is_file())
    assert _digests(tiny_run, weights) == _digests(other, weights)


def test_targeted_rule_builds_only_its_dependencies(tmp_path):
    work = copy_repo(tmp_path)
    proc = run([*SNAKEMAKE, "table_main", "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert job_counts(proc.stdout + proc.stderr) == {
        "prepare_demos": 1, "finetune_vla": 3, "evaluate": 3, "table_main": 1,  # + init pair
        "generate_vqa": 1, "pretrain_vlm": 1}  # qwen25vl_tiny is pretrained as a VLM first
    proc = run([*SNAKEMAKE, "table_ablation", "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert job_counts(proc.stdout + proc.stderr) == {
        "prepare_demos": 1, "finetune_vla": 2, "evaluate": 2, "table_ablation": 1,
        "generate_vqa": 1, "pretrain_vlm": 1}
    proc = run([*SNAKEMAKE, "figure_aux", "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert job_counts(proc.stdout + proc.stderr) == {
        "generate_vqa": 1, "prepare_demos": 1, "finetune_vlm": 1, "eval_vqa": 2,
        "finetune_vla": 4, "evaluate": 4, "figure_aux": 1, "pretrain_vlm": 1}
    proc = run([*SNAKEMAKE, "figure_capability", "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert job_counts(proc.stdout + proc.stderr) == {
        "generate_vqa": 1, "prepare_demos": 1, "finetune_vlm": 1, "eval_vqa": 2,
        "finetune_vla": 2, "evaluate": 2, "figure_capability": 1, "pretrain_vlm": 1}
    proc = run([*SNAKEMAKE, "table_vision_supervision", "-n", "--configfile", "config/test.yaml"], cwd=work)
    assert job_counts(proc.stdout + proc.stderr) == {
        "prepare_demos": 1, "stage1_fast": 2, "finetune_vla": 6, "evaluate": 6,
        "table_vision_supervision": 1, "generate_vqa": 1, "pretrain_vlm": 1}


def test_dvc_repro_reproduces_table_hashes(tiny_run, tmp_path):
    work = copy_repo(tmp_path)
    run(["git", "init", "-q"], cwd=work)
    run([sys.executable, "workflow_scripts/make_dvc_yaml.py", "--configfile", "config/test.yaml",
         "--out", "dvc.yaml"], cwd=work)
    run(["dvc", "repro"], cwd=work)
    # DVC reads config/test.yaml alone, Snakemake merges it over config.yaml (another key
    # order): the outputs must not depend on it (they once did, via the VQA task order).
    assert _digests(work, DETERMINISTIC) == _digests(tiny_run, DETERMINISTIC)
    status = run(["dvc", "status"], cwd=work)
    assert "up to date" in status.stdout
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    outs = {o["path"]: o for st in lock["stages"].values() for o in st.get("outs", [])}
    for rel in ["results/demos/metaworld", "results/vla/metaworld/qwen25vl_tiny",
                "results/vla/metaworld/qwen25vl_tiny--freeze_vision", "results/vqa/data",
                *[r for r in DETERMINISTIC if not r.startswith("results/vqa/data/")]]:  # in a dir out
        assert rel in outs and outs[rel]["md5"], rel


def test_committed_dvc_yaml_matches_generator():
    proc = subprocess.run([sys.executable, "workflow_scripts/make_dvc_yaml.py", "--configfile",
                           "config/config.yaml"], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout == (REPO / "dvc.yaml").read_text(), \
        "dvc.yaml is stale: python workflow_scripts/make_dvc_yaml.py --configfile config/config.yaml --out dvc.yaml"
