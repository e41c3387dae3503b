"""Meta-regression on report-level covariates: slopes, predictions, how fragile the sign of a slope is to
one report, and what else differs between the reports that carry a size signal and the others.

With one covariate the beta-binomial has three parameters and is integrated exactly on a grid; otherwise
(several covariates, or the logit-normal family, whose grid would cost minutes) by importance sampling of the
same compiled log density on fixed quasi-random points (`analysis.engine.quadrature.importance`): the same at
every seed, each number with the standard error its independent scramblings give.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special

from analysis.engine import quadrature
from analysis.engine.programs import ModelCache
from analysis.engine.quadrature import Exact
from analysis.inputs.bundle import Inputs
from analysis.inputs.covariates import COVARIATES, Design
from analysis.inputs.evidence import BinomialData
from analysis.results import Estimate
from analysis.results.bias import Confounders, MetaRegression, Prediction, Slope
from analysis.steps import estimates as est
from analysis.steps.primary import model_reports, pooled_estimate
from models.families import FAMILIES, model_spec

GRID_FAMILIES = ("beta_binomial",)
"""Families whose one-covariate model is integrated on a grid (the logit-normal's marginal likelihood is
30 times dearer per point: a 3-D grid of it would cost minutes, so it is importance-sampled)."""


def analyse(inputs: Inputs, cache: ModelCache) -> MetaRegression:
    config, data, design = inputs.config, inputs.data, inputs.design
    family = FAMILIES[config.model.family]
    reports = model_reports(config, data, design)
    spec = model_spec(config.model.family, reports, config.model.prior)
    sizes = _prediction_sizes(data.n)
    if design.matrix.shape[1] == 1 and config.model.family in GRID_FAMILIES:
        points = list(_prediction_points(design, sizes))
        exact = _covering_posterior(family, reports, cache, spec, design, points)
        slopes = {design.names[0]: _exact_slope(family, exact, reports, design, data)}
        predictions = tuple(Prediction(name, label, size, value, _exact_mean_at(family, exact, design, name, value),
                                       extrapolated) for name, label, size, value, extrapolated in points)
        curve = _curve(lambda v: _exact_mean_at(family, exact, design, "log_n", v), data) \
            if "log_n" in design.names else None
        pooled, method, error, failures = pooled_estimate(family, exact), "quadrature", exact.error, []
    else:  # several covariates, or a family too dear for a 3-D grid: fixed quasi-random points
        weighted, named = quadrature.importance(cache, spec)
        slopes = {name: _weighted_slope(name, weighted, [v["beta"][:, k] / design.scale[k] for v in named])
                  for k, name in enumerate(design.names)}

        def mean_at(name: str, value: float) -> Estimate:
            return est.of_importance(weighted, [_means_at(family, v, design, name, value) for v in named])

        predictions = tuple(Prediction(name, label, size, value, mean_at(name, value), extrapolated)
                            for name, label, size, value, extrapolated in _prediction_points(design, sizes))
        curve = _curve(lambda v: mean_at("log_n", v), data) if "log_n" in design.names else None
        pooled = est.of_importance(weighted, [family.pooled(v) for v in named])
        method, error, failures = "importance", None, est.importance_check(weighted)[1]
    confounders = size_confounders(inputs.table.frame, data) if "log_n" in design.names else None
    return MetaRegression(method, slopes, predictions, (int(data.n.min()), int(data.n.max())), curve, confounders,
                          pooled, error, tuple(failures))


TOLERANCE = 2e-4
"""Grid tolerance of the meta-regression: its numbers are printed to two decimals (three-parameter grids
cost the cube of the nodes, so this is coarser than the primary model's)."""


def _covering_posterior(family, reports, cache: ModelCache, spec, design: Design, points: list) -> Exact:
    """The grid posterior on a box that also holds the posterior without each report, so that every
    leave-one-out posterior is a reweighting of this one."""
    region = quadrature.box(cache, spec)
    coarse = quadrature.on_box(cache, spec, region, quadrature.START_NODES[3])
    first, _ = reports.distinct()  # reports that share a row of counts and covariates leave the same posterior
    log_lik = family.log_marginal(coarse.values, reports.y[first], reports.n[first], reports.covariates[first])
    moving = [i for j, i in enumerate(first) if not coarse.reweighted(-log_lik[..., j]).contains()]
    boxes = [quadrature.box(cache, spec, extra=lambda v, i=i: -_report_log_lik(family, v, reports, i)) for i in moving]
    return quadrature.posterior(cache, spec, _checked(family, design, points), on=quadrature.union(region, *boxes),
                                tolerance=TOLERANCE)


def _checked(family, design: Design, points: list):
    """The summaries that decide the grid's resolution: the slope's bounds and sign, the pooled mean and the
    bounds of every printed prediction."""
    def checked(exact: Exact) -> dict[str, float]:
        lo, hi = exact.grid.marginal_quantile(2, [est.LOWER, est.UPPER])
        out = {"slope_lo": float(lo), "slope_hi": float(hi), "p_negative": float(exact.grid.marginal_cdf(2, 0.0)),
               "pooled": exact.grid.expectation(family.pooled(exact.values))}
        for k, (name, _, _, value, _) in enumerate(points):
            prediction = _exact_mean_at(family, exact, design, name, value)
            out |= {f"prediction{k}_lo": prediction.lo, f"prediction{k}_hi": prediction.hi}
        return out

    return checked


def _report_log_lik(family, values: dict, reports, i: int) -> np.ndarray:
    return family.log_marginal(values, reports.y[i:i + 1], reports.n[i:i + 1], reports.covariates[i:i + 1])[..., 0]


def _weighted_slope(name: str, weighted, values: list[np.ndarray]) -> Slope:
    """A slope from its values at the importance points: P(slope < 0) with its standard error."""
    negative = est.of_importance(weighted, [(v < 0).astype(float) for v in values])
    return Slope(COVARIATES[name].label, COVARIATES[name].unit, est.of_importance(weighted, values), negative.mean,
                 None, negative.mcse["mean"])


def _exact_slope(family, exact: Exact, reports, design: Design, data) -> Slope:
    """The slope per natural unit from the β axis (the grid's third), P(β < 0) from its marginal CDF, and
    P(β < 0) without each report in turn (a reweighting: the grid holds every leave-one-out posterior). The
    covariate's centring and scale, and so the prior of the slope, stay those of all the reports."""
    name = design.names[0]
    scale = float(design.scale[0])
    slope = est.on_grid(exact, exact.values["beta"][..., 0] / scale, axis=2, transform=lambda b: b / scale)
    p_negative = float(exact.grid.marginal_cdf(2, 0.0))
    first, row_of = reports.distinct()  # once per distinct row of counts and covariates
    log_lik = family.log_marginal(exact.values, reports.y[first], reports.n[first], reports.covariates[first])
    per_row = [float(exact.grid.reweighted(-log_lik[..., j]).marginal_cdf(2, 0.0)) for j in range(first.size)]
    without = {rid: per_row[row_of[i]] for i, rid in enumerate(data.report_ids)}
    influential = max(without, key=lambda r: abs(without[r] - p_negative)) if without else None
    return Slope(COVARIATES[name].label, COVARIATES[name].unit, slope, p_negative,
                 None if influential is None else {"report": influential, "p_negative": without[influential]})


def _prediction_sizes(n: np.ndarray) -> tuple[list[int], int]:
    """Report sizes to predict at: the smallest, median and largest pooled report; and twice the largest,
    beyond the data (shown as an extrapolation)."""
    inside = sorted({int(n.min()), int(round(float(np.median(n)))), int(n.max())})
    return inside, 2 * int(n.max())


def _prediction_points(design: Design, sizes: tuple[list[int], int]):
    """(covariate, label, size, natural value, extrapolation) for each prediction."""
    inside, beyond = sizes
    for k, name in enumerate(design.names):
        column = design.raw[:, k]
        if name == "log_n":
            for m in inside:
                yield name, f"{m} patient{'s' if m > 1 else ''}", m, float(np.log(m)), False
            yield name, f"{beyond} patients", beyond, float(np.log(beyond)), True
        elif COVARIATES[name].binary:
            for v, word in ((0.0, "no"), (1.0, "yes")):
                yield name, f"{COVARIATES[name].label}: {word}", None, v, False
        else:
            for v in (float(column.min()), float(column.max())):
                yield name, f"{COVARIATES[name].label} {v:g}", None, v, False


def _means_at(family, values: dict, design: Design, name: str, value: float) -> np.ndarray:
    """E[θ | x] at each point with covariate `name` at `value` (natural units), the others at their mean."""
    raw = design.centre.copy()
    raw[design.names.index(name)] = value
    return family.mean_at(values, design.encode(raw[None, :]))[..., 0]


def _exact_mean_at(family, exact: Exact, design: Design, name: str, value: float) -> Estimate:
    """E[θ | x] on the grid. For the beta-binomial it is expit(logit μ + xᵀβ), which increases along the
    grid's logit-μ axis on every line: its quantiles come from the lines' conditional CDFs (spectrally
    accurate, as the slope's), not from the smoothed estimator, which converges algebraically."""
    means = _means_at(family, exact.values, design, name, value)
    if not family.__name__.endswith("beta_binomial"):
        return est.on_grid(exact, means)
    raw = design.centre.copy()
    raw[design.names.index(name)] = value
    shift = exact.values["beta"][0] @ design.encode(raw[None, :])[0]  # xᵀβ on each line along axis 0
    return est.increasing_along(exact, means, 0, lambda t: special.logit(t) - shift)


def _curve(estimate_at: Callable[[float], Estimate], data: BinomialData) -> dict[str, list[float]]:
    """The fitted mean over report sizes with its 95% band (a figure's line), from `estimate_at(log n)`:
    exact on a grid, so that the line and the printed predictions agree."""
    sizes = np.unique(np.round(np.geomspace(1, 2 * max(int(data.n.max()), 15), 30)).astype(int))
    estimates = [estimate_at(float(np.log(m))) for m in sizes]
    return {"n": sizes.tolist(), "mean": [e.mean for e in estimates], "lo": [e.lo for e in estimates],
            "hi": [e.hi for e in estimates]}


def size_confounders(frame: pd.DataFrame, data: BinomialData) -> Confounders | None:
    """What else differs between the reports with a non-responder and the all-responder reports (see
    `Confounders`); None when either group is empty."""
    rows = frame.set_index("report_id").loc[list(data.report_ids)]
    mixed = np.asarray(data.y) < np.asarray(data.n)
    groups = {"with_nonresponder": rows[mixed], "all_responder": rows[~mixed]}
    if min(len(g) for g in groups.values()) == 0:
        return None
    secondary = {k: g["source_level"].astype(str).str.startswith("secondary") if "source_level" in g else
                 pd.Series(False, index=g.index) for k, g in groups.items()}
    designs = {k: {str(d): int(c) for d, c in g["design"].astype(str).value_counts().items()} if "design" in g else {}
               for k, g in groups.items()}
    dose = {k: (float(g["dose_mg_max"].astype(float).max()) if "dose_mg_max" in g and g["dose_mg_max"].notna().any()
                else None) for k, g in groups.items()}
    return Confounders({k: len(g) for k, g in groups.items()}, {k: int(s.sum()) for k, s in secondary.items()},
                       tuple(groups["with_nonresponder"].index[secondary["with_nonresponder"].to_numpy()]), designs, dose)
