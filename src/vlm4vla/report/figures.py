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
    """Grouped bars: success % per model, one group per benchmark, Wilson 95% error bars."""
    df = pd.read_csv(table_csv)
    benches = sorted(df["benchmark"].unique())
    models = sorted(df["model"].unique())
    width = 0.8 / max(len(models), 1)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 1.4 * len(benches) * max(1, len(models) / 2)), 3.8))
        x = np.arange(len(benches))
        for i, model in enumerate(models):
            sub = df[df["model"] == model].set_index("benchmark").reindex(benches)
            y = sub["success_pct"].to_numpy(dtype=float)
            err = np.vstack([y - sub["ci95_low_pct"].to_numpy(dtype=float),
                             sub["ci95_high_pct"].to_numpy(dtype=float) - y])
            xs = x + (i - (len(models) - 1) / 2) * width
            ax.bar(xs, y, width, yerr=err, capsize=3, label=model)
            for xi, k, n, top in zip(xs, sub["successes"], sub["trials"], sub["ci95_high_pct"]):
                if not pd.isna(n):  # successes / trials above each bar
                    ax.text(xi, top + 1.5, f"{int(k)}/{int(n)}", ha="center", fontsize=7)
        ax.set_xticks(x, benches)
        ax.set_ylim(0, 108)
        ax.set_ylabel("success rate (%)")
        ax.set_title("Closed-loop success (Wilson 95% CI)")
        ax.legend(fontsize=8, frameon=False)
        fig.tight_layout()
    _save(fig, png_path, svg_path)
