"""Results tables: CSV (long form, machine-readable) + Markdown (backbone x benchmark)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from vlm4vla import pipeline
from vlm4vla.eval.metrics import wilson_interval
from vlm4vla.io import atomic_write_text


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the rule that builds it "
                                f"(e.g. `snakemake {path}`)")
    return json.loads(path.read_text())


def main_table(cfg: dict, runs: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per (benchmark, model): trials, successes, success % with Wilson 95% CI."""
    rows = []
    for benchmark, model in runs:
        summary = _read_json(Path(pipeline.eval_dir(benchmark, model)) / "summary.json")
        if not summary.get("complete"):
            raise FileNotFoundError(f"{pipeline.eval_dir(benchmark, model)}/summary.json is from "
                                    "an unfinished evaluation; rerun the evaluate rule")
        policy = _read_json(Path(pipeline.policy_dir(benchmark, model)) / "policy.json")
        overall = summary["overall"]
        n, k = int(overall["n"]), int(overall["successes"])
        lo, hi = wilson_interval(k, n)
        mcfg = cfg["models"][model]
        params = policy.get("param_counts", {})
        rows.append({
            "benchmark": benchmark, "model": model, "backbone": mcfg["backbone"],
            "init": mcfg["init"], "freeze": "+".join(mcfg.get("freeze", [])) or "none",
            "params_total": params.get("total"), "params_trainable": params.get("trainable"),
            "trials": n, "successes": k, "success_pct": round(100 * k / n, 2),
            "ci95_low_pct": round(100 * lo, 2), "ci95_high_pct": round(100 * hi, 2),
        })
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame, title: str) -> str:
    """Rows = models, columns = benchmarks; cell = 'success % [95% CI] (n)'."""
    benches = sorted(df["benchmark"].unique())
    lines = [f"# {title}", "",
             "Success rate % over closed-loop trials, Wilson 95% interval in brackets, "
             "number of trials in parentheses.", "",
             "| model | backbone | init | trainable params | " + " | ".join(benches) + " |",
             "|---|---|---|---:|" + "---:|" * len(benches)]
    for model, g in df.groupby("model", sort=True):
        first = g.iloc[0]
        cells = []
        for b in benches:
            r = g[g["benchmark"] == b]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            cells.append(f"{r.success_pct:.1f} [{r.ci95_low_pct:.1f}, {r.ci95_high_pct:.1f}] (n={r.trials})")
        trainable = "-" if pd.isna(first.params_trainable) else f"{int(first.params_trainable):,}"
        lines.append(f"| {model} | {first.backbone} | {first.init} | {trainable} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, csv_path: str, md_path: str, title: str) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, to_markdown(df, title))
