"""`python -m analysis.fit` end to end: its outputs, their agreement, reproducibility, the README's numbers."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from analysis import cli, fit
from analysis.inputs.config import PROJECT_ROOT
from analysis.report.format import format_number
from models import sequential

OUTPUTS = {"posterior.nc", "posterior_graded.nc", "posterior_naloxone_joint.nc", "summary.json", "summary.csv",
           "diagnostics.csv", "sensitivity.csv", "config.json", "run.json", "run.log", "figures", "report.html",
           "clinician.html", ".hhd-output"}
FIGURES = {"forest", "icon_array", "trace", "rank", "energy", "prior_posterior", "khat", "loo_pit", "psense",
           "tipping", "omega", "funnel", "cumulative", "graded", "missingness", "sensitivity_tornado",
           "sensitivity_forest", "borrowing_update", "borrowing_sweep", "map_fit", "risk_of_bias", "prisma",
           "time_to_response", "operating", "assurance"}


def test_primary_analysis_writes_every_output(primary_run):
    code, out = primary_run
    assert code == cli.EXIT_OK
    assert {p.name for p in out.iterdir()} >= OUTPUTS
    assert {p.stem for p in (out / "figures").iterdir()} >= FIGURES
    assert not list((out / "figures").glob("*.svg"))  # SVGs only with --svg
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["config"], summary["outcome"], summary["model"]) == ("default", "any_response", "beta_binomial")
    assert summary["status"] == "passed" and summary["diagnostics"]["passed"]
    assert (summary["evidence"]["reports"], summary["evidence"]["patients"], summary["evidence"]["responders"]) == (12, 43, 36)
    assert set(summary["reports"]) == set(pd.read_csv(out / "summary.csv")["report_id"])
    graded = xr.open_datatree(out / "posterior_graded.nc")["posterior"]  # labelled for a reader of the file
    assert list(graded["stage"].values) == list(sequential.STAGES)
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    assert set(diagnostics["fit"]) == {"primary", "graded", "joint"} and diagnostics["passed"].all()


def test_the_exact_answer_and_its_nuts_cross_check_agree(primary_run):
    """The primary numbers are exact (quadrature); the NUTS draws in posterior.nc agree within their
    Monte Carlo error (4 standard errors)."""
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "quadrature" and summary["pooled"]["method"] == "exact"
    posterior = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")["posterior"]
    draws = posterior["pooled"].values.ravel()
    ess = summary["diagnostics"]["ess_bulk_min"]
    assert abs(draws.mean() - summary["pooled"]["mean"]) < 4 * draws.std() / np.sqrt(ess)
    idata = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")
    np.testing.assert_array_equal(idata["observed_data"]["y"].values,
                                  [summary["reports"][r]["y"] for r in idata["observed_data"]["report"].values])


def test_shrinkage_pulls_the_negative_series_toward_the_pool(primary_run):
    _, out = primary_run
    table = pd.read_csv(out / "summary.csv").set_index("report_id")
    series = table.loc["Series14_Menta2024"]
    pooled = json.loads((out / "summary.json").read_text())["pooled"]["mean"]
    assert series.y / series.n < series.theta_mean < pooled


def test_the_graded_model_fitted_beside_the_other_steps_gives_the_numbers_it_gives_alone(primary_run, model_cache):
    """The run fits the graded-outcome model in a second thread while it computes the rest; fitted alone,
    with the same data, config and seed, it gives the same numbers (its seed is its own, nothing it reads
    is changed by the other steps)."""
    from analysis.inputs.bundle import load_inputs
    from analysis.inputs.config import DEFAULT_CONFIG, load_config
    from analysis.results import to_plain
    from analysis.steps import graded

    _, out = primary_run
    alone = graded.analyse(load_inputs(load_config(DEFAULT_CONFIG)), model_cache)
    assert to_plain(alone) == json.loads((out / "summary.json").read_text())["graded"]


def _printed(run_dir) -> list[tuple[str, str, bool]]:
    """Every number the pages print, with its summary.json key and whether it is per hundred, in order."""
    numbers = []
    for page in ("report.html", "clinician.html"):
        numbers += [(key, text, bool(scale)) for key, scale, text in
                    re.findall(r'data-key="([^"]+)"(?: data-scale="(\d+)")?>([^<]*)<', (run_dir / page).read_text())]
    return numbers


COMPUTATION = ("seed", "config_sha256", "diagnostics.", "graded.diagnostics.", "target.joint_convergence.",
               "cross_check.", "graded.cross_check.", "loo.psis.", "target.joint_check.", "sensitivity.psense.")
"""Numbers about the run's own draws (convergence diagnostics, the NUTS cross-checks of exact numbers, ArviZ's
power-scaling diagnostic of the draws, the seed itself): they describe the computation, not the data, and
rightly change with the seed."""


def test_another_seed_prints_the_same_numbers(primary_run, model_cache, tmp_path):
    """Same data and config, another seed: other draws, the same printed answer. Every printed number is
    computed by integration (exact on a grid, or importance sampling on fixed quasi-random points: the
    graded-outcome model, the logit-normal meta-regression), so every one is identical, except those that
    describe the draws themselves (`COMPUTATION`). The run draws no figure (`--no-figures`): its pages say so
    at the top and print the numbers of a run with figures."""
    _, first = primary_run
    assert fit.main(["--out", str(tmp_path / "other"), "--seed", "7", "--no-figures"], cache=model_cache) == cli.EXIT_OK
    assert not (tmp_path / "other" / "figures").exists()
    page = (tmp_path / "other" / "report.html").read_text(encoding="utf-8")
    assert page.index("Draft: no figures") < page.index('id="bottom-line"') and "<img" not in page
    assert "Draft: no figures" in (tmp_path / "other" / "clinician.html").read_text(encoding="utf-8")
    assert "Draft: no figures" not in (first / "report.html").read_text(encoding="utf-8")
    other = json.loads((tmp_path / "other" / "summary.json").read_text())
    session = json.loads((first / "summary.json").read_text())
    assert other["graded"]["diagnostics"] != session["graded"]["diagnostics"]  # other draws
    assert other["pooled"] == session["pooled"]  # exact
    for outcome in ("any", "marked", "complete", "sustained"):  # the same fixed points
        assert other["graded"][outcome] == session["graded"][outcome], outcome
    assert other["graded"]["missingness"] == session["graded"]["missingness"]
    for check in ("prior", "posterior_new_reports"):  # exact on the grid, the rank correlation by a fixed rule
        assert other["predictive_checks"][check] == session["predictive_checks"][check], check
    mine, theirs = _printed(first), _printed(tmp_path / "other")
    assert [key for key, *_ in mine] == [key for key, *_ in theirs]
    moved = [(key, a, b) for (key, a, _), (_, b, _) in zip(mine, theirs) if a != b and not key.startswith(COMPUTATION)]
    assert not moved, f"printed differently at another seed: {moved}"


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory):
    """The command as a fresh process, `--no-sensitivity --svg` (one run serves the two tests that read it)."""
    out = tmp_path_factory.mktemp("fresh") / "cli"
    run = subprocess.run([sys.executable, "-m", "analysis.fit", "--out", str(out), "--no-sensitivity", "--svg"],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=900)
    return run, out


def test_the_command_runs_as_a_fresh_process_with_the_same_numbers(fresh_run, primary_run):
    """A fresh process reproduces every number of the in-session run that does not need the sweep, and
    prints nothing on stderr but its own lines (third-party warnings go to run.log)."""
    run, out = fresh_run
    assert run.returncode == 0, run.stderr
    assert all(re.match(r"(default: |warning: |draft: )", line) for line in run.stderr.splitlines()), run.stderr
    assert "any response with naltrexone" in run.stdout
    _, in_session = primary_run
    fresh = json.loads((out / "summary.json").read_text())
    session = json.loads((in_session / "summary.json").read_text())
    sweep_dependent = ("sensitivity",)
    assert {k: v for k, v in fresh.items() if k not in sweep_dependent} == \
        {k: v for k, v in session.items() if k not in sweep_dependent}
    assert fresh["sensitivity"]["status"] == "not run"


def test_svg_figures_on_request(fresh_run, primary_run):
    """--svg writes each figure as SVG too (text kept as text); without it, none."""
    run, out = fresh_run
    assert run.returncode == 0, run.stderr
    figures = out / "figures"
    assert {p.stem for p in figures.glob("*.svg")} == {p.stem for p in figures.glob("*.png")}
    assert not list((primary_run[1] / "figures").glob("*.svg"))
    assert "<text" in (figures / "forest.svg").read_text()


def _estimate(block: dict) -> str:
    lo, hi = block["ci95"]
    return f"{format_number(block['mean'], 2)} (95% {format_number(lo, 2)} to {format_number(hi, 2)})"


def readme_phrases(summary: dict) -> list[str]:
    """The numbers of the README's opening section, each formatted from a run's summary document."""
    ev, crude = summary["evidence"], summary["comparators"]["crude"]
    bias, target, safety = summary["bias"], summary["target"], summary["safety"]
    scenarios = {round(1 / s["weight"]): s for s in bias["scenarios"] if s["mechanism"] == "all_responders"}
    tipping = next(t for t in bias["tipping"] if t["quantity"] == "mean" and t["threshold"] == 0.75)
    return [
        f"{ev['reports']} naltrexone reports, {ev['patients']} patients, {ev['responders']} with any response",
        f"crude rate {crude['y']} of {crude['n']}",
        f"**{_estimate(summary['pooled'])}**",
        f"predictive interval for a new clinic's rate {format_number(summary['predictive']['ci95'][0], 2)} to "
        f"{format_number(summary['predictive']['ci95'][1], 2)}",
        f"**{_estimate(bias['averaged']['pooled'])}**",
        f"{format_number(scenarios[2]['pooled']['mean'], 2)}, {format_number(scenarios[4]['pooled']['mean'], 2)} "
        f"and {format_number(scenarios[10]['pooled']['mean'], 2)}",
        f"{format_number(tipping['times'], 1)} times less likely",
        f"{target['target_drug']}: {target['y']} of {target['n']}",
        f"**{_estimate(target['posterior'])}**",
        f"looked for in {safety['assessed_patients']} of {ev['patients']} patients",
    ]


def test_readme_headline_is_the_primary_result(primary_run):
    """Every number of the README's opening section is the default run's, as the pages print it."""
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    readme = " ".join((PROJECT_ROOT / "README.md").read_text().split())
    missing = [phrase for phrase in readme_phrases(summary) if phrase not in readme]
    assert not missing, missing
    assert {o["certainty"] for o in summary["grade"].values()} == {"very low"}  # "very low for every outcome"


@pytest.mark.parametrize("argv, message", [
    (["--seed", str(2**64)], "is outside 0 to 2**63 - 1"),
    (["--seed", "x"], "is not a whole number"),
    (["--config", "missing.toml"], "missing.toml"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--svg", "--no-figures"], "--svg asks for figures that --no-figures leaves out"),
])
def test_bad_options_get_one_line_and_exit_2(argv, message, capsys):
    try:
        status = fit.main(argv)
    except SystemExit as stop:  # argparse's own checks
        status = stop.code
    assert status == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: ")


FIXED_NAMES = {
    "pooled": ("mean", "median", "sd", "ci95", "method"), "predictive": ("mean", "median", "sd", "ci95", "method"),
    "comparators.crude": ("y", "n", "proportion", "ci95"), "heterogeneity": ("posterior", "prior"),
    "bias": ("scenarios", "tipping", "averaged", "omega_min"), "small_study": ("slopes", "predictions"),
    "graded.marked": ("pooled",), "graded.complete": ("pooled",), "graded.sustained": ("pooled",),
    "safety": ("assessed_patients", "patients_with_events", "ci95"), "design": ("single_arm",),
    "target": ("target_drug", "posterior", "unborrowed"),
}
"""The names of summary.json the README promises to keep (its "Fixed names" paragraph)."""


def test_the_fixed_names_of_summary_json_are_documented_and_present(primary_run):
    _, out = primary_run
    summary = json.loads((out / "summary.json").read_text())
    readme = (PROJECT_ROOT / "README.md").read_text()
    paragraph = readme[readme.index("**Fixed names**"):].split("\n\n", 1)[0]
    for block, names in FIXED_NAMES.items():
        value = summary
        for part in block.split("."):
            value = value[part]
        assert set(names) <= set(value), block
        named = f"`{block}`" in paragraph or all(f"`{part}`" in paragraph for part in block.split("."))
        assert named and all(f"`{name}`" in paragraph for name in names), block
    for report in summary["reports"].values():
        assert {"n", "y", "mean", "ci95"} <= set(report)
    for row in summary["grade"].values():
        assert {"certainty", "domains"} <= set(row)
