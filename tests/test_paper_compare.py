"""Paper-vs-reproduced matching: stand-in rows, direction of ablations, unmatched rows."""

import pandas as pd

from vlm4vla.report.paper_compare import compare, to_markdown

REPORTED = pd.DataFrame([
    ["ablation", "Qwen2.5-VL-3B", "full_finetune", "simpler_bridge", "success_pct", 48.0, "t3"],
    ["ablation", "Qwen2.5-VL-3B", "freeze_vision", "simpler_bridge", "success_pct", 23.95, "t3"],
    ["ablation", "PaliGemma-1", "freeze_vision", "simpler_bridge", "success_pct", 13.25, "t3"],
    ["vision_supervision", "Qwen3-VL-4B", "stage1_none|stage2_vision_frozen", "simpler_bridge",
     "success_pct", 27.6, "t4"],
], columns=["experiment", "backbone", "variant", "benchmark", "metric", "value", "source"])

CFG = {"models": {"tiny": {"paper_name": "Qwen2.5-VL-3B"}, "other": {}},
       "benchmarks": {"metaworld": {}, "bridge": {"paper_name": "simpler_bridge"}}}


def _ours(rows):
    return pd.DataFrame(rows, columns=["benchmark", "run", "model", "variant", "success_pct",
                                       "ci95_low_pct", "ci95_high_pct", "trials", "delta_pct", "p_value"])


def test_direction_and_status():
    ablation = _ours([["metaworld", "tiny", "tiny", "full", 60.0, 40, 77, 20, None, None],
                      ["metaworld", "tiny--freeze_vision", "tiny", "freeze_vision", 30.0, 15, 52, 20, -30.0, 0.011],
                      ["bridge", "tiny--freeze_vision", "tiny", "freeze_vision", 90.0, 68, 97, 20, 30.0, 0.04],
                      ["libero", "tiny--freeze_vision", "tiny", "freeze_vision", 55.0, 34, 74, 20, -5.0, 1.0]])
    df = compare(CFG, REPORTED, {"ablation": ablation})
    fv = df[(df["variant"] == "freeze_vision") & (df["paper_backbone"] == "Qwen2.5-VL-3B")]
    by_bench = {r.benchmark: r for r in fv.itertuples()}
    assert by_bench["metaworld"].status == "stand-in benchmark"
    assert by_bench["metaworld"].same_direction == "yes"  # both drop
    assert by_bench["bridge"].status == "reproduced"
    assert by_bench["bridge"].same_direction == "no"  # paper drops, ours rises
    # same sign as the paper but p = 1: the trials cannot tell it from chance, not agreement
    assert by_bench["libero"].same_direction == "not significant"
    assert abs(by_bench["bridge"].paper_delta_vs_full - (23.95 - 48.0)) < 1e-9
    unmatched = df[df["paper_backbone"] == "PaliGemma-1"]
    assert list(unmatched["status"]) == ["not run in this configuration"]
    md = to_markdown(df)
    assert "not significant" in md
    assert "stage1_none\\|stage2_vision_frozen" in md  # '|' escaped inside a cell
    assert all(line.count(" | ") >= 10 for line in md.splitlines() if line.startswith("| ablation"))
