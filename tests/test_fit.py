"""`python -m analysis.fit` end to end: outputs, the convergence gate, reproducibility, safe writes."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis import fit
from analysis.config import PROJECT_ROOT
from models import sequential

SUMMARY_KEYS = {"config", "data_sha256", "outcome", "model", "pooled", "predictive", "reports", "diagnostics"}


def test_primary_analysis_writes_every_output(primary_run):
    code, out = primary_run
    assert code == fit.EXIT_OK
    assert {p.name for p in out.iterdir()} == {
        "posterior.nc", "summary.json", "summary.csv", "diagnostics.csv", "config.json", "run.json",
        "posterior_naloxone_joint.nc", "posterior_graded.nc", "sensitivity.csv", "figures", "report.html",
    }
    figures = ("borrowing_update", "borrowing_sweep", "map_prior_fit", "forest", "prior_posterior", "trace", "rank",
               "energy", "khat", "loo_pit", "predictive_intervals", "predictive_statistics", "funnel", "cumulative",
               "sensitivity_forest", "sensitivity_tornado", "graded", "risk_of_bias", "prisma", "time_to_response")
    assert {p.name for p in (out / "figures").iterdir()} == {f"{name}.{ext}" for name in figures for ext in ("png", "svg")}
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert (summary["config"], summary["outcome"], summary["model"]) == ("default", "any_response", "beta_binomial")
    assert summary["status"] == "passed" and summary["diagnostics"]["passed"]
    for block in ("pooled", "predictive"):
        assert {"mean", "median", "ci95"} <= summary[block].keys()
        lo, hi = summary[block]["ci95"]
        assert 0 <= lo < summary[block]["median"] < hi <= 1
    assert (summary["evidence"]["reports"], summary["evidence"]["patients"], summary["evidence"]["responders"]) == (12, 43, 36)
    assert set(summary["reports"]) == set(pd.read_csv(out / "summary.csv")["report_id"])
    graded = xr.open_datatree(out / "posterior_graded.nc")["posterior"]  # labelled for a reader of the file
    assert list(graded["stage"].values) == list(sequential.STAGES) and list(graded["pair"].values) == list(sequential.PAIRS)


def test_summary_numbers_are_the_posterior_file_numbers(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    idata = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    posterior = idata["posterior"]
    assert summary["pooled"]["mean"] == pytest.approx(float(posterior["pooled"].mean()), abs=1e-6)
    # θ for a new report is summarised from the draws' exact conditional distributions (Rao-Blackwellised).
    from analysis.intervals import describe_predictive
    from models import FAMILIES
    assert summary["predictive"] == describe_predictive(FAMILIES["beta_binomial"], posterior.to_dataset())
    theta = posterior["theta"].sel(report="Series14_Menta2024")
    assert summary["reports"]["Series14_Menta2024"]["mean"] == pytest.approx(float(theta.mean()), abs=1e-6)
    assert {"prior", "prior_predictive", "posterior_predictive", "observed_data", "sample_stats"} <= set(idata.children)
    np.testing.assert_array_equal(idata["observed_data"]["y"].values, [summary["reports"][r]["y"] for r in idata["observed_data"]["report"].values])


def test_shrinkage_pulls_the_negative_series_toward_the_pool(primary_run):
    _, out = primary_run
    table = pd.read_csv(out / "summary.csv").set_index("report_id")
    series = table.loc["Series14_Menta2024"]
    assert series.raw_proportion < series.theta_mean < json.loads((out / "summary.json").read_text())["pooled"]["mean"]


def test_another_seed_gives_other_draws(primary_run, model_cache, tmp_path):
    """(Same seed, same numbers: see test_the_command_runs_as_a_fresh_process_with_the_same_numbers.)"""
    _, first = primary_run
    assert fit.main(["--out", str(tmp_path / "other"), "--seed", "7", "--no-sensitivity"], cache=model_cache) == fit.EXIT_OK
    other = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert other["pooled"] != json.loads((first / "summary.json").read_text())["pooled"]


def test_a_run_that_fails_midway_leaves_the_previous_output_intact(model_cache, tmp_path, monkeypatch, primary_run, capsys):
    _, good = primary_run
    out = tmp_path / "default"
    shutil.copytree(good, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"}

    def broken_csv(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_csv)
    assert fit.main(["--out", str(out), "--seed", "99", "--no-sensitivity"], cache=model_cache) == fit.EXIT_WRITE_FAILED
    err = capsys.readouterr().err
    assert "error: the run could not be completed (disk full)" in err and "Traceback" not in err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["default"]  # no staging directory left behind


SWEEP_KEYS = ("sensitivity", "bias", "grade")
"""The parts of summary.json that depend on the sensitivity sweep (skipped by --no-sensitivity)."""


def test_the_command_runs_as_a_fresh_process_with_the_same_numbers(tmp_path, primary_run):
    """A fresh process (its own programs, loaded or built) reproduces every number of the in-session run
    that does not need the sweep: results do not depend on the process or on which fit prepared the
    sampler. (A cold and a warm cache give byte-identical summaries too: tests/test_sampling.py.)"""
    run = subprocess.run(
        [sys.executable, "-m", "analysis.fit", "--out", str(tmp_path / "cli"), "--no-sensitivity"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "pooled probability of any response" in run.stdout
    _, in_session = primary_run
    fresh = json.loads((tmp_path / "cli" / "summary.json").read_text())
    session = json.loads((in_session / "summary.json").read_text())
    assert {k: v for k, v in fresh.items() if k not in SWEEP_KEYS} == {k: v for k, v in session.items() if k not in SWEEP_KEYS}
    assert fresh["sensitivity"]["status"] == "not run"


def _interval(estimate: dict, digits: int = 2) -> str:
    return f"{estimate['ci95'][0]:.{digits}f} to {estimate['ci95'][1]:.{digits}f}"


def readme_phrases(summary: dict) -> list[str]:
    """The phrases of the README's opening section, each formatted from a run's summary document."""
    evidence, pooled, predictive = summary["evidence"], summary["pooled"], summary["predictive"]
    crude, scenarios, small = summary["bias"]["crude"], summary["bias"]["scenarios"], summary["bias"]["small_study"]
    by_size = {p["n"]: p["mean"] for p in small["predictions"]}
    graded, loss, arm = summary["graded"], summary["durability"]["loss_on_treatment"], summary["naloxone"]
    lows = [s["pooled"]["mean"] for s in scenarios] + [pooled["mean"]]

    def stage(name: str) -> str:
        return f"{graded[name]['pooled']['mean']:.2f} ({_interval(graded[name]['pooled'])})"

    return [
        f"({evidence['reports']} naltrexone reports, {evidence['patients']} patients, {evidence['responders']} "
        "with any clinical response",
        f"**{crude['y']} of {crude['n']} = {crude['proportion']:.2f} (exact 95% interval {_interval(crude)})**",
        f"**{pooled['mean']:.2f} (95% credible interval {_interval(pooled)})**",
        f"**{predictive['mean']:.2f} on average, with a 95% interval of {_interval(predictive)}**",
        f"every all-responder report has at most {evidence['all_responder_max_n']} patients",
        ", ".join(f"**{s['pooled']['mean']:.2f} ({_interval(s['pooled'])})**" for s in scenarios[:-1])
        + f" or **{scenarios[-1]['pooled']['mean']:.2f} ({_interval(scenarios[-1]['pooled'])})**",
        f"predicts {by_size[1]:.2f} for a report of one patient and {by_size[14]:.2f} for a report of 14 "
        f"(P(slope < 0) = {small['log_n']['p_negative']:.2f})",
        f"the {min(lows):.2f} to {max(lows):.2f} range of these scenarios",
        f"marked response {stage('marked')}, complete clearance {stage('complete')}, response still present at the "
        f"last on-treatment follow-up {stage('sustained')}",
        f"{loss['lost']} of the {loss['responders_graded']} responders in the reports that graded durability",
        f"one report, {arm['y']} of {arm['n']} in complete remission",
        f"**{arm['unborrowed']['mean']:.2f} (95% interval {_interval(arm['unborrowed'])})**",
        f"**{arm['mean']:.2f} (95% credible interval {_interval(arm)})**",
        f"worth about {round(arm['robust_prior_ess']['moment'])} patients after robustification",
        f"Adverse events were assessed in {summary['safety']['assessed_patients']} of {evidence['patients']} "
        f"patients, none recorded: compatible with a risk of up to {summary['safety']['ci95'][1]:.0%}",
    ]


def test_readme_headline_is_the_primary_result(primary_run):
    """Every number of the README's opening section is the default run's (its last sentence says so)."""
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    missing = [phrase for phrase in readme_phrases(summary) if phrase not in readme]
    assert not missing, missing
    # the words around the numbers
    assert [s["weight"] for s in summary["bias"]["scenarios"]] == [0.5, 0.25, 0.1]  # "half, a quarter or a tenth"
    assert {o["certainty"] for o in summary["grade"].values()} == {"very low"}  # "very low for every outcome"
    assert summary["safety"]["patients_with_events"] == 0  # "none recorded"
    sizes = sorted((r["n"] for r in summary["reports"].values()), reverse=True)  # "the two largest series"
    assert sorted(r["n"] for r in summary["evidence"]["reports_with_nonresponder"]) == sorted(sizes[:2])
