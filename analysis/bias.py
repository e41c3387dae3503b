"""How far the answer rests on selective publication and small reports: meta-regression summaries,
cumulative meta-analysis, and the bias scenarios that the headline reports.

Every function works from a fitted `AnalysisResult` (or refits with the same compiled sampler), so the
numbers follow the data of the run.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from analysis.config import Config
from analysis.covariates import COVARIATES
from analysis.data import BinomialData
from analysis.intervals import clopper_pearson, describe, describe_predictive, rounded
from analysis.pipeline import AnalysisResult, run_analysis
from models import FAMILIES

PREDICTION_SIZES = (1, 3, 8, 14, 30)
"""Report sizes at which a size meta-regression predicts the mean response."""


def meta_regression_summary(result: AnalysisResult) -> dict:
    """Each slope per natural unit, under the covariate's name (mean, 95% interval, P(β < 0)), the predicted mean response for reports
    of a few sizes (or at each level of a binary covariate), others at their average; and, for a size
    covariate, the fitted curve over report sizes with its 95% band (the funnel-type figure)."""
    design, posterior = result.design, result.idata["posterior"]
    family = FAMILIES[result.config.model.family]
    slopes = design.natural_slopes(posterior["beta"].transpose("chain", "draw", "covariate").values)
    covariates = {}
    for k, name in enumerate(design.names):
        draws = slopes[..., k]
        covariates[name] = {**_mean_ci(draws), "p_negative": rounded(np.mean(draws < 0)), "unit": COVARIATES[name].unit,
                            "label": COVARIATES[name].label}
    block = {**covariates, "predictions": _predictions(family, posterior, design), "reports": _observed(result.data)}
    if "log_n" in design.names:
        sizes = np.unique(np.round(np.geomspace(1, max(30, int(result.data.n.max())), 40)).astype(int))
        means = _means_at(family, posterior, design, "log_n", np.log(sizes))
        block["curve"] = {"n": sizes.tolist(), "mean": [rounded(v) for v in means.mean(axis=(0, 1))],
                          "lo": [rounded(v) for v in np.quantile(means, 0.025, axis=(0, 1))],
                          "hi": [rounded(v) for v in np.quantile(means, 0.975, axis=(0, 1))]}
    return block


def _predictions(family, posterior, design) -> list[dict]:
    rows = []
    for name in design.names:
        if name == "log_n":
            values = [(f"{m} patient{'s' if m > 1 else ''}", m, np.log(m)) for m in PREDICTION_SIZES]
        elif COVARIATES[name].binary:
            values = [(f"{COVARIATES[name].label}: no", None, 0.0), (f"{COVARIATES[name].label}: yes", None, 1.0)]
        else:
            low, high = design.raw[:, design.names.index(name)].min(), design.raw[:, design.names.index(name)].max()
            values = [(f"{COVARIATES[name].label} {v:g}", None, v) for v in (low, high)]
        means = _means_at(family, posterior, design, name, np.array([v for _, _, v in values]))
        for (label, size, value), k in zip(values, range(len(values))):
            rows.append({"covariate": name, "label": label, "n": size, "value": rounded(value),
                         **_mean_ci(means[..., k])})
    return rows


def _means_at(family, posterior, design, name: str, values: np.ndarray) -> np.ndarray:
    """E[θ | x] per draw with covariate `name` at each of `values` (natural units), others at their mean."""
    raw = np.tile(design.centre, (len(values), 1))
    raw[:, design.names.index(name)] = values
    return family.population_mean_at(posterior, design.encode(raw))


def _observed(data: BinomialData) -> dict:
    return {rid: {"n": int(n), "y": int(y), "raw_ci95": [rounded(v) for v in clopper_pearson(int(y), int(n))]}
            for rid, n, y in zip(data.report_ids, data.n, data.y)}


def _mean_ci(draws) -> dict:
    block = describe(draws)
    return {"mean": block["mean"], "ci95": block["ci95"]}


# --- cumulative meta-analysis --------------------------------------------------------------------------


def size_confounders(frame: pd.DataFrame, data: BinomialData) -> list[str]:
    """What else differs between the reports that carry the size signal (those with a non-responder) and
    the all-responder reports, read from the evidence table: how the counts were read (`source_level`),
    the design, and the highest dose given (`dose_mg_max`; non-responders may have been escalated). Each
    is a sentence only when the two groups differ; a meta-regression on size cannot tell these apart."""
    rows = frame.set_index("report_id").loc[list(data.report_ids)]
    mixed = pd.Series(np.asarray(data.y) < np.asarray(data.n), index=rows.index)
    groups = {"with a non-responder": rows[mixed.to_numpy()], "all-responder": rows[~mixed.to_numpy()]}
    if min(len(g) for g in groups.values()) == 0:
        return []
    sentences = []
    if "source_level" in rows:
        secondary = {k: int(g["source_level"].astype(str).str.startswith("secondary").sum()) for k, g in groups.items()}
        shares = {k: secondary[k] / len(g) for k, g in groups.items()}
        if shares["with a non-responder"] != shares["all-responder"]:
            named = ", ".join(groups["with a non-responder"].index[
                groups["with a non-responder"]["source_level"].astype(str).str.startswith("secondary")])
            sentences.append(f"{secondary['with a non-responder']} of the {len(groups['with a non-responder'])} reports "
                             f"with a non-responder {'is' if secondary['with a non-responder'] == 1 else 'are'} known "
                             f"only from a secondary source{f' ({named})' if named else ''}, against "
                             f"{secondary['all-responder']} of the {len(groups['all-responder'])} all-responder reports")
    if "design" in rows:
        designs = {k: g["design"].astype(str).value_counts() for k, g in groups.items()}
        if set(designs["with a non-responder"].index) != set(designs["all-responder"].index):
            listed = {k: " and ".join(f"{count} {_plural(name, count)}" for name, count in d.items())
                      for k, d in designs.items()}
            sentences.append(f"the reports with a non-responder are {listed['with a non-responder']}, the "
                             f"all-responder reports {listed['all-responder']}")
    if "dose_mg_max" in rows:
        highest = {k: pd.to_numeric(g["dose_mg_max"], errors="coerce") for k, g in groups.items()}
        top_mixed, top_all = highest["with a non-responder"].max(), highest["all-responder"].max()
        if np.isfinite(top_mixed) and np.isfinite(top_all) and top_mixed > top_all:
            sentences.append(f"the highest dose reached was up to {top_mixed:g} mg/day in the reports with a "
                             f"non-responder and at most {top_all:g} mg/day in the all-responder reports (a dose "
                             "raised after non-response goes with the outcome, not with the report's size)")
    return sentences


def _plural(noun: str, count: int) -> str:
    return noun if count == 1 or noun.endswith(("s", "series")) else noun + "s"


def cumulative(config: Config, data: BinomialData, cache, years: dict[str, int] | None = None) -> list[dict]:
    """Refit in publication-year order, one step per year (every step reuses the compiled sampler):
    pooled mean and predictive θ per step (as `metafor::cumul`). `years` overrides a report's year (for
    a report whose year is uncertain); reports without a year make the analysis impossible (empty list)."""
    year = pd.to_numeric(data.rows["year"], errors="coerce") if data.rows is not None and "year" in data.rows else None
    if year is None or year.isna().any():
        return []
    year = year.astype(int).to_numpy().copy()
    for rid, value in (years or {}).items():
        if rid in data.report_ids:
            year[data.report_ids.index(rid)] = value
    family = FAMILIES[config.model.family]
    quiet = config.model_copy(update={"borrowing": config.borrowing.model_copy(update={"enabled": False})})

    def step(step_year: int) -> dict:
        keep = year <= step_year
        subset = data.subset(keep)
        posterior = run_analysis(quiet, subset, cache, checks=False).idata["posterior"]
        return {
            "year": int(step_year), "reports": int(keep.sum()), "patients": int(subset.n.sum()),
            "responders": int(subset.y.sum()),
            "added": [rid for rid, y in zip(data.report_ids, year) if y == step_year],
            "pooled": describe(posterior["pooled"]),
            "predictive": describe_predictive(family, posterior),
        }

    with ThreadPoolExecutor(config.sampling.cores) as pool:  # fits overlap on the cores; order kept
        return list(pool.map(step, sorted(set(year))))


def first_seen_years(config: Config, data: BinomialData) -> dict[str, int]:
    """The configured first-seen years of reports in these data whose own year is uncertain."""
    return {rid: year for rid, year in config.cumulative.first_seen.items() if rid in data.report_ids}
