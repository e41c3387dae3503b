"""The "next report" map against exact answers of its own: every updated estimate equals the quadrature
posterior of the data with that report appended (a fresh grid, found and refined from scratch)."""

import json
import re
import types

import numpy as np
import pytest
from markupsafe import Markup

from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import load_config
from analysis.inputs.evidence import BinomialData
from analysis.report.format import format_number, lookup
from analysis.report.prose.sections import next_report as sentence
from analysis.steps import estimates as est
from analysis.steps import grade, next_report, primary
from models.families import FAMILIES, model_spec

TOLERANCE = 5e-5
"""Two grids' numerical error: each grid's checked summaries are settled to 2e-5."""
PAIRS = [(1, 0), (1, 1), (7, 3), (20, 10), (40, 0), (40, 40)]


def _grid(cache, config, data):
    family = FAMILIES[config.model.family]
    reports = primary.model_reports(config, data)
    return primary.exact(cache, family, model_spec(config.model.family, reports, config.model.prior)), reports


def _map(cache, config, data):
    """The map of `data` from its grid (the primary analysis without its NUTS fit, which the map does not use)."""
    grid, reports = _grid(cache, config, data)
    stand_in = types.SimpleNamespace(exact=grid, reports_input=reports)
    return next_report.analyse(types.SimpleNamespace(config=config, data=data), stand_in, cache), grid


def _appended(data: BinomialData, y: int, n: int, series: int = 1) -> BinomialData:
    return BinomialData(data.report_ids + tuple(f"new{k}" for k in range(series)), np.append(data.n, [n] * series),
                        np.append(data.y, [y] * series), data.outcome, data.drug)


def _fresh(cache, config, data, y, n, series=1) -> dict:
    """The estimates the map gives for a report, from a fresh grid of the data with it appended."""
    family = FAMILIES[config.model.family]
    grid, _ = _grid(cache, config, _appended(data, y, n, series))
    population = primary.pooled_and_predictive(family, grid)
    patients = int(data.n.sum()) + series * n
    settings = config.grade
    return {"pooled_mean": population.pooled.mean, "pooled_lo": population.pooled.lo,
            "predictive_lo": population.predictive.lo,
            "heterogeneity": grid.grid.expectation(family.heterogeneity_sd(grid.values)),
            "crude": (int(data.y.sum()) + series * y) / patients,
            "imprecision": grade.imprecision(population.pooled.interval, patients, settings.decision_threshold,
                                             settings).judgement}


@pytest.fixture(scope="module")
def shipped(model_cache):
    config = load_config()
    data = load_inputs(config).data
    result, grid = _map(model_cache, config, data)
    return config, data, result, grid


@pytest.mark.parametrize("n, y", PAIRS)
def test_the_map_is_the_posterior_with_the_report_appended(model_cache, shipped, n, y):
    config, data, result, _ = shipped
    expected = _fresh(model_cache, config, data, y, n)
    for name, value in expected.items():
        got = result.map[name][str(n)][y]
        if isinstance(value, str):
            assert got == value, name
        else:
            assert got == pytest.approx(value, abs=TOLERANCE), name


def test_more_responders_never_lower_the_average_or_its_bound(shipped):
    _, _, result, _ = shipped
    for n in range(1, result.max_n + 1):
        for name in ("pooled_mean", "pooled_lo", "crude"):
            assert np.all(np.diff(result.map[name][str(n)]) > 0), (name, n)


def test_no_new_report_gives_the_current_answer(shipped):
    config, data, result, grid = shipped
    family = FAMILIES[config.model.family]
    now = primary.exact_population(family, grid)
    current = result.current
    assert (current.series, current.n, current.y) == (0, 0, 0)
    assert current.pooled_mean == pytest.approx(now.pooled.mean, abs=1e-6)
    assert current.pooled_ci95 == pytest.approx(now.pooled.interval, abs=1e-6)
    assert current.predictive_lo == pytest.approx(now.predictive.lo, abs=1e-6)
    assert current.heterogeneity == pytest.approx(now.heterogeneity.mean, abs=1e-6)
    assert current.crude == data.y.sum() / data.n.sum()
    assert current.imprecision == grade.imprecision(now.pooled.interval, int(data.n.sum()),
                                                    config.grade.decision_threshold, config.grade).judgement
    assert result.grid == "primary"


def test_three_series_are_three_reports(model_cache, shipped):
    config, data, result, _ = shipped
    three = result.examples[1]
    assert (three.series, three.n, three.y) == (3, next_report.EXAMPLE_N, next_report.EXAMPLE_N // 2)
    expected = _fresh(model_cache, config, data, three.y, three.n, series=3)
    assert three.pooled_mean == pytest.approx(expected["pooled_mean"], abs=TOLERANCE)
    assert three.predictive_lo == pytest.approx(expected["predictive_lo"], abs=TOLERANCE)
    assert three.crude == pytest.approx(expected["crude"]) and three.imprecision == expected["imprecision"]


def test_the_sentence_prints_the_map_numbers(shipped):
    """On the shipped data no series of up to 40 takes the average below 0.5, whatever its outcome."""
    _, _, result, _ = shipped
    s = {"next_report": json.loads(json.dumps(result.to_dict()))}
    lowest = min(v for row in result.map["pooled_mean"].values() for v in row)
    assert result.lowest.pooled_mean == lowest and (result.lowest.n, result.lowest.y) == (result.max_n, 0)
    assert result.below_threshold is None and lowest > result.threshold
    text = sentence(s)
    assert f"below {format_number(lowest, 2)}" in re.sub(r"<[^>]+>", "", text)
    for key, shown in re.findall(r'data-key="([^"]+)">([^<]*)<', text):
        value = lookup(s, key)
        decimals = len(shown.split(".")[1]) if "." in shown else 0
        assert shown == (value if isinstance(value, str) else format_number(value, decimals)), key
    assert sentence({}) == Markup("")


def test_a_report_that_moves_the_posterior_off_the_grid_gets_a_wider_grid(model_cache):
    """Ten homogeneous series: 40 new patients none of whom responded move the posterior beyond the
    primary grid's box, so the map is computed on a grid that holds the extreme updates."""
    config = load_config()
    data = BinomialData(tuple(f"r{i}" for i in range(10)), np.full(10, 10), np.full(10, 9), "any_response",
                        "naltrexone")
    result, _ = _map(model_cache, config, data)
    assert result.grid == "widened"
    for n, y in [(40, 0), (20, 10)]:
        expected = _fresh(model_cache, config, data, y, n)
        for name in ("pooled_mean", "pooled_lo", "predictive_lo"):
            assert result.map[name][str(n)][y] == pytest.approx(expected[name], abs=TOLERANCE), (name, n, y)


def test_a_new_report_is_published_as_the_pooled_reports_are(model_cache):
    """Under selective publication the new report's likelihood carries the selection term too."""
    config = load_config(model={"publication": {"mechanism": "all_responders", "weight": 0.5}})
    data = BinomialData(tuple(f"r{i}" for i in range(4)), np.array([3, 4, 1, 6]), np.array([3, 2, 1, 5]),
                        "any_response", "naltrexone")
    result, _ = _map(model_cache, config, data)
    for n, y in [(5, 5), (5, 2), (1, 0)]:
        expected = _fresh(model_cache, config, data, y, n)
        for name in ("pooled_mean", "pooled_lo", "predictive_lo"):
            assert result.map[name][str(n)][y] == pytest.approx(expected[name], abs=TOLERANCE), (name, n, y)


def test_the_figure_draws_both_maps(shipped):
    from analysis.report.figures.next_report import next_report_map

    _, _, result, _ = shipped
    figure = next_report_map({"next_report": json.loads(json.dumps(result.to_dict()))})
    gids = {artist.get_gid() for ax in figure.axes for artist in ax.get_children()}
    assert {"map:pooled_mean", "map:predictive_lo", "example"} <= gids
    assert figure.get_size_inches()[0] <= 7.5
