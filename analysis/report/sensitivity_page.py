"""The sweep's own page (`python -m analysis.sensitivity`): table (CSV and HTML), power-scaling table,
the tornado and forest plots of the variants (the same figures the primary report embeds)."""

from __future__ import annotations

import pandas as pd

from analysis.outputs import atomic_directory
from analysis.report import figures, html
from analysis.report.summary import sweep_rows


def write_sweep(table: pd.DataFrame, psense: pd.DataFrame, out, programs: int, seconds: float) -> None:
    rows = sweep_rows(table)
    reference = table.set_index("variant").loc["primary", "pooled_mean"]
    with atomic_directory(out) as staging:
        pd.DataFrame(rows).to_csv(staging / "summary.csv", index=False)
        psense.to_csv(staging / "psense.csv", index=False)
        figures.save(figures.sensitivity_forest(rows), staging / "figures", "sensitivity_forest")
        figures.save(figures.tornado(rows, reference), staging / "figures", "sensitivity_tornado")
        page = html.render_page("sensitivity.html.j2", {
            "rows": rows, "psense": psense.to_dict(orient="records"),
            "figure": html.embed_png(staging / "figures" / "sensitivity_forest.png"),
            "tornado": html.embed_png(staging / "figures" / "sensitivity_tornado.png"),
            "programs": programs, "seconds": round(seconds), "variants": len(rows),
        })
        (staging / "index.html").write_text(page, encoding="utf-8")
