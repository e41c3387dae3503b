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

SUMMARY_KEYS = {"config", "data_sha256", "outcome", "model", "pooled", "predictive", "reports", "diagnostics"}


def test_primary_analysis_writes_every_output(primary_run):
    code, out = primary_run
    assert code == fit.EXIT_OK
    assert {p.name for p in out.iterdir()} == {
        "posterior.nc", "summary.json", "summary.csv", "diagnostics.csv", "config.json", "run.json",
        "posterior_naloxone_joint.nc", "figures", "report.html",
    }
    figures = ("borrowing_update", "borrowing_sweep", "map_prior_fit", "forest", "prior_posterior", "trace", "rank",
               "energy", "khat", "loo_pit", "predictive_intervals", "predictive_statistics")
    assert {p.name for p in (out / "figures").iterdir()} == {f"{name}.{ext}" for name in figures for ext in ("png", "svg")}
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert (summary["config"], summary["outcome"], summary["model"]) == ("default", "any_response", "beta_binomial")
    assert summary["status"] == "passed" and summary["diagnostics"]["passed"]
    for block in ("pooled", "predictive"):
        assert {"mean", "median", "ci95"} <= summary[block].keys()
        lo, hi = summary[block]["ci95"]
        assert 0 <= lo < summary[block]["median"] < hi <= 1
    assert summary["evidence"] == {"reports": 12, "patients": 43, "responders": 36}
    assert set(summary["reports"]) == set(pd.read_csv(out / "summary.csv")["report_id"])


def test_summary_numbers_are_the_posterior_file_numbers(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    idata = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    posterior = idata["posterior"]
    assert summary["pooled"]["mean"] == pytest.approx(float(posterior["pooled"].mean()), abs=1e-6)
    lo, hi = np.quantile(posterior["theta_new"].values, [0.025, 0.975])
    assert summary["predictive"]["ci95"] == pytest.approx([lo, hi], abs=1e-6)
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
    assert fit.main(["--out", str(tmp_path / "other"), "--seed", "7"], cache=model_cache) == fit.EXIT_OK
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
    assert fit.main(["--out", str(out), "--seed", "99"], cache=model_cache) == fit.EXIT_WRITE_FAILED
    err = capsys.readouterr().err
    assert "error: the run could not be completed (disk full)" in err and "Traceback" not in err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "run.json"}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["default"]  # no staging directory left behind


def test_the_command_runs_as_a_fresh_process_with_the_same_numbers(tmp_path, primary_run):
    """A fresh process (its own compilation) reproduces the in-session run byte for byte: results do not
    depend on which fit compiled the sampler."""
    run = subprocess.run(
        [sys.executable, "-m", "analysis.fit", "--out", str(tmp_path / "cli")],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "pooled remission probability" in run.stdout
    _, in_session = primary_run
    assert (tmp_path / "cli" / "summary.json").read_bytes() == (in_session / "summary.json").read_bytes()


def test_readme_headline_is_the_primary_result(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    pooled, predictive = summary["pooled"], summary["predictive"]
    assert f"**{pooled['mean']:.2f} (95% credible interval {pooled['ci95'][0]:.2f} to {pooled['ci95'][1]:.2f})**" in readme
    assert f"**{predictive['mean']:.2f} on average, with a 95% interval of {predictive['ci95'][0]:.2f} to {predictive['ci95'][1]:.2f}**" in readme
    arm = summary["naloxone"]
    assert f"**{arm['mean']:.2f} (95% credible interval {arm['ci95'][0]:.2f} to {arm['ci95'][1]:.2f})**" in readme
    assert f"**{arm['mean']:.2f} (95% interval {arm['ci95'][0]:.2f} to {arm['ci95'][1]:.2f})**" in readme
    assert f"about **{round(arm['map_prior_ess']['moment'])} patients**" in readme
    assert f"about **{round(arm['robust_prior_ess']['moment'])} patients' worth**" in readme
