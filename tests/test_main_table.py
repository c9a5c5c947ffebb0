"""The main table's rows (backbone grid + the from-scratch row) and the main figure."""

import matplotlib.pyplot as plt
import pandas as pd

from vlm4vla import pipeline as P
from vlm4vla.report import figures
from vlm4vla.report.tables import to_markdown


def _cfg(init_benchmarks):
    return {"experiments": {"main": {"models": ["b", "a"], "benchmarks": ["mw", "lib"]},
                            "init": {"models": ["c"], "benchmarks": init_benchmarks}}}


def test_main_rows_add_the_init_pair_on_main_benchmarks_only():
    assert P.main_runs(_cfg(["mw"])) == [("lib", "a"), ("lib", "b"), ("mw", "a"), ("mw", "b"),
                                         ("mw", "c"), ("mw", "c--scratch")]
    assert ("other", "c") not in P.main_runs(_cfg(["other"]))
    cfg = _cfg(["mw"])
    del cfg["experiments"]["init"]
    assert P.main_runs(cfg) == P.main_grid(cfg)


def _row(bench, run, k, n=10):
    model, variant = P.split_run(run)
    return {"benchmark": bench, "run": run, "model": model, "variant": variant,
            "backbone": "x", "init": "scratch" if variant == "scratch" else "pretrained",
            "freeze": "none", "params_total": 5, "params_trainable": 5, "trials": n,
            "successes": k, "success_pct": 100 * k / n, "ci95_low_pct": 0.0,
            "ci95_high_pct": 50.0}


def test_main_figure_has_one_series_per_run_and_markdown_names_the_scratch_row(tmp_path, monkeypatch):
    df = pd.DataFrame([_row("lib", "a", 1), _row("mw", "a", 2), _row("mw", "c", 3),
                       _row("mw", "c--scratch", 0)])
    csv = tmp_path / "main.csv"
    df.to_csv(csv, index=False)
    seen = {}
    monkeypatch.setattr(figures, "_save", lambda fig, *a: seen.setdefault("fig", fig))
    figures.main_figure(str(csv), "m.png", "m.svg")
    (ax,) = seen["fig"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "c", "c--scratch"]
    assert sorted(t.get_text() for t in ax.texts) == ["0/10", "1/10", "2/10", "3/10"]  # no bar for c on lib
    plt.close(seen["fig"])
    md = to_markdown(df, "Main")
    assert "scratch-init row" in md and "| c--scratch | x | scratch |" in md
    assert md.count("| - |") == 2  # c and its twin were not run on lib


def test_run_row_init_names_what_the_run_starts_from(monkeypatch):
    # not the loader's internal "aux" (a saved VLM folder): the model's init or the run's start
    from vlm4vla.config import load_config
    from vlm4vla.report import tables

    cfg = load_config(["config/config.yaml"])
    monkeypatch.setattr(tables, "read_artifact_json", lambda path: (
        {"complete": True, "overall": {"n": 10, "successes": 4}} if path.name == "summary.json"
        else {"param_counts": {"total": 2, "trainable": 2}}))
    init = {run: tables.run_row(cfg, "metaworld", run)["init"]
            for run in ("qwen25vl_tiny", "qwen25vl_tiny--scratch", "qwen25vl_tiny--aux_pointing",
                        "qwen25vl_tiny--fast_full--freeze_vision")}
    assert init == {"qwen25vl_tiny": "pretrain_vlm", "qwen25vl_tiny--scratch": "scratch",
                    "qwen25vl_tiny--aux_pointing": "aux_pointing",
                    "qwen25vl_tiny--fast_full--freeze_vision": "fast_full"}
