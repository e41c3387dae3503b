"""The calibration outputs (`python -m analysis.validate`), written into a folder the caller then commits:

    summary.json     the verdict (`Calibration.to_dict`): every check and every uniformity test
    uniformity.csv   one row per check and quantity: p-value, threshold, simultaneous band, verdict
    pit.csv          one row per simulation: the PIT of every checked quantity and the fit's health
    figures/         sbc_<check>.png: the PIT ECDF of each quantity of a check, in its simultaneous band
    index.html       the page; run.json how and where it ran; run.log warnings of the run

This module reads results only (`analysis.results.calibration`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import xarray as xr

from analysis.report import figures, html
from analysis.report.figures import Job, diagnostics
from analysis.report.format import format_number
from analysis.report.writer import run_metadata
from analysis.results.calibration import Calibration

SYMBOLS = {"mu": "μ", "kappa": "κ", "tau": "τ", "theta": "θ", "pooled": "pooled mean", "theta_target": "θ target"}


def label(quantity: str) -> str:
    """A checked quantity as a panel title: "theta[Albers2017]" → "θ Albers2017"."""
    variable, _, item = quantity.rstrip("]").partition("[")
    return " ".join(filter(None, (SYMBOLS.get(variable, variable), item.replace("_", " "))))


def pit_dataset(calibration: Calibration, check: str) -> xr.Dataset:
    """The PIT values of one check, one variable per quantity, over the simulations."""
    rows = calibration.pit[calibration.pit["check"] == check]
    return xr.Dataset({name: ("simulation", rows[name].to_numpy(dtype=float))
                       for name in calibration.quantities(check)})


def figure_jobs(calibration: Calibration) -> list[Job]:
    """One rank-ECDF figure per check; each panel marks the values that drive a departure at the family-wise
    level (ArviZ prints it to two decimals: a Bonferroni threshold would read 0.00)."""
    jobs = []
    for check in calibration.checks:
        dataset = pit_dataset(calibration, check)
        labels = {name: label(name) for name in dataset.data_vars}
        jobs.append(Job(f"sbc_{check}", diagnostics.plot_ecdf_pit_sbc,
                        (dataset, labels, 1 - calibration.alpha, True, calibration.band_prob)))
    return jobs


def console_lines(calibration: Calibration) -> list[str]:
    """One line per test, and the fits that failed their convergence checks."""
    lines = [f"{t.check:>20} {t.quantity:<36} p = {format_number(t.p_value)} "
             f"{'inside' if t.inside_band else 'OUTSIDE'} the {calibration.band_prob:.0%} band  "
             f"{'ok' if t.calibrated else 'NOT CALIBRATED'}" for t in calibration.tests]
    unconverged = sum(check.unconverged for check in calibration.checks.values())
    fits = sum(check.simulations for check in calibration.checks.values())
    lines.append(f"{unconverged} of {fits} fits failed the convergence checks (kept in the ranks)")
    return lines


def write_validation(calibration: Calibration, directory: Path, run: dict, log, started: float,
                     command: list[str]) -> None:
    """Every output of the calibration into `directory` (see the module docstring)."""
    summary = calibration.to_dict()
    _write_json(directory / "summary.json", summary)
    pd.DataFrame([dataclasses.asdict(t) for t in calibration.tests]).to_csv(directory / "uniformity.csv", index=False)
    calibration.pit.to_csv(directory / "pit.csv", index=False)
    drawn = [figures.draw_job(job, directory / "figures") for job in figure_jobs(calibration)]  # a few: no workers
    images = {d.name.removeprefix("sbc_"): html.embed_png(d.files[0]) for d in drawn}
    meta = {**run_metadata(command, started), **run}
    labels = {t.quantity: label(t.quantity) for t in calibration.tests}
    page = html.render_page("validation.html.j2", {"summary": summary, "images": images, "run": meta, "labels": labels})
    (directory / "index.html").write_text(page, encoding="utf-8")
    _write_json(directory / "run.json", {**meta, "log": str(log.path) if log.path else None})
    (directory / "run.log").write_text(log.text(), encoding="utf-8")


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
