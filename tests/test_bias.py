"""Bias-aware synthesis: meta-regression recovers a known slope and agrees with its own NUTS fit; cumulative
steps are the separate exact posteriors of each year's reports; what else differs with report size."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis.engine import quadrature
from analysis.engine.fitting import fit
from analysis.engine.seeds import Seeds
from analysis.errors import InputError
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import DEFAULT_CONFIG, load_config, user_overrides
from analysis.inputs.covariates import build_design
from analysis.inputs.evidence import BinomialData, EvidenceTable
from analysis.report.prose.sections import size_regression
from analysis.steps import cumulative, metaregression, primary
from analysis.synthesis import SIZE_VARIANT
from exact_posteriors import beta_binomial, inputs_for
from mc import assert_matches
from test_report import assert_every_number_is_the_summary_number
from models.families import FAMILIES, model_spec


def _data(n, y, years=None, extra=None):
    rows = pd.DataFrame({"report_id": [f"r{i}" for i in range(len(n))], "n_treated": n.astype(str),
                         "year": [str(v) for v in (years if years is not None else [2020] * len(n))]})
    for name, values in (extra or {}).items():
        rows[name] = values
    return BinomialData(tuple(rows["report_id"]), np.asarray(n), np.asarray(y), "any_response", "naltrexone", rows)


def _inputs(config, data):
    """The step's inputs for a table made in memory, with the config's covariate design."""
    table = EvidenceTable(Path("simulated.csv"), data.rows, "")
    design = build_design(data.rows, config.model.covariates, table.path) if config.model.covariates else None
    return inputs_for(config, data, table, design)


# --- meta-regression ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("family", ["beta_binomial", "logit_normal"])
def test_meta_regression_recovers_a_known_size_slope(model_cache, family):
    """40 reports of 1 to 30 patients whose mean response falls with log n (slope −1 on the logit scale):
    the posterior of the slope covers it, and its sign is clear."""
    rng = np.random.default_rng(12)
    n = rng.integers(1, 31, size=40)
    truth = -1.0
    logit_mean = 1.5 + truth * (np.log(n) - np.log(n).mean())
    theta = rng.beta(20 / (1 + np.exp(-logit_mean)), 20 / (1 + np.exp(logit_mean)))  # κ = 20
    y = rng.binomial(n, theta)
    config = load_config(model={"family": family, "covariates": ["log_n"]})
    result = metaregression.analyse(_inputs(config, _data(n, y)), model_cache)
    assert result.method == ("quadrature" if family == "beta_binomial" else "importance")
    slope = result.slopes["log_n"]
    assert slope.slope.lo < truth < slope.slope.hi
    assert slope.p_negative > 0.99
    sizes = [p.n for p in result.predictions]
    means = [p.estimate.mean for p in result.predictions]
    assert sizes == [int(n.min()), int(round(float(np.median(n)))), int(n.max()), 2 * int(n.max())]
    assert [p.extrapolation for p in result.predictions] == [False, False, False, True]
    assert means == sorted(means, reverse=True)
    assert result.curve["n"][0] == 1 and len(result.curve["mean"]) == len(result.curve["n"])


@pytest.fixture(scope="module")
def shipped_size(model_cache):
    inputs = load_inputs(load_config(SIZE_VARIANT))
    return inputs, metaregression.analyse(inputs, model_cache)


def test_shipped_size_slope_is_exact_and_agrees_with_nuts(shipped_size, model_cache):
    """The size meta-regression of the shipped data (one covariate: a three-parameter grid): slope −1.39
    (−2.87 to −0.04) per unit of log n, P(slope < 0) = 0.978; the same model's NUTS draws agree within 4
    Monte Carlo standard errors (+ the grid's stated error)."""
    inputs, result = shipped_size
    slope = result.slopes["log_n"]
    assert result.method == "quadrature" and result.numerical_error <= metaregression.TOLERANCE
    assert [round(v, 2) for v in (slope.slope.mean, slope.slope.lo, slope.slope.hi)] == [-1.39, -2.87, -0.04]
    assert round(slope.p_negative, 3) == 0.978
    assert slope.without_most_influential["report"] in inputs.data.report_ids
    means = [p.estimate.mean for p in result.predictions]
    assert means == sorted(means, reverse=True)

    config, design = inputs.config, inputs.design
    family = FAMILIES[config.model.family]
    reports = primary.model_reports(config, inputs.data, design)
    fitted = fit(model_cache, model_spec(config.model.family, reports, config.model.prior), config.sampling,
                 Seeds(config.sampling.seed).integer("meta-regression"), config.diagnostics,
                 lambda p: family.derive(p, reports, Seeds(1).rng("derive")), family.heavy_tailed, report_level=False)
    assert fitted.convergence.passed, fitted.convergence.failures
    natural = fitted.posterior["beta"].isel(covariate=0) / float(design.scale[0])
    error = result.numerical_error
    assert_matches(natural, slope.slope.mean, extra=error, label="slope")
    for q, value in ((0.025, slope.slope.lo), (0.5, slope.slope.median), (0.975, slope.slope.hi)):
        assert_matches(natural, value, "quantile", q, extra=error, label="slope")
    assert_matches(fitted.posterior["pooled"], result.pooled.mean, extra=error, label="pooled")
    values = {k: fitted.posterior[k].values for k in fitted.posterior.data_vars}
    for prediction in result.predictions:  # E[θ | size]: quantiles along the logit-μ axis, spectrally accurate
        draws = metaregression._means_at(family, values, design, prediction.covariate, prediction.value)
        for q, value in ((0.025, prediction.estimate.lo), (0.975, prediction.estimate.hi)):
            assert_matches(xr.DataArray(draws, dims=("chain", "draw")), value, "quantile", q, extra=error,
                           label=prediction.label)


def test_size_predictions_and_their_curve_are_settled_by_the_grid(shipped_size, model_cache):
    """The printed predictions' bounds are among the summaries that settle the grid, and they are its
    spectrally accurate ones: the same on a 121³ grid within the stated error (the smoothed estimator was
    0.01 off at the grid the slope alone needed). The figure's curve is the same estimator,
    so it passes through the printed predictions."""
    inputs, result = shipped_size
    config, design = inputs.config, inputs.design
    family = FAMILIES[config.model.family]
    spec = model_spec(config.model.family, primary.model_reports(config, inputs.data, design), config.model.prior)
    region = quadrature.box(model_cache, spec)
    fine = quadrature.on_box(model_cache, spec, region, 121)
    for prediction in result.predictions:
        reference = metaregression._exact_mean_at(family, fine, design, prediction.covariate, prediction.value)
        allowed = result.numerical_error + 1e-5  # the stated error (the last refinement's change) and the 121³ grid's
        for ours, theirs in ((prediction.estimate.lo, reference.lo), (prediction.estimate.hi, reference.hi)):
            assert abs(ours - theirs) <= allowed, prediction.label
        if prediction.n in result.curve["n"]:
            k = result.curve["n"].index(prediction.n)
            assert (result.curve["lo"][k], result.curve["hi"][k]) == (prediction.estimate.lo, prediction.estimate.hi)


def test_the_logit_normal_size_regression_by_importance_sampling_matches_a_grid(model_cache):
    """The logit-normal size meta-regression (a sensitivity variant; its 3-D grid is too dear for a run) comes
    from importance sampling on fixed quasi-random points: its pooled mean, the slope's mean, bounds and
    P(slope < 0), and the mean at the largest report's size, against a 46³ grid of the same log density
    (expectations and marginal quantiles converge spectrally: the pooled mean moves by 2e-9 from 46 to 61
    nodes), within 4 of their stated standard errors plus 1e-4 for the grid; every number is the same at
    another seed. (A derived quantity's bounds on the grid converge only algebraically: 0.884, 0.889, 0.893
    at 46, 61 and 91 nodes for the upper bound at 14 patients, against 0.893 here.)"""
    config = load_config(SIZE_VARIANT, model={"family": "logit_normal"})
    inputs = load_inputs(config)
    result = metaregression.analyse(inputs, model_cache)
    assert result.method == "importance" and result.failures == ()  # its weights' k̂ is below 0 (bounded tails)
    family, design = FAMILIES["logit_normal"], inputs.design
    spec = model_spec("logit_normal", primary.model_reports(config, inputs.data, design), config.model.prior)
    grid = quadrature.on_box(model_cache, spec, quadrature.box(model_cache, spec), 46)
    slope, scale = result.slopes["log_n"], float(design.scale[0])

    def close(ours, error, theirs, label):
        assert abs(ours - theirs) <= 4 * error + 1e-4, (label, ours, theirs, error)

    close(result.pooled.mean, result.pooled.mcse["mean"], grid.grid.expectation(family.pooled(grid.values)), "pooled")
    close(slope.slope.mean, slope.slope.mcse["mean"], grid.grid.expectation(grid.values["beta"][..., 0] / scale), "slope")
    close(slope.p_negative, slope.p_negative_mcse, float(grid.grid.marginal_cdf(2, 0.0)), "P(slope < 0)")
    lo, hi = grid.grid.marginal_quantile(2, [0.025, 0.975]) / scale
    close(slope.slope.lo, slope.slope.mcse["lo"], lo, "slope's lower bound")
    close(slope.slope.hi, slope.slope.mcse["hi"], hi, "slope's upper bound")
    largest = result.predictions[2]
    at_largest = metaregression._means_at(family, grid.values, design, largest.covariate, largest.value)
    close(largest.estimate.mean, largest.estimate.mcse["mean"], grid.grid.expectation(at_largest), "mean at 14")
    other = metaregression.analyse(load_inputs(load_config(SIZE_VARIANT, model={"family": "logit_normal"},
                                                           sampling={"seed": 7})), model_cache)
    assert other.pooled == result.pooled and other.slopes == result.slopes


def test_a_binary_covariate_and_its_missing_values(tmp_path):
    csv = tmp_path / "dose.csv"
    csv.write_text("report_id,drug,n_treated,n_any_response,dose_mg_min\nA,naltrexone,3,3,1.5\n"
                   "B,naltrexone,4,2,12.5\nC,naltrexone,2,2,\n")
    config = load_config(data=user_overrides(csv)["data"], model={"covariates": ["low_start_dose"]})
    with pytest.raises(InputError) as err:
        load_inputs(config)
    assert err.value.problems == [f"{csv.resolve()}: report_id C, column dose_mg_min: no value for covariate "
                                  "'low_start_dose' (starting dose ≤ 4.5 mg/day); set model.covariate_missing = "
                                  "\"drop\" to leave such reports out"]
    dropped = load_config(data=user_overrides(csv)["data"],
                          model={"covariates": ["low_start_dose"], "covariate_missing": "drop"})
    inputs = load_inputs(dropped)
    assert inputs.data.report_ids == ("A", "B")
    np.testing.assert_array_equal(inputs.design.raw[:, 0], [1.0, 0.0])


# --- cumulative meta-analysis ---------------------------------------------------------------------------------


def test_cumulative_steps_are_the_separate_exact_posteriors_of_each_years_reports(model_cache):
    """Each step is the exact posterior of the reports published by its year (as a separate analysis of
    them computes it, and within the step's grid tolerance of the brute-force grid); a report of uncertain
    year moved to the year it was first seen moves its step; reports without a year: no analysis."""
    n, y = np.array([1, 3, 8, 2, 14]), np.array([1, 3, 7, 2, 8])
    data = _data(n, y, years=[2017, 2017, 2019, 2020, 2020])
    config = load_config()
    result = cumulative.analyse(_inputs(config, data), model_cache)
    steps = result.steps
    assert [s.year for s in steps] == [2017, 2019, 2020] and [s.reports for s in steps] == [2, 3, 5]
    assert steps[1].added == ("r2",) and (steps[1].patients, steps[1].responders) == (12, 11)
    keep = np.array([True, True, True, False, False])
    separate = primary.population(model_cache, config, primary.model_reports(config, data.subset(keep)),
                                  cumulative.TOLERANCE)
    assert steps[1].pooled == separate.pooled and steps[1].predictive == separate.predictive
    brute = beta_binomial(y[keep], n[keep], config.model.prior, size=600, log_u_range=(-12.0, None))
    assert abs(steps[1].pooled.mean - brute.mean("mu")) <= cumulative.TOLERANCE
    assert result.first_seen is None

    moved_config = config.model_copy(update={"cumulative": config.cumulative.model_copy(
        update={"first_seen": {"r2": 2020}})})
    moved = cumulative.analyse(_inputs(moved_config, data), model_cache).first_seen
    assert moved["moved"] == {"r2": 2020}
    assert [s.year for s in moved["steps"]] == [2017, 2020] and moved["steps"][-1].pooled == steps[-1].pooled
    assert cumulative.analyse(_inputs(config, _data(n, y, years=[""] * 5)), model_cache) is None


# --- what else differs with report size ----------------------------------------------------------------------


def _summary_with(confounders) -> dict:
    """The smallest summary block the report's size paragraph reads."""
    estimate = {"mean": -1.0, "median": -1.0, "sd": 0.5, "ci95": [-2.0, 0.0], "method": "exact", "error": None}
    return {"small_study": {"slopes": {"log_n": {"slope": estimate, "p_negative": 0.9,
                                                 "without_most_influential": None}},
                            "predictions": [], "confounders": None if confounders is None else confounders.to_dict()}}


def test_confounders_of_size_are_read_from_the_table_and_told_only_where_the_groups_differ():
    frame = pd.DataFrame({"report_id": ["a", "b", "c", "d"], "design": ["case report", "case report", "series", "series"],
                          "source_level": ["primary_abstract", "primary_abstract", "secondary_review", "primary_abstract"],
                          "dose_mg_max": ["4.5", "3", "50", "4.5"]})
    data = BinomialData(("a", "b", "c", "d"), np.array([1, 1, 9, 12]), np.array([1, 1, 5, 12]), "any_response",
                        "naltrexone", frame)
    found = metaregression.size_confounders(frame, data)
    assert found.groups == {"with_nonresponder": 1, "all_responder": 3}
    assert found.secondary == {"with_nonresponder": 1, "all_responder": 0} and found.secondary_reports == ("c",)
    assert found.designs == {"with_nonresponder": {"series": 1}, "all_responder": {"case report": 2, "series": 1}}
    assert found.highest_dose == {"with_nonresponder": 50.0, "all_responder": 4.5}
    told = " ".join(size_regression(_summary_with(found)))
    assert "1 of the 1 reports with a non-responder is known only from a secondary source, against 0 of the 3" in told
    assert "up to 50.0 mg a day in the reports with a non-responder and at most 4.5 mg in the others" in told

    alike = frame.assign(design="series", source_level="primary_abstract", dose_mg_max="4.5")
    same = metaregression.size_confounders(alike, data)
    assert same.secondary == {"with_nonresponder": 0, "all_responder": 0}
    assert "cannot separate from size" not in " ".join(size_regression(_summary_with(same)))
    everyone = BinomialData(("a", "b", "c", "d"), np.array([1, 1, 9, 12]), np.array([1, 1, 9, 12]), "any_response",
                            "naltrexone", frame)
    assert metaregression.size_confounders(frame, everyone) is None  # no report with a non-responder


@pytest.mark.slow
def test_a_primary_meta_regression_is_reported_with_its_slopes(tmp_path, model_cache):
    """A config with covariates: the report shows each slope and its predictions from summary.json."""
    import json

    from analysis import fit as command

    config = tmp_path / "metareg.toml"
    config.write_text(f'extends = "{DEFAULT_CONFIG}"\n[model]\ncovariates = ["log_n", "year"]\n')
    out = tmp_path / "out"
    assert command.main(["--config", str(config), "--no-sensitivity", "--out", str(out)], cache=model_cache) == 0
    summary = json.loads((out / "summary.json").read_text())
    block, page = summary["meta_regression"], (out / "report.html").read_text()
    assert set(block["slopes"]) == {"log_n", "year"} and block["method"] == "importance"
    assert "Meta-regression of this analysis" in page and (out / "figures" / "funnel.png").is_file()
    for name in ("log_n", "year"):  # P(slope < 0) from fixed importance points, with its standard error
        assert f'data-key="meta_regression.slopes.{name}.p_negative"' in page
        assert f'data-key="meta_regression.slopes.{name}.slope.ci95.1"' in page
        assert block["slopes"][name]["p_negative_mcse"] > 0 and block["slopes"][name]["label"] in page
    assert 'data-key="meta_regression.predictions.4.estimate.mean"' in page  # a prediction by year
    assert ("bias-integrated answer were not computed: the primary model has more parameters than the grid serves"
            in page)
    assert_every_number_is_the_summary_number(out / "report.html", summary, minimum=50)
    # the pooled estimate is a report at the covariates' centre, and the headline says so
    headline = page.split('id="bottom-line"', 1)[1].split("<h2", 1)[0]
    assert "for a report at the average of its covariates" in headline
    assert "average over reports" not in headline
    assert "come from NUTS draws" in headline and "Every number here is exact" not in headline
