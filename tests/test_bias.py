"""Bias-aware synthesis: meta-regression recovers a known slope; cumulative steps are separate fits."""

import numpy as np
import pandas as pd
import pytest

from analysis import bias
from analysis.config import DEFAULT_CONFIG, load_config, user_data
from analysis.data import BinomialData
from analysis.pipeline import run_analysis


def _data(n, y, years=None, extra=None):
    rows = pd.DataFrame({"report_id": [f"r{i}" for i in range(len(n))], "n_treated": n.astype(str),
                         "year": [str(v) for v in (years if years is not None else [2020] * len(n))]})
    for name, values in (extra or {}).items():
        rows[name] = values
    return BinomialData(tuple(rows["report_id"]), np.asarray(n), np.asarray(y), "any_response", "naltrexone", rows)


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
    result = run_analysis(config, _data(n, y), model_cache, checks=False)
    assert result.convergence.passed, result.convergence.failures
    block = bias.meta_regression_summary(result)
    slope = block["log_n"]
    assert slope["ci95"][0] < truth < slope["ci95"][1]
    assert slope["p_negative"] > 0.99
    sizes = [p["n"] for p in block["predictions"]]
    means = [p["mean"] for p in block["predictions"]]
    assert sizes == [1, 3, 8, 14, 30] and means == sorted(means, reverse=True)
    assert block["curve"]["n"][0] == 1 and len(block["curve"]["mean"]) == len(block["curve"]["n"])


def test_a_binary_covariate_and_its_missing_values(tmp_path):
    from analysis.errors import InputError

    csv = tmp_path / "dose.csv"
    csv.write_text("report_id,drug,n_treated,n_any_response,dose_mg_min\nA,naltrexone,3,3,1.5\n"
                   "B,naltrexone,4,2,12.5\nC,naltrexone,2,2,\n")
    config = load_config(data=user_data(csv), model={"covariates": ["low_start_dose"]})
    with pytest.raises(InputError) as err:
        config.load()
    assert err.value.problems == [f"{csv}: report_id C, column dose_mg_min: no value for covariate 'low_start_dose' "
                                  "(starting dose ≤ 4.5 mg/day); set model.covariate_missing = \"drop\" to leave "
                                  "such reports out"]
    dropped = load_config(data=user_data(csv), model={"covariates": ["low_start_dose"], "covariate_missing": "drop"})
    assert dropped.load()[1].report_ids == ("A", "B")


def test_cumulative_steps_are_the_separate_fits_of_each_years_reports(model_cache):
    n, y = np.array([1, 3, 8, 2, 14]), np.array([1, 3, 7, 2, 8])
    data = _data(n, y, years=[2017, 2017, 2019, 2020, 2020])
    config = load_config()
    steps = bias.cumulative(config, data, model_cache)
    assert [s["year"] for s in steps] == [2017, 2019, 2020] and [s["reports"] for s in steps] == [2, 3, 5]
    assert steps[1]["added"] == ["r2"]
    quiet = config.model_copy(update={"borrowing": config.borrowing.model_copy(update={"enabled": False})})
    separate = run_analysis(quiet, data.subset(np.array([True, True, True, False, False])), model_cache, checks=False)
    from analysis.intervals import describe
    assert steps[1]["pooled"] == describe(separate.idata["posterior"]["pooled"])
    moved = bias.cumulative(config, data, model_cache, {"r2": 2020})
    assert [s["year"] for s in moved] == [2017, 2020] and moved[-1]["pooled"] == steps[-1]["pooled"]
    assert bias.cumulative(config, _data(n, y, years=["", "", "", "", ""]), model_cache) == []


def test_confounders_of_size_are_read_from_the_table_and_only_where_the_groups_differ():
    frame = pd.DataFrame({"report_id": ["a", "b", "c", "d"], "design": ["case report", "case report", "series", "series"],
                          "source_level": ["primary_abstract", "primary_abstract", "secondary_review", "primary_abstract"],
                          "dose_mg_max": ["4.5", "3", "50", "4.5"]})
    data = BinomialData(("a", "b", "c", "d"), np.array([1, 1, 9, 12]), np.array([1, 1, 5, 12]), "any_response",
                        "naltrexone", frame)
    sentences = bias.size_confounders(frame, data)
    assert sentences == [
        "1 of the 1 reports with a non-responder is known only from a secondary source (c), against 0 of the 3 "
        "all-responder reports",
        "the reports with a non-responder are 1 series, the all-responder reports 2 case reports and 1 series",
        "the highest dose reached was up to 50 mg/day in the reports with a non-responder and at most 4.5 mg/day in "
        "the all-responder reports (a dose raised after non-response goes with the outcome, not with the report's size)",
    ]
    alike = frame.assign(design="series", source_level="primary_abstract", dose_mg_max="4.5")
    assert bias.size_confounders(alike, data) == []
    everyone = BinomialData(("a", "b", "c", "d"), np.array([1, 1, 9, 12]), np.array([1, 1, 9, 12]), "any_response",
                            "naltrexone", frame)
    assert bias.size_confounders(frame, everyone) == []  # no report with a non-responder: nothing to compare


def test_a_primary_meta_regression_is_reported_with_its_slopes(tmp_path, model_cache):
    """A config with covariates: the report shows each slope and its predictions from summary.json."""
    import json

    from markupsafe import escape

    from analysis import fit

    config = tmp_path / "metareg.toml"
    config.write_text(f'extends = "{DEFAULT_CONFIG}"\n[model]\ncovariates = ["log_n", "year"]\n')
    out = tmp_path / "out"
    assert fit.main(["--config", str(config), "--no-sensitivity", "--out", str(out)], cache=model_cache) == 0
    summary = json.loads((out / "summary.json").read_text())
    block, page = summary["meta_regression"], (out / "report.html").read_text()
    assert set(block) >= {"log_n", "year", "predictions", "curve", "confounders"}
    assert "Meta-regression of this analysis" in page and (out / "figures" / "funnel.png").is_file()
    for name in ("log_n", "year"):
        assert f'data-key="meta_regression.{name}.p_negative">{block[name]["p_negative"]:.3f}' in page
        assert block[name]["label"] in page
    for sentence in block["confounders"]:
        assert str(escape(sentence)) in page
    # the pooled estimate is a report at the covariates' centre, and the headline says so
    headline = page.split('id="headline"', 1)[1].split("</p>", 1)[0]
    assert "for a report at the average of its covariates</strong> (report size (log n), publication year;" in headline
    assert "<strong>average over reports</strong>" not in headline
