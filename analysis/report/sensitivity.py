"""The outputs of `python -m analysis.sensitivity`, from the sweep alone:

    sensitivity.json  the run's identity and the sweep, under the keys `summary.json` gives them
    sensitivity.csv   one row per variant
    figures/          sensitivity_tornado.png, sensitivity_forest.png
    sensitivity.html  the page, self-contained; every number tagged with its key in sensitivity.json

The rows, figures and keys are those of the full report's sensitivity section, so a number on this page is
the number at the same key of a full run's `summary.json`.
"""

from __future__ import annotations

from pathlib import Path

from analysis.report import figures, html
from analysis.report.figures import Job
from analysis.report.figures import sensitivity as sweep_figures
from analysis.report.writer import _write_csv, _write_json, sensitivity_rows
from analysis.results import to_plain
from analysis.results.sweep import Sweep

PSENSE_THRESHOLD = 0.05
"""A power-scaling sensitivity above this flags the parameter (Kallioinen et al. 2023)."""


def document(meta: dict, sweep: Sweep) -> dict:
    """sensitivity.json: `meta` (keys of summary.json: config, data, seed, ...) and the sweep."""
    return {**to_plain(meta), "sensitivity": sweep.to_dict()}


def figure_jobs(s: dict) -> list[Job]:
    """The sweep's two figures, drawn as in the full report (the tornado's reference: the primary row)."""
    rows = s["sensitivity"]["variants"]
    return [Job("sensitivity_tornado", sweep_figures.tornado, (rows, rows[0]["pooled"]["mean"])),
            Job("sensitivity_forest", sweep_figures.forest, (rows, s.get("target_drug")))]


def write_outputs(directory: Path, s: dict, command: str, failures: list[str]) -> None:
    """Every file of the module docstring into `directory` (the caller's staging folder)."""
    _write_json(directory / "sensitivity.json", s)
    _write_csv(directory / "sensitivity.csv", sensitivity_rows(s))
    figure_dir = directory / "figures"
    figures.draw(figure_jobs(s), figure_dir)
    (directory / "sensitivity.html").write_text(page(s, figure_dir, command, failures), encoding="utf-8")


def page(s: dict, figure_dir: Path, command: str, failures: list[str]) -> str:
    env = html.environment()
    env.filters["reading"] = psense_reading
    return env.get_template("sensitivity.html.j2").render(
        s=s, sections=sections(s["sensitivity"]["variants"]), command=command, failures=failures,
        figures={p.stem: html.embed_png(p) for p in sorted(figure_dir.glob("*.png"))})


def sections(rows: list[dict]) -> list[dict]:
    """The page's tables, by the question a row answers: the primary estimand under biased publication,
    under other analysis choices, then the other estimands (no shift: not comparable), then the variants
    that could not run; the primary analysis heads the tables with a shift. Each row is (index into the
    variants, row, identical rows): a leave-one-out row with the same result as an earlier one is shown once,
    naming the others. `target`: whether a variant of the table has the target arm; `grouped`: whether its
    variants mix groups (then each group has a header row)."""
    shown = [(i, r, tuple(r.get("identical_to") or ())) for i, r in enumerate(rows)
             if not any(twin < r["variant"] for twin in r.get("identical_to") or ())]
    primary = [e for e in shown if e[1]["kind"] == "primary"]
    ran = [e for e in shown if e[1]["status"] != "not run" and e[1]["kind"] != "primary"]
    tables = [("bias", "If publication were biased", True,
               [e for e in ran if e[1]["estimand"] == "primary" and e[1]["kind"] == "bias"]),
              ("choice", "If an analysis choice were different", True,
               [e for e in ran if e[1]["estimand"] == "primary" and e[1]["kind"] == "choice"]),
              ("other", "Other estimands", False, [e for e in ran if e[1]["estimand"] != "primary"]),
              ("not-run", "Variants that could not run on these data", False,
               [e for e in shown if e[1]["status"] == "not run"])]
    return [{"id": key, "title": title, "shift": shift, "rows": (primary if shift else []) + entries,
             "target": any(r.get("target") for _, r, _ in entries),
             "grouped": len({r["group"] for _, r, _ in entries}) > 1}
            for key, title, shift, entries in tables if entries]


def psense_reading(row: dict) -> str:
    """What a psense row says: "both sensitive" when the prior and the data both shape the parameter
    (arviz-stats calls it a conflict; it is not one), else which of the two does, if either."""
    if "conflict" in row["diagnosis"]:
        return "both sensitive"
    if row["prior"] > PSENSE_THRESHOLD:
        return "prior sensitive"
    return "data sensitive" if row["likelihood"] > PSENSE_THRESHOLD else "insensitive"
