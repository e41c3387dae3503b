"""Outputs of the sensitivity sweep: table (CSV and HTML), power-scaling table, forest plot of variants."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.report import figures, html  # noqa: E402
from analysis.outputs import atomic_directory  # noqa: E402


def variants_forest(table: pd.DataFrame) -> plt.Figure:
    """Every variant's pooled and predictive estimates (95% intervals) against the primary result."""
    rows = table.reset_index(drop=True)
    primary = rows[rows["variant"] == "primary"].iloc[0]
    keys = [k for k in ("pooled", "predictive", "naloxone") if f"{k}_mean" in rows]
    figure, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys) + 2.5, 0.28 * len(rows) + 1.4), sharey=True)
    positions = np.arange(len(rows))[::-1]
    for ax, key in zip(np.atleast_1d(axes), keys):
        ax.axvspan(primary[f"{key}_lo"], primary[f"{key}_hi"], color="#e8eef6")
        ax.axvline(primary[f"{key}_mean"], color="#1f77b4", lw=1)
        for pos, (_, r) in zip(positions, rows.iterrows()):
            if pd.isna(r.get(f"{key}_mean")):
                continue
            colour = "#d62728" if not r["passed"] else ("#1f77b4" if r["variant"] == "primary" else "#333333")
            ax.plot([r[f"{key}_lo"], r[f"{key}_hi"]], [pos, pos], color=colour, lw=1.2)
            ax.plot(r[f"{key}_mean"], pos, "o", color=colour, ms=3.5)
        ax.set_xlim(0, 1)
        ax.set_title({"pooled": "pooled mean", "predictive": "new report (predictive)", "naloxone": "naloxone (joint)"}[key],
                     fontsize=9)
        ax.tick_params(labelsize=7)
    labels = [f"{r['variant']}{'' if r['passed'] else ' (FAILED)'}" for _, r in rows.iterrows()]
    np.atleast_1d(axes)[0].set_yticks(positions)
    np.atleast_1d(axes)[0].set_yticklabels(labels, fontsize=7)
    figure.suptitle("Sensitivity analyses: posterior mean and 95% interval; band: primary analysis", fontsize=10)
    figure.tight_layout()
    return figure


def write_sweep(table: pd.DataFrame, psense: pd.DataFrame, out, compilations: int, seconds: float) -> None:
    with atomic_directory(out) as staging:
        table.to_csv(staging / "summary.csv", index=False)
        psense.to_csv(staging / "psense.csv", index=False)
        figures.save(variants_forest(table), staging / "figures", "sensitivity_forest")
        columns = [c for c in table.columns if c not in ("group",)]
        page = html.render_page("sensitivity.html.j2", {
            "rows": table.to_dict(orient="records"), "columns": columns, "psense": psense.to_dict(orient="records"),
            "figure": html.embed_png(staging / "figures" / "sensitivity_forest.png"),
            "compilations": compilations, "seconds": round(seconds), "variants": len(table),
        })
        (staging / "index.html").write_text(page, encoding="utf-8")
