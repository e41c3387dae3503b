"""The calibration outputs: PIT table, uniformity tests, rank ECDF plots and an index page."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz_plots as azp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from arviz_stats.ecdf_utils import ecdf_pit  # noqa: E402

from analysis.report import figures, html  # noqa: E402
from analysis.calibration import quantity_columns  # noqa: E402
from analysis.outputs import atomic_directory  # noqa: E402

BAND_PROB = 0.95


def rank_ecdf(table: pd.DataFrame, tests: pd.DataFrame, check: str) -> plt.Figure:
    """ECDF of the PIT values minus the uniform CDF, in ArviZ's simultaneous 95% band (Säilynoja et al.
    2022): a calibrated quantity stays inside the band everywhere with probability 0.95."""
    group = table[table["check"] == check]
    names = quantity_columns(group)
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        pit = np.sort(group[name].dropna().to_numpy())
        x, ecdf, lower, upper = ecdf_pit(pit, BAND_PROB, n_simulations=1000, rng=np.random.default_rng(0))
        ax.fill_between(x, lower - x, upper - x, step="post", color="#bbbbbb", alpha=0.5, lw=0,
                        label="simultaneous 95% band")
        ax.step(x, ecdf - x, where="post", color="#1f77b4", lw=1.5)
        ax.axhline(0, color="black", lw=0.6)
        test = tests[(tests["check"] == check) & (tests["quantity"] == name)].iloc[0]
        ax.set_title(f"{name}\np = {test['p_value']:.3f}", fontsize=9,
                     color="black" if test["calibrated"] else "#b71c1c")
        ax.set_xlabel("PIT (normalised rank)")
    axes[0][0].set_ylabel("ECDF − uniform CDF")
    axes[0][0].legend(fontsize=7, loc="lower left")
    figure.suptitle(f"SBC: {check} ({len(group)} simulations)", fontsize=10)
    figure.tight_layout()
    return figure


def arviz_pit_plot(table: pd.DataFrame, check: str, directory: Path) -> None:
    """ArviZ's own PIT ECDF plot (pot_c test, most suspicious points marked)."""
    group = table[table["check"] == check]
    names = quantity_columns(group)
    dataset = xr.Dataset({n: (("chain", "draw"), group[n].to_numpy()[None, :]) for n in names})
    collection = azp.plot_ecdf_pit(xr.DataTree.from_dict({"prior_sbc": dataset}), backend="matplotlib")
    figures.save_collection(collection, directory, f"arviz_pit_{check}")


def write_validation(table: pd.DataFrame, tests: pd.DataFrame, meta: dict, out: Path) -> None:
    document = {
        **meta,
        "calibrated": bool(tests["calibrated"].all()),
        "fits_failing_convergence": int((~table["converged"]).sum()),
        "divergent_fits": int((table["divergences"] > 0).sum()),
        "tests": json.loads(tests.to_json(orient="records")),
    }
    with atomic_directory(Path(out)) as staging:
        table.to_csv(staging / "pit.csv", index=False)
        tests.to_csv(staging / "uniformity.csv", index=False)
        (staging / "summary.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        checks = list(dict.fromkeys(table["check"]))
        images = {}
        for check in checks:
            figures.save(rank_ecdf(table, tests, check), staging / "figures", f"sbc_{check}")
            arviz_pit_plot(table, check, staging / "figures")
            images[check] = (html.embed_png(staging / "figures" / f"sbc_{check}.png"),
                             html.embed_png(staging / "figures" / f"arviz_pit_{check}.png"))
        page = html.render_page("validation.html.j2", {
            "summary": document, "tests": tests.to_dict(orient="records"), "images": images,
            "health": table.groupby("check", sort=False).agg(
                fits=("simulation", "size"), unconverged=("converged", lambda c: int((~c).sum())),
                divergent=("divergences", lambda d: int((d > 0).sum()))).reset_index().to_dict(orient="records"),
        })
        (staging / "index.html").write_text(page, encoding="utf-8")
