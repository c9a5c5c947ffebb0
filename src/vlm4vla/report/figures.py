"""Figures, rendered deterministically: fixed style, no timestamps or software versions in
the PNG/SVG metadata, a fixed SVG id salt. Two runs give byte-identical files."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vlm4vla.io import atomic_write_bytes  # noqa: E402

PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}


def _save(fig, png_path: str, svg_path: str) -> None:
    with matplotlib.rc_context({"svg.hashsalt": "vlm4vla", "svg.fonttype": "path"}):
        for path, fmt, meta in ((png_path, "png", PNG_METADATA), (svg_path, "svg", SVG_METADATA)):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, metadata=meta, dpi=150)
            atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)


def main_figure(table_csv: str, png_path: str, svg_path: str) -> None:
    """Grouped bars: success % per run (backbone, or its from-scratch twin), one group per
    benchmark, Wilson 95% error bars."""
    df = pd.read_csv(table_csv)
    benches = sorted(df["benchmark"].unique())
    runs = sorted(df["run"].unique())
    width = 0.8 / max(len(runs), 1)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 1.4 * len(benches) * max(1, len(runs) / 2)), 3.8))
        x = np.arange(len(benches))
        for i, run in enumerate(runs):
            sub = df[df["run"] == run].set_index("benchmark").reindex(benches)
            y = sub["success_pct"].to_numpy(dtype=float)
            err = np.vstack([y - sub["ci95_low_pct"].to_numpy(dtype=float),
                             sub["ci95_high_pct"].to_numpy(dtype=float) - y])
            xs = x + (i - (len(runs) - 1) / 2) * width
            ax.bar(xs, y, width, yerr=err, capsize=3, label=run)
            for xi, k, n, top in zip(xs, sub["successes"], sub["trials"], sub["ci95_high_pct"]):
                if not pd.isna(n):  # successes / trials above each bar
                    ax.text(xi, top + 1.5, f"{int(k)}/{int(n)}", ha="center", fontsize=7)
        ax.set_xticks(x, benches)
        ax.set_ylim(0, 108)
        ax.set_ylabel("success rate (%)")
        ax.set_title("Closed-loop success (Wilson 95% CI)")
        # beside the axes: inside, it covers the counts above the bars
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
    _save(fig, png_path, svg_path)


def aux_figure(df: pd.DataFrame, png_path: str, svg_path: str) -> None:
    """Figure 4. Left: each auxiliary task's VQA accuracy before and after tuning (the skill
    went up?). Then one panel per benchmark: VLA success % per arm (on a chain benchmark,
    CALVIN's average length), a box over seeds with every seed's value as a dot (did control
    go up?)."""
    benches = sorted(df["benchmark"].unique())
    skill = df[df["vqa_task"].fillna("") != ""].drop_duplicates(["model", "arm"])
    with plt.style.context("default"):
        fig, axes = plt.subplots(1, 1 + len(benches), figsize=(4.2 + 4.0 * len(benches), 3.8),
                                 squeeze=False)
        ax = axes[0, 0]
        labels = [f"{r.model}\n{r.vqa_task}" if skill["model"].nunique() > 1 else r.vqa_task
                  for r in skill.itertuples()]
        x = np.arange(len(skill))
        ax.bar(x - 0.2, skill["vqa_base_acc"].to_numpy(float), 0.4, label="base VLM", color="#999999")
        ax.bar(x + 0.2, skill["vqa_tuned_acc"].to_numpy(float), 0.4, label="aux-tuned", color="#1f77b4")
        ax.set_xticks(x, labels, fontsize=8, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("held-out VQA accuracy")
        ax.set_title("Skill: VQA task accuracy", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        for ax, bench in zip(axes[0, 1:], benches):
            sub = df[df["benchmark"] == bench]  # aux_table order: per model, base first
            chained = "metric" in sub.columns and (sub["metric"] == "avg_len").all()
            per_seed = sub["seed_avg_len"] if chained else sub["seed_success_pct"]
            vals = [[float(v) for v in str(s).split(";")] for s in per_seed]
            pos = np.arange(len(sub))
            ax.boxplot(vals, positions=pos, widths=0.5, showfliers=False)
            for p, v in zip(pos, vals):
                ax.plot(np.full(len(v), p) + np.linspace(-0.08, 0.08, len(v)), v, "o", ms=4,
                        color="#1f77b4", alpha=0.8)
            names = [f"{r.model}\n{r.arm}" if sub["model"].nunique() > 1 else r.arm for r in sub.itertuples()]
            ax.set_xticks(pos, names, fontsize=8, rotation=20)
            if chained:  # CALVIN's metric: subtasks completed per chain, 0..chain length
                ax.set_ylim(-0.1, 5.1)
                ax.set_ylabel("VLA average length (per seed)")
            else:
                ax.set_ylim(-3, 103)
                ax.set_ylabel("VLA success % (per seed)")
            ax.set_title(f"Control: {bench}", fontsize=10)
        fig.tight_layout()
    _save(fig, png_path, svg_path)


def capability_figure(points: pd.DataFrame, corr: pd.DataFrame, x_label: str, png_path: str,
                      svg_path: str) -> None:
    """Figure 3: one colour per benchmark, normalised VLA score against general capability,
    with each benchmark's least-squares line and its Pearson r in the legend."""
    colours = plt.get_cmap("tab10")
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        for i, (bench, g) in enumerate(points.groupby("benchmark", sort=True)):
            g = g.dropna(subset=["capability"])
            c = corr[corr["benchmark"] == bench].iloc[0]
            r = "undefined" if pd.isna(c["pearson"]) else f"{c['pearson']:+.2f}"
            ax.scatter(g["capability"], g["score_norm"], color=colours(i), s=28,
                       label=f"{bench} (n={len(g)}, r={r})", zorder=3)
            if not pd.isna(c["slope"]):
                xs = np.linspace(g["capability"].min(), g["capability"].max(), 2)
                ax.plot(xs, c["slope"] * xs + c["intercept"], color=colours(i), lw=1.5)
        ax.set_xlabel(x_label)
        ax.set_ylabel("VLA score (min-max normalised per benchmark)")
        ax.set_ylim(-0.08, 1.08)
        ax.set_title("General capability vs control", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
    _save(fig, png_path, svg_path)
