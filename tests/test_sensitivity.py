"""Sensitivity analyses: the variants, the evidence filters, leave-one-out, the selection model, the sweep."""

import tomllib

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

from analysis import sensitivity
from analysis.config import CONFIG_DIR, PROJECT_ROOT, load_config
from analysis.data import BinomialData, Selection, load_evidence, select_counts
from analysis.pipeline import run_analysis
from analysis.executors import LocalExecutor
from mc import assert_matches

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
VARIANTS = sorted(CONFIG_DIR.glob("sens_*.toml"))


@pytest.fixture(scope="module")
def table():
    return load_evidence(REPORTS, outcomes=("any_response", "marked", "complete", "sustained"))


# --- the variant configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", VARIANTS, ids=[p.stem for p in VARIANTS])
def test_every_variant_extends_the_primary_and_changes_something(path):
    document = tomllib.loads(path.read_text())
    assert document["extends"] in ("default.toml", "logit_normal.toml")
    config, primary = load_config(path), load_config()
    assert config.description
    changed = [s for s in ("data", "model", "sampling", "diagnostics", "borrowing") if getattr(config, s) != getattr(primary, s)]
    assert changed, f"{path.name} changes nothing"


def test_every_variant_is_listed_in_the_readme():
    readme = (PROJECT_ROOT / "README.md").read_text()
    for path in VARIANTS:
        assert f"`{path.stem}`" in readme, path.stem


# --- evidence filters --------------------------------------------------------------------------------


def _selected(table, **selection):
    return select_counts(table, "any_response", "naltrexone", Selection(**selection))


def test_series_and_single_patient_filters(table):
    assert set(_selected(table, min_n=2).n) >= {2} and min(_selected(table, min_n=2).n) >= 2
    single = _selected(table, max_n=1)
    assert set(single.n) == {1} and len(single) == 4  # Kollman, Garayar Cantero, Sonthalia, McBride


def test_low_dose_filter_keeps_reports_with_a_stated_dose_at_most_6_25(table):
    low = _selected(table, max_dose_mg=6.25)
    assert set(low.report_ids) == {"Albers2017", "Ibrahim2017", "GarayarCantero2019", "Sonthalia2019", "Moulin2019", "Gavali2024"}


def test_source_level_filters(table):
    no_secondary = _selected(table, exclude_source_levels=("secondary_summary", "secondary_review", "secondary_lay"))
    assert "Series14_Menta2024" not in no_secondary.report_ids and "Kollman2018" not in no_secondary.report_ids
    no_conference = _selected(table, exclude_source_levels=("conference_abstract",))
    assert {"Moulin2019", "Grolleau2020"}.isdisjoint(no_conference.report_ids) and len(no_conference) == 10


def test_worst_case_adds_the_unverified_report_and_counts_missing_outcomes_as_failures(table):
    worst = _selected(table, include_reasons=("exclude_unverified", "exclude_no_outcome"),
                      blank_as_nonresponse=("exclude_no_outcome",))
    by_id = dict(zip(worst.report_ids, zip(worst.y, worst.n)))
    assert by_id["Campbell2018_unverified"] == (1, 1)
    assert by_id["Santoso2024_priorLDN"] == (0, 2) and by_id["BritoCaldeira2023_priorLDN"] == (0, 1)
    assert "Li2017_duplicate" not in by_id  # a duplicate patient is never pooled
    assert (len(worst), int(worst.n.sum()), int(worst.y.sum())) == (15, 47, 37)


def test_leave_one_out_variants_drop_exactly_one_report(table):
    variants = [v for v in sensitivity.discover_variants(None) if v.group == "leave one out"]
    primary = _selected(table)
    assert [v.name for v in variants] == [f"loo_{r}" for r in primary.report_ids]
    for variant in variants:
        config = load_config(variant.path, **variant.overrides)
        left = select_counts(table, "any_response", "naltrexone", config.data.selection())
        assert set(primary.report_ids) - set(left.report_ids) == {variant.name.removeprefix("loo_")}


# --- the publication-bias selection model --------------------------------------------------------------


def _exact_mean_of_mu(successes: int, failures: int, weight: float) -> float:
    """μ ~ Beta(1, 1); each published single-patient report: P(y | pub) = μ^y (ω(1 − μ))^(1−y) / (μ + ω(1 − μ))."""
    def likelihood(mu):
        return mu**successes * (weight * (1 - mu)) ** failures / (mu + weight * (1 - mu)) ** (successes + failures)

    evidence = integrate.quad(likelihood, 0, 1)[0]
    return integrate.quad(lambda mu: mu * likelihood(mu), 0, 1)[0] / evidence


@pytest.mark.parametrize("successes, failures, weight", [(4, 0, 0.25), (3, 1, 0.5), (3, 1, 1.0)])
def test_selection_model_matches_the_exact_answer_for_single_patient_reports(model_cache, successes, failures, weight):
    y = np.array([1] * successes + [0] * failures)
    data = BinomialData(tuple(f"case{i}" for i in range(y.size)), np.ones_like(y), y, "any_response", "naltrexone")
    config = load_config(model={"selection_weight": weight}, sampling={"draws": 2500})
    result = run_analysis(config, data, model_cache)
    assert result.convergence.passed, result.convergence.failures
    exact = _exact_mean_of_mu(successes, failures, weight)
    assert_matches(result.idata["posterior"]["pooled"], exact, label=f"mu (omega={weight})")
    if weight == 1.0:  # no selection: the conjugate answer
        assert exact == pytest.approx((successes + 1) / (successes + failures + 2), abs=1e-9)


def test_publication_bias_lowers_the_estimate_when_successes_are_overrepresented(model_cache):
    data = BinomialData(("a", "b", "c", "d"), np.ones(4, dtype=int), np.ones(4, dtype=int), "any_response", "naltrexone")
    means = [float(run_analysis(load_config(model={"selection_weight": w}), data, model_cache).idata["posterior"]["pooled"].mean())
             for w in (1.0, 0.5, 0.25)]
    assert means[0] > means[1] > means[2]


# --- the sweep ---------------------------------------------------------------------------------------


def test_sweep_compiles_once_per_structure_and_marks_failures(tmp_path):
    variants = [v for v in sensitivity.discover_variants(None) if v.name in ("primary", "loo_Albers2017", "sens_selection_w050")]
    variants.append(sensitivity.Variant("broken", "other", "a config that does not exist", tmp_path / "missing.toml", {}))
    (tmp_path / "empty.csv").write_text("report_id,drug,n_treated,n_any_response\nA,naloxone,2,2\n")
    variants.append(sensitivity.Variant("no_data", "other", "no naltrexone rows", CONFIG_DIR / "default.toml",
                                        {"data": {"path": str(tmp_path / "empty.csv")}}))
    with LocalExecutor(workers=1) as executor:  # a fresh worker process: counts this sweep's compilations only
        table = sensitivity.run_sweep(variants, executor)
    # Three fitted variants and their joint naloxone models: all one structure, compiled once.
    assert executor.programs == 1
    rows = table.set_index("variant")
    assert rows.loc[["primary", "loo_Albers2017", "sens_selection_w050"], "passed"].all()
    assert not rows.loc["broken", "passed"] and "config file not found" in rows.loc["broken", "error"]
    assert not rows.loc["no_data", "passed"] and "no report left" in rows.loc["no_data", "error"]
    assert rows.loc["primary", "pooled_shift"] == 0 and rows.loc["loo_Albers2017", "reports"] == 11


def test_sensitivity_command_writes_its_outputs(tmp_path, model_cache, monkeypatch):
    chosen = ("primary", "logit_normal", "loo_Series14_Menta2024")
    original = sensitivity.discover_variants
    monkeypatch.setattr(sensitivity, "discover_variants", lambda data: [v for v in original(data) if v.name in chosen])
    assert sensitivity.main(["--out", str(tmp_path / "sens"), "--workers", "1"]) == 0
    out = tmp_path / "sens"
    table = pd.read_csv(out / "summary.csv")
    assert list(table["variant"]) == list(chosen)
    assert {"pooled_mean", "pooled_lo", "pooled_hi", "predictive_mean", "naloxone_mean", "passed"} <= set(table.columns)
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "loo_Series14_Menta2024" in html and "<script" not in html
    psense = pd.read_csv(out / "psense.csv")
    assert set(psense["parameter"]) == {"mu", "u"} and {"prior", "likelihood"} <= set(psense.columns)
    assert (out / "figures" / "sensitivity_forest.png").is_file() and (out / "figures" / "sensitivity_forest.svg").is_file()


@pytest.mark.slow
def test_full_sweep_runs_every_variant(tmp_path, model_cache):
    assert sensitivity.main(["--out", str(tmp_path / "sens"), "--workers", "1"]) == 0
    table = pd.read_csv(tmp_path / "sens" / "summary.csv")
    assert len(table) == 2 + len(VARIANTS) + 12 and table["passed"].all()


def test_primary_report_shows_a_sweep_found_beside_it(tmp_path, model_cache):
    from analysis import fit

    (tmp_path / "sensitivity").mkdir()
    pd.DataFrame([{"variant": "loo_Example", "description": "Without Example", "pooled_mean": 0.5, "pooled_lo": 0.4,
                   "pooled_hi": 0.6, "pooled_shift": -0.1, "predictive_mean": 0.5, "predictive_lo": 0.1,
                   "predictive_hi": 0.9, "passed": False}]).to_csv(tmp_path / "sensitivity" / "summary.csv", index=False)
    assert fit.main(["--out", str(tmp_path / "default")], cache=model_cache) == fit.EXIT_OK
    html = (tmp_path / "default" / "report.html").read_text(encoding="utf-8")
    assert 'href="../sensitivity/index.html"' in html
    assert "<td>loo_Example</td><td>Without Example</td>" in html and "FAILED" in html
