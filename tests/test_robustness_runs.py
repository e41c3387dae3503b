"""Runs that are interrupted, and data at the edges of what the model can learn."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scipy import stats

from analysis import fit, outputs
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import PROJECT_ROOT, load_config
from analysis.inputs.evidence import BinomialData
from analysis.steps import primary
from exact_posteriors import inputs_for
from mc import assert_matches

# --- interrupted runs --------------------------------------------------------------------------------


def _start(out):
    return subprocess.Popen([sys.executable, "-m", "analysis.fit", "--out", str(out), "--force", "--no-sensitivity"],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_killed_run_leaves_the_previous_output_intact(tmp_path, primary_run):
    """Two real runs, one sent SIGINT (Ctrl-C) and one SIGTERM, each while it writes its outputs (the
    moment a naive writer would leave a half-written report): each exits with its own status and a
    one-line message, the earlier outputs are byte for byte as they were, and no staging directory is left."""
    _, good = primary_run
    runs = {}
    for name, signum in (("sigint", signal.SIGINT), ("sigterm", signal.SIGTERM)):
        out = tmp_path / name / "default"
        shutil.copytree(good, out)
        runs[name] = (out, _snapshot(out), signum, _start(out))

    pending, deadline = dict(runs), time.monotonic() + 600
    while pending and time.monotonic() < deadline:
        for name, (out, _, signum, process) in list(pending.items()):
            if any(p.name.startswith(".default.partial-") for p in out.parent.iterdir()):
                process.send_signal(signum)
                del pending[name]
            elif process.poll() is not None:
                pytest.fail(f"{name}: the run ended before its outputs were being written")
        time.sleep(0.02)
    assert not pending, "the runs never reached the output stage"

    for out, before, signum, process in runs.values():
        _, stderr = process.communicate(timeout=120)
        expected = outputs.EXIT_INTERRUPTED if signum == signal.SIGINT else outputs.EXIT_TERMINATED
        assert process.returncode == expected, stderr
        assert "Traceback" not in stderr and f"{out} is as it was" in stderr.splitlines()[-1]
        assert _snapshot(out) == before
        assert [p.name for p in out.parent.iterdir()] == ["default"]


# --- edge-case data ----------------------------------------------------------------------------------


def _data(y, n):
    n = np.asarray(n, dtype=np.int64)
    return BinomialData(tuple(f"R{i}" for i in range(len(n))), n, np.asarray(y, dtype=np.int64), "any_response",
                        "naltrexone")


EDGE_CASES = {
    "all respond": (_data([1, 1, 3, 2, 14], [1, 1, 3, 2, 14]), "every patient responded"),
    "none respond": (_data([0, 0, 0, 0, 0], [1, 1, 3, 2, 14]), "no patient responded"),
    "one report": (_data([8], [14]), "only one report"),
    "single patients only": (_data([1, 1, 1, 0, 1, 1, 0, 1], [1] * 8), "every report has a single patient"),
    "one series among single patients": (_data([1, 1, 0, 8], [1, 1, 1, 14]), "only one report has more than one"),
}


@pytest.fixture(scope="module")
def edge_results(model_cache):
    return {case: primary.analyse(inputs_for(load_config(), data), model_cache) for case, (data, _) in EDGE_CASES.items()}


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_case_data_are_analysed_with_a_warning_about_what_cannot_be_learnt(case, edge_results):
    """The whole primary step (exact posterior, NUTS beside it, leave-one-out, predictive checks) runs on
    counts at the edges, the NUTS draws agree with the quadrature, and the data say what they cannot teach."""
    data, warning = EDGE_CASES[case]
    assert any(warning in w for w in data.what_cannot_be_learnt())
    result = edge_results[case]
    assert result.method == "quadrature" and result.convergence.passed, result.convergence.failures
    assert result.cross_check.largest_in_mcse <= 4, result.cross_check
    pooled = result.pooled
    assert 0 < pooled.lo < pooled.mean < pooled.hi < 1
    assert set(result.reports) == set(data.report_ids)
    if case == "all respond":
        assert pooled.mean > 0.8
    if case == "none respond":
        assert pooled.mean < 0.2
    if case == "one report":
        assert np.isnan(result.loo.elpd_loo)  # nothing is left to predict it from
    else:
        assert np.all(np.isfinite(list(result.loo.pointwise.values())))


def test_single_patient_reports_leave_heterogeneity_at_its_prior(edge_results):
    """With one patient per report the likelihood does not involve κ: u's posterior is its prior,
    HalfNormal(0.5): mean 0.5·√(2/π), median and 95% interval its quantiles, from the grid to 1e-4 (its
    error on u is 2e-5 at the resolution it accepts: u's marginal does not vanish at u = 0, the folded
    axis's end) and from the draws within 4 Monte Carlo standard errors."""
    result = edge_results["single patients only"]
    prior = stats.halfnorm(scale=0.5)
    u = result.hyperparameters["u"]
    assert u.mean == pytest.approx(prior.mean(), abs=1e-4)
    for ours, q in ((u.lo, 0.025), (u.median, 0.5), (u.hi, 0.975)):
        assert ours == pytest.approx(prior.ppf(q), abs=1e-4), q
    assert_matches(result.idata["posterior"]["u"], prior.mean(), label="u")


@pytest.mark.slow
def test_command_warns_about_a_single_report(tmp_path, model_cache, capsys):
    csv = tmp_path / "one.csv"
    lines = (PROJECT_ROOT / "data" / "reports.csv").read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([lines[0], *[line for line in lines[1:] if line.startswith("Series14_Menta2024,")]]) + "\n")
    assert fit.main(["--data", str(csv), "--out", str(tmp_path / "out"), "--no-sensitivity"],
                    cache=model_cache) == fit.EXIT_OK
    assert "warning: only one report" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["evidence"]["reports"] == 1 and "only one report" in summary["data_warnings"][0]
    assert "What these data cannot tell the model" in (tmp_path / "out" / "report.html").read_text()


def test_the_shipped_data_raise_no_warning():
    assert load_inputs(load_config()).data.what_cannot_be_learnt() == []


def _interrupt():
    raise KeyboardInterrupt


def _disk_full():
    raise OSError("No space left on device")


def _sigterm():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler raises before this ends
    return 0


@pytest.fixture
def stop_handlers():
    """The commands install their stop handlers for the rest of the process: put the test process's back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    sys.unraisablehook = hook


@pytest.mark.parametrize("work, status, message", [
    (lambda: 7, 7, None),
    (_interrupt, outputs.EXIT_INTERRUPTED, "interrupted: nothing written; OUT is as it was"),
    (_sigterm, outputs.EXIT_TERMINATED, "terminated: nothing written; OUT is as it was"),
    (_disk_full, outputs.EXIT_WRITE_FAILED,
     "error: the run could not be completed (No space left on device); OUT is as it was"),
])
def test_every_command_stops_with_one_line(work, status, message, capsys, stop_handlers):
    """The stop handling `analysis.fit`, `analysis.validate` and `analysis.sensitivity` share."""
    assert outputs.run_to_completion(work, "OUT") == status
    err = capsys.readouterr().err
    assert (message in err and len(err.strip().splitlines()) == 1) if message else err == ""


class _StoppedInFinaliser:
    """Python can run a signal handler inside a finaliser, where the exception it raises is discarded."""

    def __del__(self):
        outputs._on_stop_signal(signal.SIGINT, None)


def test_a_stop_discarded_by_a_finaliser_still_prevents_the_commit(tmp_path, capsys, stop_handlers):
    target = tmp_path / "out"
    target.mkdir()
    (target / "report.html").write_text("earlier good report")

    def work():
        with outputs.atomic_directory(target) as staging:
            (staging / "report.html").write_text("half-written")
            finaliser = _StoppedInFinaliser()
            del finaliser  # the KeyboardInterrupt raised here never reaches this frame
        return 0

    assert outputs.run_to_completion(work, target) == outputs.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert err.strip() == f"interrupted: nothing written; {target} is as it was"  # one line, no traceback
    assert (target / "report.html").read_text() == "earlier good report"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_stop_after_the_outputs_were_swapped_in_says_so(tmp_path, capsys, stop_handlers):
    target = tmp_path / "out"

    def work():
        with outputs.atomic_directory(target) as staging:
            (staging / "report.html").write_text("new report")
        raise KeyboardInterrupt

    assert outputs.run_to_completion(work, target) == outputs.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip() == f"interrupted: after {target} had been written"
    assert (target / "report.html").read_text() == "new report"
