"""Simulation-based calibration: a fast run here, the full run (200 simulations per check) in the slow suite.

The uniformity tests have a fixed seed, so each test is deterministic; the thresholds are the command's
own (family-wise 1%, Bonferroni), so a failure here is what the command would report as miscalibration.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis import calibration, validate
from analysis.config import load_config
from analysis.executors import DaskExecutor, InProcessExecutor, LocalExecutor, make_executor


def _primary_data(config):
    return config.load()[1]


def test_validate_command_writes_a_calibrated_verdict(tmp_path, model_cache):
    out = tmp_path / "validation"
    code = validate.main(["--simulations", "25", "--workers", "1", "--checks", "beta_binomial,naloxone_two_step",
                          "--out", str(out)])
    tests = pd.read_csv(out / "uniformity.csv")
    assert code == validate.EXIT_OK, tests
    assert set(tests["check"]) == {"beta_binomial", "naloxone_two_step"}
    assert {"mu", "kappa", "theta_target"} <= set(tests["quantity"])
    assert tests["calibrated"].all() and (tests["simulations"] == 25).all()
    pit = pd.read_csv(out / "pit.csv")
    values = pit[calibration.quantity_columns(pit)].to_numpy()
    assert len(pit) == 50 and np.nanmin(values) >= 0 and np.nanmax(values) <= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calibrated"] and summary["checks"]["beta_binomial"]["simulations"] == 25
    html = (out / "index.html").read_text()
    assert "data:image/png;base64," in html and "<script" not in html
    for check in ("beta_binomial", "naloxone_two_step"):
        assert (out / "figures" / f"sbc_{check}.png").is_file() and (out / "figures" / f"arviz_pit_{check}.png").is_file()


def test_sbc_detects_a_miscalibrated_fit(model_cache):
    """Data simulated under μ ~ Beta(1, 1) but fitted under μ ~ Beta(20, 2): the ranks of μ pile up low."""
    truth_config = load_config(calibration={"simulations": 30})
    data = _primary_data(truth_config)
    wrong = load_config(model={"beta_binomial": {"mean_a": 20.0, "mean_b": 2.0}}, calibration={"simulations": 30})
    simulations = [dataclasses.replace(s, config=wrong) for s in calibration.simulate("wrong", "model", truth_config, data)]
    table = pd.DataFrame(InProcessExecutor().map(calibration.fit_simulation, simulations))
    tests = calibration.uniformity(table, alpha=0.01).set_index("quantity")
    assert not tests.loc["mu", "calibrated"] and tests.loc["mu", "p_value"] < 1e-4
    assert table["mu"].median() < 0.3  # the true μ sits low in the too-optimistic posterior


def test_the_graded_check_fits_its_simulations_and_ranks_every_stage(model_cache):
    """The graded-outcome check, end to end on a few simulations: every stage's μ and τ gets a rank PIT in
    [0, 1] (its calibration over 200 simulations is in the slow suite)."""
    spec = next(s for s in validate.DEFAULT_CHECKS if s.kind == "graded")
    config = load_config(calibration={"simulations": 3})
    simulations = validate.build_simulations(spec, config)
    rows = InProcessExecutor().map(calibration.fit_simulation, simulations)
    assert len(rows) == 3
    for row, simulation in zip(rows, simulations):
        assert set(simulation.truth) <= set(row) and len(simulation.truth) == 8
        assert all(0 <= row[name] <= 1 for name in simulation.truth)


def test_simulations_copy_the_report_sizes_and_are_reproducible():
    config = load_config(calibration={"simulations": 5})
    data = _primary_data(config)
    first = calibration.simulate("c", "model", config, data)
    again = calibration.simulate("c", "model", config, data)
    assert all(np.array_equal(s.n, data.n) and np.all((s.y >= 0) & (s.y <= s.n)) for s in first)
    assert [s.truth for s in first] == [s.truth for s in again] and [s.seed for s in first] == [s.seed for s in again]
    assert len({s.seed for s in first}) == 5
    assert set(first[0].truth) == {"mu", "kappa", "theta[Series14_Menta2024]", "theta[Kollman2018]"}


def test_pit_is_the_normalised_rank():
    rng = np.random.default_rng(1)
    draws = np.arange(10.0)
    assert 0 <= calibration._rank_pit(draws, -1.0, rng) < 1 / 11
    assert 10 / 11 <= calibration._rank_pit(draws, 99.0, rng) < 1
    assert 5 / 11 <= calibration._rank_pit(draws, 4.5, rng) < 6 / 11
    assert calibration._thinned(np.arange(40.0).reshape(4, 10), 20).size == 20


def test_cdf_pit_spreads_a_truth_rounded_to_the_boundary():
    """θ = 1.0 exactly (a rounded Beta draw) under a posterior with mass piled within 1e-16 of 1."""
    from models.borrowing import BetaMixture

    posterior, rng = BetaMixture.single(0.5, 0.01), np.random.default_rng(2)
    pits = np.array([calibration._cdf_pit(posterior.cdf, 1.0, rng) for _ in range(200)])
    low = float(posterior.cdf(np.nextafter(1.0, 0.0)))
    assert pits.min() >= low and pits.max() < 1 and pits.std() > 0.05
    assert calibration._cdf_pit(posterior.cdf, 0.3, rng) == pytest.approx(float(posterior.cdf(0.3)), abs=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["--checks", "nonexistent"], "unknown check"),
    (["--config", "analysis/configs/sens_publication_single_w050.toml", "--checks", "sens_publication_single_w050"],
     "publication selection"),
    (["--workers", "0"], "--workers must be at least 1"),
])
def test_validate_rejects_bad_requests(argv, message, capsys, tmp_path):
    assert validate.main([*argv, "--out", str(tmp_path / "v")]) == validate.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "v").exists()


def test_every_executor_gives_identical_results():
    """The same SBC simulations and sensitivity variants in this process, in two local worker processes
    and on a Dask LocalCluster: identical numbers, in task order."""
    from distributed import LocalCluster

    from analysis import sensitivity

    config = load_config(calibration={"simulations": 6})
    simulations = calibration.simulate("same", "model", config, _primary_data(config))
    variants = [v for v in sensitivity.discover_variants(None) if v.name in ("primary", "loo_Albers2017")]

    def run(executor):
        return executor.map(calibration.fit_simulation, simulations), sensitivity.run_sweep(variants, executor)

    with InProcessExecutor() as executor:
        in_process = run(executor)
    with LocalExecutor(workers=2) as executor:
        local = run(executor)
        # One structure under two sampler settings (SBC's and the sweep's draws), and the primary variant's
        # graded-outcome model: at most three programs in each of the two workers, never one per task.
        assert executor.programs <= 6
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with make_executor(scheduler=cluster.scheduler_address) as executor:
            assert isinstance(executor, DaskExecutor)
            on_dask = run(executor)
    assert in_process[0] == local[0] == on_dask[0]
    assert [row["simulation"] for row in on_dask[0]] == list(range(6))
    pd.testing.assert_frame_equal(in_process[1], local[1], check_exact=True)
    pd.testing.assert_frame_equal(in_process[1], on_dask[1], check_exact=True)
    graded = [f"graded_{o}" for o in ("marked", "complete", "sustained")]
    assert list(on_dask[1]["variant"]) == ["primary", *graded, "loo_Albers2017"]


def test_dask_executor_reports_an_unreachable_scheduler():
    from analysis.errors import InputError

    with pytest.raises(InputError, match="cannot reach a Dask scheduler"):
        DaskExecutor("tcp://127.0.0.1:9")


@pytest.mark.slow
def test_full_calibration_of_every_check(tmp_path):
    """200 simulations per check (the command's default), local worker processes."""
    out = tmp_path / "validation"
    code = validate.main(["--out", str(out)])
    tests = pd.read_csv(out / "uniformity.csv")
    assert code == validate.EXIT_OK, tests
    assert set(tests["check"]) == {"beta_binomial", "logit_normal", "naloxone_two_step", "graded_sequential"}
    assert (tests["simulations"] == 200).all() and tests["calibrated"].all()
