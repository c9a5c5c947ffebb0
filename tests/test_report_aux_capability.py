"""Figure 4 / Figure 3 tables and figures on synthetic results (no training): pooled
success, Fisher tests, min-max normalisation, correlations against scipy, plotted series."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from conftest import REPO
from vlm4vla import pipeline as P
from vlm4vla.config import load_config
from vlm4vla.report import aux, capability, figures

# (benchmark, run) -> (successes, n); VLM -> VQA accuracy per task (6 questions each)
OUTCOMES = {"qwen25vl_tiny": (1, 4), "qwen25vl_tiny--seed1": (0, 4),
            "qwen25vl_tiny--aux_pointing": (4, 4), "qwen25vl_tiny--aux_pointing--seed1": (3, 4)}
VQA = {"base": {"general_vqa": 0.1, "embodied_qa": 0.5, "pointing": 0.0},
       "aux_pointing": {"general_vqa": 0.3, "embodied_qa": 0.7, "pointing": 0.5}}


@pytest.fixture()
def results(tmp_path, monkeypatch):
    cfg = load_config([REPO / "config/config.yaml", REPO / "config/test.yaml"])
    monkeypatch.chdir(tmp_path)  # artifact paths are relative to the working directory
    for run, (k, n) in OUTCOMES.items():
        d = tmp_path / P.eval_dir("metaworld", run)
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps(
            {"complete": True, "overall": {"n": n, "successes": k}}))
    for vlm, accs in VQA.items():
        d = tmp_path / P.vqa_eval_dir("qwen25vl_tiny", vlm)
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps(
            {t: {"n": 6, "accuracy": a} for t, a in accs.items()}))
    return cfg


def test_aux_table_pools_seeds_and_tests_against_base(results):
    df = aux.aux_table(results).set_index("arm")
    tuned, base = df.loc["aux_pointing"], df.loc["base"]
    assert (tuned.trials, tuned.successes, base.trials, base.successes) == (8, 7, 8, 1)
    assert tuned.seed_success_pct == "100.0;75.0" and base.seed_success_pct == "25.0;0.0"
    assert tuned.vqa_base_acc == 0.0 and tuned.vqa_tuned_acc == 0.5 and tuned.vqa_delta == 0.5
    p = sps.fisher_exact([[7, 1], [1, 7]]).pvalue
    assert tuned.p_value == pytest.approx(p, abs=1e-4) and tuned.significant == "yes"
    assert tuned.delta_pct == pytest.approx(75.0)
    md = aux.to_markdown(aux.aux_table(results), aux.vqa_matrix(results))
    assert md.index("| base |") < md.index("| aux_pointing |")  # base arm first
    assert "0.000 -> 0.500" in md


def test_aux_table_refuses_an_unfinished_evaluation(results):
    path = P.eval_dir("metaworld", "qwen25vl_tiny--seed1") + "/summary.json"
    with open(path, "w") as f:
        json.dump({"complete": False, "overall": {"n": 4, "successes": 0}}, f)
    with pytest.raises(FileNotFoundError, match="unfinished evaluation"):
        aux.aux_table(results)


def test_capability_points_and_correlations(results):
    pts = capability.capability_points(results).set_index("run")
    # x = general_vqa + embodied_qa pooled over their questions (config x_tasks)
    assert pts.loc["qwen25vl_tiny", "capability"] == pytest.approx(0.3)
    assert pts.loc["qwen25vl_tiny--aux_pointing", "capability"] == pytest.approx(0.5)
    assert list(pts["score_norm"]) == [0.0, 1.0]  # min-max per benchmark
    corr = capability.correlations(pts.reset_index(), n_boot=200, seed=0).iloc[0]
    assert corr.n_points == 2 and corr.slope == pytest.approx(5.0)
    assert corr.pearson == pytest.approx(1.0)


def test_measured_capability_pools_questions_and_names_a_missing_task():
    m = {"general_vqa": {"n": 96, "accuracy": 0.95}, "embodied_qa": {"n": 32, "accuracy": 0.55}}
    assert capability.measured_capability(m, ["general_vqa"], "m") == 0.95
    assert capability.measured_capability(m, ["general_vqa", "embodied_qa"], "m") == \
        pytest.approx((0.95 * 96 + 0.55 * 32) / 128)
    with pytest.raises(ValueError, match="no depth task.*x_tasks"):
        capability.measured_capability(m, ["general_vqa", "depth"], "m")


def test_correlations_match_scipy_and_are_reproducible():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 9)
    y = np.clip(0.5 * x + rng.normal(0, 0.2, 9), 0, 1)
    pts = pd.DataFrame({"benchmark": "b", "capability": x, "score_norm": y})
    a = capability.correlations(pts, n_boot=500, seed=3).iloc[0]
    b = capability.correlations(pts, n_boot=500, seed=3).iloc[0]
    assert a.pearson == pytest.approx(sps.pearsonr(x, y).statistic, abs=1e-4)
    assert a.spearman == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-4)
    assert a.pearson_ci95_low <= a.pearson <= a.pearson_ci95_high
    assert a.equals(b)
    flat = capability.correlations(pts.assign(capability=0.2), n_boot=100, seed=0).iloc[0]
    assert pd.isna(flat.pearson) and pd.isna(flat.slope) and "x constant" in flat.note


def test_published_scores_need_their_columns(tmp_path):
    bad = tmp_path / "s.csv"
    bad.write_text("backbone,score\nA,1\n")
    with pytest.raises(ValueError, match="missing column"):
        capability.published_scores(bad)
    with pytest.raises(FileNotFoundError, match="general-benchmark scores"):
        capability.published_scores(tmp_path / "none.csv")
    shipped = capability.published_scores(REPO / P.GENERAL_SCORES)
    assert list(shipped.columns) == list(capability.GENERAL_COLUMNS)


def _captured(monkeypatch):
    seen = {}

    def save(fig, png, svg):
        seen["fig"] = fig
    monkeypatch.setattr(figures, "_save", save)
    return seen


def test_figures_plot_the_expected_series(results, monkeypatch):
    seen = _captured(monkeypatch)
    figures.aux_figure(aux.aux_table(results), "a.png", "a.svg")
    skill, control = seen["fig"].axes
    assert len(skill.patches) == 2  # base and tuned bar of the one aux task
    dots = [line for line in control.lines if line.get_marker() == "o"]
    assert sorted(len(d.get_xdata()) for d in dots) == [2, 2]  # two arms x two seeds

    pts = capability.capability_points(results)
    corr = capability.correlations(pts, n_boot=100, seed=0)
    figures.capability_figure(pts, corr, "x", "c.png", "c.svg")
    (ax,) = seen["fig"].axes
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 2
    assert len(ax.lines) == 1  # the fitted line


def test_figures_are_byte_identical_pngs(results, tmp_path):
    df = aux.aux_table(results)
    out = []
    for i in range(2):
        figures.aux_figure(df, str(tmp_path / f"{i}.png"), str(tmp_path / f"{i}.svg"))
        out.append(((tmp_path / f"{i}.png").read_bytes(), (tmp_path / f"{i}.svg").read_bytes()))
    assert out[0] == out[1] and out[0][0][:8] == b"\x89PNG\r\n\x1a\n"


# --- a released arm (the paper's RoboBrain2: a VLM tuned by others from the base, released) ---

def _released_cfg(tmp_path, released="{qwen25vl_tiny: {robobrain: rb_tiny}}", rb_backbone="qwen2_5_vl"):
    overlay = tmp_path / "released.yaml"
    overlay.write_text("models:\n"
                       f"  rb_tiny: {{backbone: {rb_backbone}, init: scratch, head_width: 32,\n"
                       "            arch: {hidden_size: 32, num_hidden_layers: 1, image_size: 56}}\n"
                       f"experiments:\n  aux:\n    released: {released}\n")
    return load_config([REPO / "config/config.yaml", REPO / "config/test.yaml", overlay])


def test_a_released_arm_is_run_scored_and_compared_with_its_base(results, tmp_path):
    cfg = _released_cfg(tmp_path)
    runs = [r for _, r in P.aux_runs(cfg)]
    assert "rb_tiny" in runs and "rb_tiny--seed1" in runs and "qwen25vl_tiny--seed1" in runs
    assert P.aux_vlm_jobs(cfg) == P.aux_vlm_jobs(results)  # nothing is tuned here for it
    assert ("rb_tiny", "base") in P.vqa_eval_jobs(cfg)  # its skill is measured like the others'
    assert [(a.model, a.arm, a.run) for a in P.aux_arm_list(cfg)] == [
        ("qwen25vl_tiny", "base", "qwen25vl_tiny"),
        ("qwen25vl_tiny", "aux_pointing", "qwen25vl_tiny--aux_pointing"),
        ("qwen25vl_tiny", "robobrain", "rb_tiny")]
    for run, (k, n) in {"rb_tiny": (3, 4), "rb_tiny--seed1": (2, 4)}.items():
        d = tmp_path / P.eval_dir("metaworld", run)
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"complete": True, "overall": {"n": n, "successes": k}}))
    d = tmp_path / P.vqa_eval_dir("rb_tiny", "base")
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps(
        {t: {"n": 6, "accuracy": a} for t, a in {"general_vqa": 0.6, "pointing": 0.9}.items()}))
    df = aux.aux_table(cfg).set_index("arm")
    rb, base = df.loc["robobrain"], df.loc["base"]
    assert rb.model == "qwen25vl_tiny" and rb.vqa_task == "" and rb.general_vqa_acc == 0.6
    assert (rb.trials, rb.successes, rb.seed_success_pct) == (8, 5, "75.0;50.0")
    assert rb.p_value == pytest.approx(sps.fisher_exact([[5, 3], [1, 7]]).pvalue, abs=1e-4)
    assert rb.delta_pct == pytest.approx(62.5 - 12.5)
    matrix = aux.vqa_matrix(cfg)
    assert matrix[matrix["vlm"] == "robobrain"].iloc[0]["pointing"] == 0.9
    md = aux.to_markdown(aux.aux_table(cfg), matrix)
    assert "| qwen25vl_tiny | robobrain | released VLM |" in md


def test_a_released_arm_is_checked(tmp_path):
    from vlm4vla.config import ConfigError

    with pytest.raises(ConfigError, match=r"'experiments\.aux\.released\.qwen25vl_tiny\.robobrain' names "
                                          r"model 'nope', which is not defined"):
        _released_cfg(tmp_path, released="{qwen25vl_tiny: {robobrain: nope}}")
    with pytest.raises(ConfigError, match=r"released model 'rb_tiny' has backbone 'paligemma', its base "
                                          r"'qwen25vl_tiny' has 'qwen2_5_vl'"):
        _released_cfg(tmp_path, rb_backbone="paligemma")
    with pytest.raises(ConfigError, match=r"arm names 'base' and 'aux_<task>' are the pipeline's own"):
        _released_cfg(tmp_path, released="{qwen25vl_tiny: {aux_pointing: rb_tiny}}")


# --- Figure 4 on a chain benchmark (the paper's: CALVIN, average length) ---------------------

CHAINS = {"qwen25vl_tiny": [0, 1, 1, 2], "qwen25vl_tiny--seed1": [1, 0, 2, 1],
          "qwen25vl_tiny--aux_pointing": [3, 5, 4, 2], "qwen25vl_tiny--aux_pointing--seed1": [5, 4, 3, 4]}


def test_aux_table_on_a_chain_benchmark_reports_average_length(results, monkeypatch):
    from vlm4vla.eval.chains import chain_metrics
    from vlm4vla.report.stats import permutation_p

    for run, lengths in CHAINS.items():  # CALVIN-style records of every run of the figure
        d = P.eval_dir("metaworld", run)
        with open(f"{d}/episodes.jsonl", "w") as f:
            f.writelines(json.dumps({"chain": i, "completed": n}) + "\n" for i, n in enumerate(lengths))
        with open(f"{d}/summary.json", "w") as f:
            json.dump({"complete": True, "overall": {"n": 4, "successes": sum(n > 0 for n in lengths)},
                       "chains": chain_metrics(lengths, 5)}, f)
    df = aux.aux_table(results).set_index("arm")
    tuned, base = df.loc["aux_pointing"], df.loc["base"]
    pooled_t = CHAINS["qwen25vl_tiny--aux_pointing"] + CHAINS["qwen25vl_tiny--aux_pointing--seed1"]
    pooled_b = CHAINS["qwen25vl_tiny"] + CHAINS["qwen25vl_tiny--seed1"]
    assert tuned.metric == "avg_len" and tuned.avg_len == pytest.approx(np.mean(pooled_t))
    assert tuned.seed_avg_len == "3.500;4.000" and base.avg_len == pytest.approx(1.0)
    assert tuned.avg_len_ci95_low < tuned.avg_len < tuned.avg_len_ci95_high
    assert tuned.success_after_5_pct == pytest.approx(100 * 2 / 8)
    assert tuned.delta_avg_len == pytest.approx(np.mean(pooled_t) - np.mean(pooled_b))
    assert tuned.p_value == pytest.approx(permutation_p(pooled_t, pooled_b), abs=1e-4)
    assert pd.isna(tuned.delta_pct) and tuned.significant == "yes"
    md = aux.to_markdown(aux.aux_table(results), aux.vqa_matrix(results))
    assert "avg len 3.75 [" in md and "(8 chains)" in md and "+2.75 subtasks" in md
    assert "avg len 0.500, 1.000" not in md and "avg len 1.000, 1.000" in md  # per seed
    assert "permutation test over the pooled chains" in md and "- metaworld:" not in md  # no power line
    seen = _captured(monkeypatch)
    figures.aux_figure(aux.aux_table(results), "a.png", "a.svg")
    control = seen["fig"].axes[1]
    assert control.get_ylabel() == "VLA average length (per seed)"
    dots = sorted(sorted(d.get_ydata()) for d in control.lines if d.get_marker() == "o")
    assert dots == [[1.0, 1.0], [3.5, 4.0]]
