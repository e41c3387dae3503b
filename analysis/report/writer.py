"""One run's outputs, written into a folder the caller then commits (`analysis.outputs.atomic_directory`):

    summary.json     the run's results (`Synthesis.to_dict`): what every page renders
    summary.csv      one row per pooled report: counts, θ_i, intervals, provenance
    diagnostics.csv  the convergence gate of each NUTS fit
    sensitivity.csv  one row per sensitivity variant (when the sweep ran)
    posterior*.nc    the NUTS fits as ArviZ DataTrees (primary, graded outcomes, joint target-arm model)
    figures/         every figure as PNG (and SVG with --svg)
    report.html      the reviewer's report; clinician.html the one-page summary for clinicians
    config.json      the config as resolved; run.json how and where it ran; run.log warnings of the run

This module reads results only (`analysis.results`); figures and pages are drawn from `summary.json`, the
NUTS fits and the prose modules.
"""

from __future__ import annotations

import csv
import json
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import xarray as xr

from analysis.report import figures, html
from analysis.report.figures import Job, appraisal, bias, borrowing, clinical, clinician, design, diagnostics
from analysis.report.figures import meta, next_report, sensitivity
from analysis.report.format import format_number
from analysis.results import Primary
from analysis.results.synthesis import Synthesis

PARAMETER_LABELS = {"mu": "μ (mean of θ)", "u": "u = κ^(-1/2)", "tau": "τ (SD of logit θ)", "kappa": "κ"}
VERSIONED_PACKAGES = ("pymc", "pytensor", "jax", "jaxlib", "blackjax", "arviz-base", "arviz-stats", "arviz-plots",
                      "numpy", "scipy", "pandas", "xarray", "matplotlib")


def write_run(synthesis: Synthesis, directory: Path, svg: bool, log, clock, started: float, command: list[str],
              compilations: int, draw: bool = True, drawing: figures.Drawing | None = None) -> dict:
    """Write every output of the run into `directory` (the figures only when `draw`); returns the summary
    document. `drawing`: the primary fit's figures, submitted as soon as the fit was done
    (`submit_fit_figures`); without it they are drawn here with the rest."""
    written = time.perf_counter()
    summary = synthesis.to_dict()
    pending = []
    if draw:  # drawn while the tables and fits are written
        pending = [drawing or submit_fit_figures(synthesis.primary, directory, svg),
                   figures.submit(result_figure_jobs(synthesis, summary), directory / "figures", svg)]
    try:
        _write_json(directory / "summary.json", summary)
        _write_csv(directory / "summary.csv", report_rows(summary))
        _write_csv(directory / "diagnostics.csv", diagnostics_rows(synthesis))
        if summary["sensitivity"].get("status") == "run":
            _write_csv(directory / "sensitivity.csv", sensitivity_rows(summary))
        for name, tree in fits(synthesis).items():
            tree.to_netcdf(directory / f"{name}.nc", engine="h5netcdf")
        drawn = figures.collect(*pending)
    except BaseException:
        if pending:
            figures.shutdown()  # no figure is left drawing into a folder the caller is about to remove
        raise
    run_meta = run_metadata(command, started)
    html.write_pages(directory, synthesis, summary, directory / "figures" if draw else None, run_meta)
    timings = {**clock.seconds(), "outputs": round(time.perf_counter() - written, 2)}
    _write_json(directory / "config.json", summary_config(synthesis))
    _write_json(directory / "run.json", {**run_metadata(command, started), "phase_seconds": timings,
                                         "compilations": compilations, "figures": len(drawn),
                                         "log": str(log.path) if log.path else None})
    (directory / "run.log").write_text(log.text(), encoding="utf-8")
    return summary


def fits(synthesis: Synthesis) -> dict:
    """The NUTS fits by output name."""
    out = {"posterior": synthesis.primary.idata}
    if synthesis.graded is not None:
        out["posterior_graded"] = synthesis.graded.idata
    if synthesis.target is not None and getattr(synthesis.target, "idata", None) is not None:
        out[f"posterior_{synthesis.target.target_drug}_joint"] = synthesis.target.idata
    return {k: v for k, v in out.items() if v is not None}


def _plotted(idata: xr.DataTree, names: list[str]) -> xr.DataTree:
    """What the diagnostic figures read of a fit: the plotted parameters' prior and posterior draws and the
    sampler statistics. The report-level arrays (θ, replicated counts, log-likelihoods), which grow with the
    reports, are not copied to the drawing processes."""
    groups = {group: idata[group].to_dataset()[names] for group in ("posterior", "prior") if group in idata}
    return xr.DataTree.from_dict({**groups, "sample_stats": idata["sample_stats"].to_dataset()})


def submit_fit_figures(primary: Primary, directory: Path, svg: bool) -> figures.Drawing:
    """Start drawing the primary fit's diagnostic figures into `directory`/figures now, while the run goes
    on computing (`write_run` collects them)."""
    return figures.submit(fit_figure_jobs(primary), Path(directory) / "figures", svg)


def _plotted_names(primary: Primary) -> tuple[list[str], dict[str, str]]:
    names = [n for n in ("mu", "u", "tau") if n in primary.idata["posterior"].data_vars]
    return names, {n: PARAMETER_LABELS.get(n, n) for n in names}


def fit_figure_jobs(primary: Primary) -> list[Job]:
    """The primary fit's MCMC and LOO diagnostics: they need the fit only, not the rest of the run."""
    names, labels = _plotted_names(primary)
    plotted = _plotted(primary.idata, names)
    jobs = [Job("trace", diagnostics.plot_trace, (plotted, names, labels)),
            Job("rank", diagnostics.plot_rank, (plotted, names, labels)),
            Job("energy", diagnostics.plot_energy, (plotted,)),
            Job("prior_posterior", diagnostics.plot_prior_posterior, (plotted, names, labels))]
    if primary.psis is not None:
        jobs.append(Job("khat", diagnostics.plot_khat, (primary.psis,)))
    if primary.loo_pit is not None and len(primary.reports) >= 2:
        jobs.append(Job("loo_pit", diagnostics.plot_loo_pit, (primary.loo_pit,)))
    return jobs


def result_figure_jobs(synthesis: Synthesis, s: dict) -> list[Job]:
    """The figures of the run's results (`s`, the summary document) and of the sensitivity analyses."""
    jobs = [Job("forest", meta.forest, (s,)), Job("icon_array", clinician.icon_array, (s,))]
    if synthesis.psense_tree is not None:
        names, labels = _plotted_names(synthesis.primary)
        jobs.append(Job("psense", diagnostics.plot_psense_dist, (synthesis.psense_tree, names, labels)))
    if s.get("bias"):
        jobs.append(Job("tipping", bias.tipping, (s,)))
        if s["bias"].get("averaged"):
            jobs.append(Job("omega", bias.omega, (s,)))
    sizes = s.get("small_study") or s.get("meta_regression")
    if sizes and (sizes.get("curve") or {}).get("n"):
        jobs.append(Job("funnel", meta.funnel, (sizes, s["reports"])))
    if s.get("cumulative"):
        jobs.append(Job("cumulative", meta.cumulative, (s,)))
    if s.get("graded"):
        jobs += [Job("graded", meta.graded, (s,)), Job("missingness", meta.missingness, (s,))]
    if s["sensitivity"].get("status") == "run":
        rows = s["sensitivity"]["variants"]
        jobs += [Job("sensitivity_tornado", sensitivity.tornado, (rows, s["pooled"]["mean"])),
                 Job("sensitivity_forest", sensitivity.forest, (rows, s.get("target_drug")))]
    if s.get("target"):
        jobs += [Job("borrowing_update", borrowing.update, (s["target"],)),
                 Job("borrowing_sweep", borrowing.sweep, (s["target"],)),
                 Job("map_fit", borrowing.map_fit, (s["target"],))]
    if s.get("risk_of_bias"):
        jobs.append(Job("risk_of_bias", appraisal.risk_of_bias, (s["risk_of_bias"],)))
    if s.get("prisma"):
        jobs.append(Job("prisma", appraisal.prisma, (s["prisma"],)))
    if any(row.get("days") for row in (s.get("durability") or {}).get("time_to_response") or ()):
        jobs.append(Job("time_to_response", clinical.time_to_response, (s,)))
    if s.get("design"):
        jobs += [Job("operating", design.operating, (s,)), Job("assurance", design.assurance, (s,))]
    if s.get("next_report"):
        jobs.append(Job("next_report", next_report.next_report_map, (s,)))
    return jobs


# --- tables ------------------------------------------------------------------------------------------------


def report_rows(s: dict) -> list[dict]:
    """summary.csv: each pooled report's counts and θ_i, with its provenance from the evidence table."""
    provenance = {row["report_id"]: row for row in s.get("evidence_table", [])}
    rows = []
    for report, r in s["reports"].items():
        source = provenance.get(report, {})
        rows.append({"report_id": report, "year": r.get("year"), "n": r["n"], "y": r["y"],
                     "theta_mean": r["mean"], "theta_median": r["median"], "theta_sd": r["sd"],
                     "theta_ci95_lo": r["ci95"][0], "theta_ci95_hi": r["ci95"][1], "method": r["method"],
                     "observed_ci95_lo": r["raw_ci95"][0], "observed_ci95_hi": r["raw_ci95"][1],
                     **{k: source.get(k) for k in ("design", "source_level", "confidence", "doi", "pmid")}})
    return rows


def diagnostics_rows(synthesis: Synthesis) -> list[dict]:
    """diagnostics.csv: the convergence gate of every NUTS fit of the run."""
    gates = {"primary": synthesis.primary.convergence}
    if synthesis.graded is not None:
        gates["graded"] = synthesis.graded.convergence
    if synthesis.target is not None and getattr(synthesis.target, "joint_convergence", None) is not None:
        gates["joint"] = synthesis.target.joint_convergence
    return [{"fit": name, **{k: v for k, v in gate.to_dict().items() if k not in ("thresholds", "failures")},
             "failures": "; ".join(gate.failures)} for name, gate in gates.items()]


def sensitivity_rows(s: dict) -> list[dict]:
    """sensitivity.csv: one flat row per variant."""
    rows = []
    for v in s["sensitivity"]["variants"]:
        row = {k: v.get(k) for k in ("variant", "group", "kind", "estimand", "description", "status", "outcome",
                                     "model", "reports", "patients", "responders", "pooled_shift")}
        for block in ("pooled", "predictive", "target"):
            if v.get(block):
                row |= {f"{block}_mean": v[block]["mean"], f"{block}_ci95_lo": v[block]["ci95"][0],
                        f"{block}_ci95_hi": v[block]["ci95"][1], f"{block}_method": v[block].get("method")}
        row["identical_to"] = ";".join(v.get("identical_to") or ())
        rows.append(row)
    return rows


def console_lines(s: dict) -> list[str]:
    """The command's few lines on stdout: the answer, at the digits the report prints."""
    def est(block: dict) -> str:
        mcse = block.get("mcse") or {}
        return (f"{format_number(block['mean'], 2, mcse.get('mean'))} (95% {format_number(block['ci95'][0], 2, mcse.get('lo'))}"
                f" to {format_number(block['ci95'][1], 2, mcse.get('hi'))})")

    crude = s["comparators"]["crude"]
    outcome = s["outcome"].replace("_", " ")
    lines = [f"{outcome} with {s['drug']}: {crude['y']} of {crude['n']} patients; average over reports "
             f"{est(s['pooled'])}; a new report's patients {est(s['predictive'])}"]
    averaged = (s.get("bias") or {}).get("averaged")
    if averaged:
        lines.append(f"  with publication bias integrated out (ω prior {averaged.get('prior', '')}): "
                     f"{est(averaged['pooled'])}")
    target = s.get("target")
    if target and target.get("posterior"):
        lines.append(f"{target['target_drug']} ({target['y']} of {target['n']}; exploratory), borrowing from "
                     f"{s['drug']}: {est(target['posterior'])}")
    return lines


def summary_config(synthesis: Synthesis) -> dict:
    return synthesis.config


def run_metadata(command: list[str], started: float) -> dict:
    """What is needed to rerun and what varies between runs (kept out of summary.json on purpose)."""
    return {"command": shlex.join(command), "wall_time_seconds": round(time.perf_counter() - started, 2),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": {name: _version(name) for name in VERSIONED_PACKAGES}}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
