"""The reviewer's report: one self-contained HTML file rendered from the run's results.

Every number shown comes from `summary.json` (or from tables written beside it) and is tagged with its
key (`data-key`), so a test can check that the report and the summary agree. The model specification is
generated from the config that ran, not written by hand.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jinja2
from markupsafe import Markup, escape
import numpy as np
import pandas as pd

from analysis.report import figures
from analysis.borrowing import BorrowingResult
from analysis.config import Config
from models import FAMILIES

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCE_LEVELS = {
    "primary_full_text_partial": "primary full text (partly read)",
    "primary_abstract": "primary abstract",
    "conference_abstract": "conference abstract",
    "secondary_summary": "secondary: database summary",
    "secondary_review": "secondary: only from a review",
    "secondary_lay": "secondary: non-peer-reviewed page",
}
def render(context: dict) -> str:
    return render_page("report.html.j2", context)


def render_page(template: str, context: dict) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    environment.filters["pct"] = lambda x: "—" if x is None else f"{100 * x:.0f}%"
    environment.filters["md"] = markdown_inline
    return environment.get_template(template).render(**context)


def format_number(value, digits: int = 3) -> str:
    """The one number format of the report (the test formats summary.json values the same way)."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def model_specification(config: Config, n_reports: int) -> list[tuple[str, str]]:
    """The model as run: (statement, why) pairs generated from the config's values."""
    prior, family = config.model.prior, config.model.family
    lines = [(f"y_i ~ Binomial(n_i, θ_i), i = 1, …, {n_reports}",
              f"responders y_i of n_i patients treated in report i ({config.data.outcome.replace('_', ' ')})")]
    if family == "beta_binomial":
        lines.append(("θ_i ~ Beta(μκ, (1 − μ)κ)",
                      "reports differ: μ is the population mean response probability, κ the concentration "
                      "(large κ: similar reports)"))
        lines.append((f"μ ~ Beta({prior.mean_a:g}, {prior.mean_b:g})",
                      "flat on the pooled mean: no response rate favoured" if prior.mean_a == prior.mean_b == 1
                      else "configured prior on the pooled mean"))
        if prior.kind == "weakly_informative":
            lines.append((f"u = κ^(−1/2) ~ HalfNormal({prior.u_scale:g})",
                          "u is the between-report spread (u = 0: identical reports). BDA3's reference prior is "
                          "flat in u; the half-normal keeps that shape near homogeneity and shrinks away from "
                          "κ < 1, where reports turn all-or-none. For small spread u ≈ τ·√(μ(1 − μ)) for a "
                          f"logit-normal τ, so HalfNormal({prior.u_scale:g}) corresponds to τ ~ "
                          f"HalfNormal({2 * prior.u_scale:g}) at μ = 0.5 and to a wider τ prior near the observed "
                          "μ; the prior predictive check below and the prior-scale variants of the sensitivity "
                          "analyses show what it implies."))
        else:
            lines.append((f"u = κ^(−1/2) ~ Uniform(0, {prior.u_max:g})",
                          "BDA3 reference prior p(α, β) ∝ (α + β)^(−5/2), truncated at κ ≥ "
                          f"{prior.u_max ** -2:g}"))
        lines.append(("computation", "θ integrated out (beta-binomial likelihood) for NUTS; each θ_i then drawn "
                                     "from its exact conditional Beta(μκ + y_i, (1 − μ)κ + n_i − y_i)"))
        lines.append(("θ_new ~ Beta(μκ, (1 − μ)κ)", "response probability in a new report (predictive)"))
    else:
        dist = "HalfNormal" if prior.tau_dist == "half_normal" else "HalfCauchy"
        lines.append(("logit θ_i = μ + τ z_i, z_i ~ Normal(0, 1)", "random effects on the log-odds scale (non-centred)"))
        lines.append((f"μ ~ Normal({prior.mu_mean:g}, {prior.mu_sd:g})", "weakly informative on the log-odds scale "
                                                                          "(RBesT convention for binary endpoints)"))
        lines.append((f"τ ~ {dist}({prior.tau_scale:g})", "between-report SD of log-odds; τ = 1 allows odds to "
                                                          "differ about 7-fold between reports (95%)"))
        lines.append(("pooled = E[expit(μ + τ z)]", "population mean response probability, by Gauss-Hermite "
                                                    "quadrature per draw; expit(μ) is the median report"))
        lines.append(("θ_new = expit(μ + τ z_new)", "response probability in a new report (predictive)"))
    if config.model.covariates:
        terms = " + ".join(f"β_{name}·x_{name}" for name in config.model.covariates)
        lines.append((f"logit E[θ_i] = logit μ + {terms}" if family == "beta_binomial"
                       else f"logit θ_i = μ + {terms} + τ z_i",
                       "meta-regression on report-level covariates, each centred (binary) or centred and divided "
                       "by two standard deviations (continuous), so that μ is a report with average covariates"))
        lines.append((f"β ~ Normal(0, {prior.slope_sd:g}) on that scale",
                      "weakly informative (Gelman et al. 2008): a change of the covariate by one unit of its scale "
                      "moving the log-odds by more than 5 is a priori unlikely"))
    publication = config.model.publication
    if publication.mechanism == "none":
        lines.append(("publication: not modelled (every report equally likely to be published)",
                      "the primary analysis takes the reports at face value; the bias scenarios of the sensitivity "
                      "analyses model selective publication of reports with a non-responder"))
    else:
        scope = "single-patient reports" if publication.mechanism == "single_patient" else "reports of any size"
        lines.append((f"P(y_i | published) = P(y_i) · ω^[y_i < n_i] / (P(y_i = n_i) + ω(1 − P(y_i = n_i))), "
                      f"ω = {publication.weight:g}",
                      f"publication bias ({scope}): an all-responder report is always published, one with a "
                      f"non-responder with relative probability {publication.weight:g}; P(y_i = n_i) is the "
                      "chance that a report of that size is all-responder, under the model"))
    return lines


def borrowing_specification(config: Config) -> list[tuple[str, str]]:
    b = config.borrowing
    w = b.robust_weight
    return [
        ("MAP prior = p(θ_new | naltrexone reports)", "the predictive distribution above, approximated by a mixture "
                                                      f"of up to {b.max_components} Beta densities (EM, AIC)"),
        (f"prior = {1 - w:g} · MAP + {w:g} · Beta({b.vague[0]:g}, {b.vague[1]:g})",
         "robust MAP prior: with probability w the target owes nothing to the reports"),
        ("y ~ Binomial(n, θ); posterior by exact conjugate update", "Beta mixtures are conjugate to the binomial"),
        (f"joint EXNEX model: θ ~ {1 - w:g} · [exchangeable report] + {w:g} · Beta({b.vague[0]:g}, {b.vague[1]:g})",
         "the same model fitted in one PyMC model (no mixture approximation)"),
    ]


def evidence_rows(frame: pd.DataFrame, outcome: str, drug: str, target: str | None) -> list[dict]:
    """Every report of the table, included or not, with why, and what a reader needs to judge it."""
    column = f"n_{outcome}"
    rows = []
    for _, r in frame.iterrows():
        count = r.get(column)
        link_text, link = _link(r)
        if not r["included"]:
            role = f"excluded ({str(r.get('default_set', '')).removeprefix('exclude_').replace('_', ' ')})"
        elif r["drug"] == drug:
            role = "pooled" if pd.notna(count) else f"not graded for {outcome.replace('_', ' ')}"
        elif r["drug"] == target:
            role = "target arm"
        else:
            role = "not analysed"
        graded = {o: ("—" if pd.isna(r.get(f"n_{o}")) else int(r[f"n_{o}"])) if f"n_{o}" in r else "—"
                  for o in ("any_response", "marked", "complete", "sustained")}
        rows.append({
            "report_id": r["report_id"], "year": r.get("year", ""), "country": r.get("country", ""),
            "design": r.get("design", ""), "drug": r["drug"], "route": r.get("route", ""), "dose": _dose(r),
            "n": r["n_treated"], "graded": graded, "role": role,
            "source": SOURCE_LEVELS.get(r.get("source_level", ""), r.get("source_level", "")),
            "confidence": r.get("confidence", ""), "link": link, "link_text": link_text,
            "details": [(label, r.get(key, "")) for key, label in DETAILS if r.get(key, "")],
        })
    return rows


DETAILS = (("response_wording", "wording"), ("followup_note", "follow-up"), ("cointervention", "co-interventions"),
           ("adverse_events", "adverse events"), ("withdrawal_flare", "flare on stopping or lowering"),
           ("overlap_note", "overlap with other reports"))
"""Report-level text shown under each report's row, as extracted."""


def _dose(r) -> str:
    lo, hi = r.get("dose_mg_min", ""), r.get("dose_mg_max", "")
    if lo and hi:
        return f"{lo} mg/day" if lo == hi else f"{lo}–{hi} mg/day"
    return r.get("dose_note", "") or "not stated"


def _link(r) -> tuple[str, str]:
    if r.get("doi"):
        return f"doi:{r['doi']}", f"https://doi.org/{r['doi']}"
    if r.get("pmid"):
        return f"PMID {r['pmid']}", f"https://pubmed.ncbi.nlm.nih.gov/{r['pmid']}/"
    if r.get("source_url"):
        return "source", r["source_url"]
    return "", ""


def diagnostics_rows(table: pd.DataFrame, thresholds) -> list[dict]:
    rows = []
    for name, r in table.iterrows():
        bad = not (r["r_hat"] <= thresholds.rhat_max and r["ess_bulk"] >= thresholds.ess_bulk_min
                   and r["ess_tail"] >= thresholds.ess_tail_min)
        rows.append({"name": name, "bad": bad, **{k: r[k] for k in DIAGNOSTIC_COLUMNS}})
    return rows


DIAGNOSTIC_COLUMNS = ("r_hat", "ess_bulk", "ess_tail", "mcse_median", "mcse_q2.5", "mcse_q97.5", "mcse_mean")


def write_report(staging: Path, summary: dict, run, run_meta: dict) -> None:
    """Draw every figure into `staging/figures` and render `staging/report.html` embedding them."""
    from analysis.report.summary import gate_failures

    config, result, borrowing = run.config, run.result, run.borrowing
    directory = staging / "figures"
    draw_figures(run, summary, directory)
    target = config.borrowing.target_drug
    arm = summary[target] if isinstance(borrowing, BorrowingResult) else None
    context = {
        "s": summary,
        "cfg": config,
        "run": run_meta,
        "arm": arm,
        "tkey": target,
        "skipped": borrowing if isinstance(borrowing, str) else None,
        "failures": gate_failures(run),
        "outcome_words": summary["outcome"].replace("_", " "),
        "evidence": evidence_rows(run.table.frame, config.data.outcome, config.data.drug,
                                  target if config.borrowing.enabled else None),
        "spec": model_specification(config, len(result.data)),
        "borrowing_spec": borrowing_specification(config),
        "diagnostics": diagnostics_rows(result.convergence.table, config.diagnostics),
        "joint_diagnostics": diagnostics_rows(borrowing.joint.convergence.table, config.diagnostics)
        if isinstance(borrowing, BorrowingResult) else [],
        "graded_diagnostics": diagnostics_rows(run.graded.convergence.table, config.diagnostics)
        if run.graded is not None else [],
        "appraisal": config.data.load_appraisal(run.table),
        "figures": {p.stem: embed_png(p) for p in sorted(directory.glob("*.png"))},
        "heavy": FAMILIES[config.model.family].heavy_tailed,
        "source_names": SOURCE_LEVELS,
        **sweep_facts(summary),
    }
    (staging / "report.html").write_text(render(context), encoding="utf-8")


def sweep_facts(summary: dict) -> dict:
    """What the headline and the appraisal section quote from the sweep: the range of the predictive lower
    bound over the prior variants, the leave-one-out variant that moves the answer most, and the
    high-concern variant with the reports it leaves out."""
    if summary["sensitivity"]["status"] != "run":
        return {"prior_rows": None, "loo_largest": None, "concern_row": None, "concern_removed": [],
                "concern_nonresponders": []}
    rows = [r for r in summary["sensitivity"]["variants"] if r["status"] == "passed"]
    priors = [r["predictive_lo"] for r in rows if r["group"] == "prior" and r["model"] == summary["model"]]
    priors.append(summary["predictive"]["ci95"][0])
    loo = [r for r in rows if r["group"] == "leave one out"]
    largest = max(loo, key=lambda r: abs(r["pooled_shift"]), default=None)
    concern = next((r for r in rows if r["variant"] == "sens_evidence_max_concern_moderate"), None)
    removed = [] if summary["risk_of_bias"] is None else [
        rid for rid in summary["reports"] if summary["risk_of_bias"].get(rid, {}).get("overall") == "high"]
    nonresponders = {r["report_id"] for r in summary["evidence"]["reports_with_nonresponder"]}
    return {"prior_rows": {"low": min(priors), "high": max(priors)} if len(priors) > 1 else None,
            "loo_largest": None if largest is None else {"report": largest["variant"].removeprefix("loo_"),
                                                         "mean": largest["pooled_mean"]},
            "concern_row": concern, "concern_removed": removed,
            "concern_nonresponders": [rid for rid in removed if rid in nonresponders]}


def markdown_inline(text: str) -> Markup:
    """The search log's inline markup (**bold**, `code`) as HTML, everything else escaped."""
    escaped = str(escape(text))
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", escaped))


def draw_figures(run, summary: dict, directory: Path) -> None:
    """Every figure of the report, from the run and its summary document (two processes draw them)."""
    from analysis.report import appraisal_figures, clinical_figures
    from analysis.report.figures import Job

    config = run.config
    jobs = figures.primary_jobs(run.result, summary, FAMILIES[config.model.family].plotted_parameters, run.loo_pit)
    if isinstance(run.borrowing, BorrowingResult):
        jobs += figures.borrowing_jobs(run.borrowing, summary[config.borrowing.target_drug])
    small = summary["bias"]["small_study"] or summary.get("meta_regression")
    if small is not None and "curve" in small:
        jobs.append(Job("funnel", figures.funnel, (small,)))
    if "cumulative" in summary:
        alternative = summary["cumulative_first_seen"]
        jobs.append(Job("cumulative", figures.cumulative, (summary["cumulative"], None if alternative is None else {
            "label": "at the year first seen: " + ", ".join(f"{r} {y}" for r, y in alternative["moved"].items()),
            "steps": alternative["steps"]})))
    if summary["sensitivity"]["status"] == "run":
        rows = summary["sensitivity"]["variants"]
        jobs.append(Job("sensitivity_forest", figures.sensitivity_forest, (rows,)))
        jobs.append(Job("sensitivity_tornado", figures.tornado, (rows, summary["pooled"]["mean"])))
    if "graded" in summary:
        jobs.append(Job("graded", figures.graded, (summary["graded"],)))
    appraisal = config.data.load_appraisal(run.table)
    if appraisal is not None:
        jobs.append(Job("risk_of_bias", appraisal_figures.risk_of_bias_figure, (appraisal,)))
    jobs.append(Job("prisma", appraisal_figures.prisma_figure, (summary["prisma"],)))
    if summary["durability"]["time_to_response"]:
        jobs.append(Job("time_to_response", clinical_figures.time_to_response_figure, (summary["durability"],)))
    figures.draw_jobs(jobs, directory)
