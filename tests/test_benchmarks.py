"""The benchmark script's pieces: its options, its simulated data sets (which the tool must accept as a
user's CSV), its measurement of a process and its tables. Nothing here times the tool: timings depend on
the machine and are printed by `benchmarks/run.py`, never asserted."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from analysis.inputs.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))
from benchmarks import data as simulated  # noqa: E402
from benchmarks import run as bench  # noqa: E402


def test_default_cases_leave_out_the_suite_and_sbc():
    args = bench.parse_args([])
    assert args.cases == [c.name for c in bench.CASES.values() if not c.optional]
    assert "suite" not in args.cases and "sbc" not in args.cases and "scale_5000" in args.cases


def test_options_choose_cases():
    args = bench.parse_args(["--cases", "fit_warm,fit_cold,scale_counts", "--skip-cold", "--sbc", "--repeat", "3"])
    assert args.cases == ["fit_warm", "scale_counts", "sbc"] and args.repeat == 3
    assert bench.parse_args(["--suite"]).cases[-1] == "suite"


@pytest.mark.parametrize("argv", [["--cases", "fit_warm,nonsense"], ["--repeat", "0"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_simulated_reports_look_like_case_reports():
    rows = simulated.simulate(5000)
    n = np.array([r["n_treated"] for r in rows])
    y = np.array([r["n_any_response"] for r in rows])
    assert n.min() >= 1 and n.max() == simulated.LARGEST_SERIES
    assert 0.5 < np.mean(n <= 3) < 0.7  # mostly single cases and small series
    assert np.all((0 <= y) & (y <= n))
    assert abs(y.sum() / n.sum() - simulated.MEAN) < 0.03
    assert simulated.simulate(50) == simulated.simulate(50)  # a fixed seed: the same table on every machine
    assert len({r["report_id"] for r in rows}) == 5000


def test_large_counts_reach_a_million():
    rows = simulated.simulate(12, large_counts=True)
    n = [r["n_treated"] for r in rows]
    assert max(n) == simulated.LARGE_COUNT and min(n) >= simulated.LARGE_COUNT // 2
    assert all(0 <= r["n_any_response"] <= r["n_treated"] for r in rows)


@pytest.mark.parametrize("spec", ["reports:500", "counts:12"])
def test_the_tool_accepts_the_simulated_csv(tmp_path, spec):
    """The checks the command makes before any computation (data, config, output folder) pass."""
    from analysis import fit

    path = bench.prepare_data(spec, tmp_path)
    plan = fit.prepare(fit.parse_args(["--data", str(path), "--no-sensitivity", "--out", str(tmp_path / "out")]))
    expected = int(spec.split(":")[1])
    assert len(plan.inputs.data) == expected and plan.inputs.data.drug == "naltrexone"
    assert plan.inputs.patients is None and plan.inputs.appraisal is None  # no shipped companion files
    assert bench.prepare_data(spec, tmp_path) == path  # written once


def test_measure_reports_status_time_and_peak_memory(tmp_path):
    """A child that holds about 200 MB: the measured peak includes it, from the tree or from getrusage."""
    code = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.5)"
    result = bench.measure([sys.executable, "-c", code], log=tmp_path / "log")
    assert result["status"] == 0 and not result["timed_out"]
    assert result["peak_process_bytes"] > 190 * 2**20 and result["peak_tree_bytes"] > 150 * 2**20
    assert result["wall"] > 0 and result["cpu"] > 0
    failed = bench.measure([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert failed["status"] == 3


def test_a_run_over_its_timeout_is_killed():
    result = bench.measure([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert result["timed_out"] and result["status"] != 0


def test_a_run_reads_the_phases_of_its_run_json(tmp_path):
    """`run_once` takes the phases from run.json and counts what came before the run's own clock as startup."""
    case = bench.Case("fake", "a command writing run.json", ("-c", _FAKE_RUN), "first", 10)
    run = bench.run_once(case, "first 1", tmp_path, tmp_path / "cache", True, None, timeout=60)
    assert run.ok and run.built == 2 and run.phases["compile"] == 0.5
    assert run.phases["startup"] == pytest.approx(run.wall - 0.25)
    assert not (tmp_path / "fake-first1").exists()  # outputs are removed after reading


def test_a_failed_run_keeps_its_output_and_the_traceback_its_log_names(tmp_path):
    log = tmp_path / "tool.log"
    log.write_text("Traceback (most recent call last):\nMemoryError: 8.05 GiB\n")
    code = f"import sys; print('error: unexpected failure; the traceback is in {log}', file=sys.stderr); sys.exit(4)"
    case = bench.Case("fake", "a failing command", ("-c", code), "cold", 10)
    run = bench.run_once(case, "cold 1", tmp_path, tmp_path / "cache", True, None, timeout=60)
    assert not run.ok and run.note == "failed with exit status 4" and run.built is None
    assert any("MemoryError: 8.05 GiB" in line for line in run.details)
    text = bench.format_case(case, [run])
    assert "MemoryError" in text and "no completed run" in text


_FAKE_RUN = """
import json, os, sys
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--out") + 1]); out.mkdir(parents=True)
assert os.environ["HHD_CACHE_DIR"].endswith("cache") and "base_compiledir=" in os.environ["PYTENSOR_FLAGS"]
(out / "run.json").write_text(json.dumps({"wall_time_seconds": 0.25, "compilations": 2,
                                          "phase_seconds": {"compile": 0.5, "sample": 0.1, "outputs": 0.2}}))
"""


def _run(label, wall, built=0, status=0, memory=1e9, phases=None):
    return bench.Run(label, status, wall, wall * 1.5, int(memory), int(memory / 2), 6.5, 7.0,
                     phases or {"startup": 3.0, "compile": 1.0, "sample": 2.0}, built)


def test_the_table_shows_every_run_and_the_verdict():
    case = bench.CASES["scale_500"]
    text = bench.format_case(case, [_run("first", 200.0, built=3, memory=4.5e9), _run("warm 2", 150.0)])
    lines = text.splitlines()
    assert lines[0].startswith("scale_500") and "startup" in lines[1] and "compile" in lines[1]
    assert lines[2].startswith("first") and "200.0" in lines[2] and "4.50" in lines[2] and lines[3].startswith("warm 2")
    # a "first" case is judged on its first run: the later one is warm, shown for information
    assert "200.0 s" in lines[-1] and "missed by 20 s" in lines[-1] and "missed by 0.5 GB" in lines[-1]


def test_the_verdict_uses_completed_timed_runs_only():
    case = bench.CASES["fit_warm"]
    runs = [_run("warm-up 1", 5.0, built=2), _run("warm 1", 14.0), _run("warm 2", 13.0)]
    result = bench.verdict(case, runs)
    assert case.seconds == 8  # the target: the fit alone, warm, under 8 s
    assert result["seconds"] == 13.0 and not result["met"] and "missed by 5 s" in result["text"]
    failed = bench.verdict(case, [_run("warm 1", 3.0, status=4)])
    assert failed["seconds"] is None and not failed["met"]


def test_machine_names_cores_load_and_versions():
    info = bench.machine()
    assert info["cores"] >= 1 and len(info["load_average"]) == 3 and info["packages"]["pymc"]
    assert "load average" in bench.format_machine(info)
