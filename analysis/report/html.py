"""The reviewer's report: one self-contained HTML file rendered from the run's results.

Every number shown comes from `summary.json` (or from tables written beside it) and is tagged with its
key (`data-key`), so a test can check that the report and the summary agree. The model specification is
generated from the config that ran, not written by hand.
"""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from analysis.report import figures
from analysis.borrowing import BorrowingResult
from analysis.config import Config
from models import FAMILIES

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCE_LEVELS = {
    "primary_full_text_partial": "primary, full text (partly read)",
    "primary_abstract": "primary, abstract",
    "conference_abstract": "conference abstract",
    "secondary_summary": "secondary: database summary",
    "secondary_review": "secondary: only from a review",
    "secondary_lay": "secondary: non-peer-reviewed page",
}
LIMITATIONS = [
    "The evidence is case reports and small series, with no control group: the numbers describe patients "
    "whose response was published, not a randomised comparison.",
    "Publication bias is likely: a single patient who responded is more likely to be written up than one "
    "who did not, which pushes these estimates up.",
    "'Response' means improvement or clearance while on the drug; flares after stopping were reported "
    "whenever stopping was tried. It is not cure.",
    "Outcome definitions differ between reports (e.g. 'more than 70%' versus 'complete clearance'), and "
    "several counts come from abstracts or secondary sources (see the evidence table).",
    "Most reports describe one patient, which carries no information about how much response rates "
    "differ between settings: the heterogeneity estimate leans on a few series.",
]


def render(context: dict) -> str:
    return render_page("report.html.j2", context)


def render_page(template: str, context: dict) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    environment.filters["pct"] = lambda x: "—" if x is None else f"{100 * x:.0f}%"
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
                          "BDA3's reference prior is flat in u; the half-normal keeps that shape near homogeneity "
                          "and shrinks away from κ < 1, where reports turn all-or-none. At μ = 0.5, u ≈ τ/2 for a "
                          "logit-normal τ, so u ~ HalfNormal(0.5) matches τ ~ HalfNormal(1). Checked by the prior "
                          "predictive check below."))
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
    """Every report of the table, included or not, with why."""
    column = f"n_{outcome}"
    rows = []
    for _, r in frame.iterrows():
        count = r.get(column)
        dose = _dose(r)
        link_text, link = _link(r)
        if not r["included"]:
            role = f"excluded ({str(r.get('default_set', '')).removeprefix('exclude_').replace('_', ' ')})"
        elif r["drug"] == drug:
            role = "pooled" if pd.notna(count) else f"not graded for {outcome.replace('_', ' ')}"
        elif r["drug"] == target:
            role = "target arm"
        else:
            role = "not analysed"
        rows.append({
            "report_id": r["report_id"], "design": r.get("design", ""), "drug": r["drug"],
            "route": r.get("route", ""), "dose": dose, "n": r["n_treated"],
            "y": "not graded" if pd.isna(count) else int(count),
            "source": SOURCE_LEVELS.get(r.get("source_level", ""), r.get("source_level", "")),
            "confidence": r.get("confidence", ""), "role": role, "link": link, "link_text": link_text,
            "wording": r.get("response_wording", ""),
        })
    return rows


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
        rows.append({"name": name, "r_hat": r["r_hat"], "ess_bulk": r["ess_bulk"], "ess_tail": r["ess_tail"],
                     "mcse_mean": r["mcse_mean"], "mcse_sd": r["mcse_sd"], "bad": bad})
    return rows


def write_report(staging: Path, summary: dict, result, borrowing, table, run_meta: dict) -> None:
    """Draw every figure into `staging/figures` and render `staging/report.html` embedding them."""
    config = result.config
    directory = staging / "figures"
    figures.draw_primary(result, summary, directory, FAMILIES[config.model.family].plotted_parameters)
    arm = None
    target = config.borrowing.target_drug
    if isinstance(borrowing, BorrowingResult):
        arm = summary[target]
        figures.draw_borrowing(borrowing, arm, directory)
    failures = list(result.convergence.failures)
    if isinstance(borrowing, BorrowingResult):
        failures += [f"joint model: {f}" for f in borrowing.joint.convergence.failures]
    sweep = staging.parent / "sensitivity" / "summary.csv"
    context = {
        "s": summary,
        "cfg": config,
        "run": run_meta,
        "arm": arm,
        "tkey": target,
        "skipped": borrowing if isinstance(borrowing, str) else None,
        "failures": failures,
        "outcome_words": summary["outcome"].replace("_", " "),
        "limitations": LIMITATIONS,
        "evidence": evidence_rows(table.frame, config.data.outcome, config.data.drug,
                                  target if config.borrowing.enabled else None),
        "spec": model_specification(config, len(result.data)),
        "borrowing_spec": borrowing_specification(config),
        "diagnostics": diagnostics_rows(result.convergence.table, config.diagnostics),
        "joint_diagnostics": diagnostics_rows(borrowing.joint.convergence.table, config.diagnostics)
        if isinstance(borrowing, BorrowingResult) else [],
        "figures": {p.stem: embed_png(p) for p in sorted(directory.glob("*.png"))},
        "prior_extreme": [
            name.replace("_", " ") for name, c in summary["predictive_checks"]["prior"].items()
            if not c["predictive"]["ci95"][0] <= c["observed"] <= c["predictive"]["ci95"][1]
        ],
        "sensitivity": pd.read_csv(sweep).to_dict(orient="records") if sweep.exists() else None,
    }
    (staging / "report.html").write_text(render(context), encoding="utf-8")
