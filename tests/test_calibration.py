"""Simulation-based calibration: a fast run here, the full run (200 simulations per check) in the slow suite.

The uniformity tests have a fixed seed, so each test is deterministic; the thresholds are the command's
own (family-wise 1%, Bonferroni), so a failure here is what the command would report as miscalibration.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis import validate
from analysis.engine.executors import DaskExecutor, InProcessExecutor, LocalExecutor
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import CONFIG_DIR, load_config
from analysis.steps import calibration, graded


def _check(kind: str = "model", name: str = "c", path=CONFIG_DIR / "default.toml", **overrides) -> calibration.Check:
    return calibration.Check(name, kind, load_inputs(load_config(path, **overrides)))


def _fits(simulations) -> list[dict]:
    return InProcessExecutor().map(calibration.fit_simulation, simulations)


def test_validate_command_writes_a_calibrated_verdict(tmp_path, model_cache):
    out = tmp_path / "validation"
    code = validate.main(["--simulations", "5", "--checks", "beta_binomial,naloxone_two_step", "--out", str(out)])
    tests = pd.read_csv(out / "uniformity.csv")
    assert code == validate.EXIT_OK, tests
    assert list(tests["check"].unique()) == ["beta_binomial", "naloxone_two_step"]
    assert list(tests["quantity"]) == ["mu", "kappa", "theta[Series14_Menta2024]", "theta[Kollman2018]",
                                       "theta_target"]
    assert tests["calibrated"].all() and (tests["simulations"] == 5).all()
    assert np.allclose(tests["threshold"], 0.01 / 5)
    pit = pd.read_csv(out / "pit.csv")
    values = pit[list(tests["quantity"])].to_numpy()
    assert len(pit) == 10 and np.nanmin(values) > 0 and np.nanmax(values) < 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calibrated"] and summary["checks"]["beta_binomial"]["simulations"] == 5
    assert json.loads((out / "run.json").read_text())["executor"] == "this process"
    html = (out / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<script" not in html
    for check in ("beta_binomial", "naloxone_two_step"):
        assert (out / "figures" / f"sbc_{check}.png").is_file()


def test_sbc_detects_a_miscalibrated_fit(model_cache):
    """Data simulated under μ ~ Beta(1, 1) but fitted under μ ~ Beta(20, 2): the ranks of μ pile up low."""
    wrong = load_config(model={"beta_binomial": {"mean_a": 20.0, "mean_b": 2.0}}).model
    simulations = [dataclasses.replace(s, config=s.config.model_copy(update={"model": wrong}))
                   for s in calibration.simulate(_check(calibration={"simulations": 8}))]
    result = calibration.summarise([_check()], _fits(simulations))
    mu = next(t for t in result.tests if t.quantity == "mu")
    assert not result.calibrated and not mu.calibrated and mu.p_value < 1e-3 and not mu.inside_band
    assert result.pit["mu"].median() < 0.3  # the true μ sits low in the too-optimistic posterior


def test_the_graded_check_fits_its_simulations_and_ranks_every_stage(model_cache):
    """The graded-outcome check, end to end on a few simulations: every stage's μ and τ gets a rank PIT in
    (0, 1) (its calibration over 200 simulations is in the slow suite)."""
    check = _check("graded", calibration={"simulations": 2})
    _, real, _ = graded.graded_counts(check.inputs)
    simulations = calibration.simulate(check)
    for row, simulation in zip(_fits(simulations), simulations):
        assert len(simulation.truth) == 8 and set(simulation.truth) <= set(row)
        assert all(0 < row[name] < 1 for name in simulation.truth)
        assert np.array_equal(simulation.counts >= 0, real >= 0) and (simulation.counts <= simulation.n[:, None]).all()


def test_simulations_copy_the_report_sizes_and_are_reproducible():
    check = _check(calibration={"simulations": 5})
    first, again = calibration.simulate(check), calibration.simulate(check)
    data = check.inputs.data
    assert all(np.array_equal(s.n, data.n) and np.all((s.counts >= 0) & (s.counts <= s.n)) for s in first)
    assert [s.truth for s in first] == [s.truth for s in again] and [s.seed for s in first] == [s.seed for s in again]
    assert len({s.seed for s in first}) == 5
    assert set(first[0].truth) == {"mu", "kappa", "theta[Series14_Menta2024]", "theta[Kollman2018]"}
    other = calibration.simulate(_check(calibration={"simulations": 5}, sampling={"seed": 7}))
    assert [s.truth for s in other] != [s.truth for s in first]


def test_pit_is_the_normalised_rank():
    rng = np.random.default_rng(1)
    draws = np.arange(10.0)
    assert 0 <= calibration._rank_pit(draws, -1.0, rng) < 1 / 11
    assert 10 / 11 <= calibration._rank_pit(draws, 99.0, rng) < 1
    assert 5 / 11 <= calibration._rank_pit(draws, 4.5, rng) < 6 / 11
    assert calibration._thinned(np.arange(40.0).reshape(4, 10), 20).size == 20


def test_cdf_pit_spreads_a_truth_rounded_to_the_boundary():
    """θ = 1.0 exactly (a rounded Beta draw) under a posterior with mass piled within 1e-16 of 1."""
    from models.mixtures import BetaMixture

    posterior, rng = BetaMixture.single(0.5, 0.01), np.random.default_rng(2)
    pits = np.array([calibration._cdf_pit(posterior.cdf, 1.0, rng) for _ in range(200)])
    low = float(posterior.cdf(np.nextafter(1.0, 0.0)))
    assert pits.min() >= low and pits.max() < 1 and pits.std() > 0.05
    assert calibration._cdf_pit(posterior.cdf, 0.3, rng) == pytest.approx(float(posterior.cdf(0.3)), abs=1e-12)


def test_cdf_pit_compares_a_truth_below_the_fits_resolution_with_the_whole_end_interval():
    """The two-step route's mixture is fitted to draws clipped at 1e-10, so it cannot place mass between
    1e-160 and 1e-10 correctly (a validation run met a truth of 3.7e-162 and a PIT of 1.8e-25). Below the
    resolution the PIT is uniform on [0, F(1e-10)], above 1 − 1e-10 on [F(1 − 1e-10), 1], and elsewhere
    the plain CDF at the truth."""
    from models.mixtures import RESOLUTION, BetaMixture

    posterior, rng = BetaMixture.single(0.15, 5.0), np.random.default_rng(3)
    pits = np.array([calibration._cdf_pit(posterior.cdf, 3.7e-162, rng, RESOLUTION) for _ in range(400)])
    end = float(posterior.cdf(RESOLUTION))
    assert pits.min() >= 0 and pits.max() <= end and abs(pits.mean() - end / 2) < 4 * end / np.sqrt(12 * 400)
    assert calibration._cdf_pit(posterior.cdf, 3.7e-162, rng) < 1e-20  # without the resolution: the old PIT
    high = np.array([calibration._cdf_pit(posterior.cdf, 1 - 1e-12, rng, RESOLUTION) for _ in range(50)])
    assert high.min() >= float(posterior.cdf(1 - RESOLUTION)) and high.max() <= 1
    assert calibration._cdf_pit(posterior.cdf, 0.3, rng, RESOLUTION) == pytest.approx(float(posterior.cdf(0.3)), abs=1e-12)


@pytest.mark.parametrize("argv, message", [
    (["--checks", "nonexistent"], "--checks: unknown check(s) nonexistent; available: beta_binomial,"),
    (["--config", "analysis/configs/sens_publication_all_w025_logit_normal.toml",
      "--checks", "sens_publication_all_w025_logit_normal"], "without publication selection"),
    (["--simulations", "0"], "--simulations must be at least 1, not 0"),
    (["--data", "no/such/file.csv"], "file not found"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach a Dask scheduler"),
    (["--scheduler", "tcp://scheduler:port"], "not a scheduler address (expected tcp://HOST:PORT)"),
])
def test_validate_rejects_bad_requests_in_one_line(argv, message, capsys, tmp_path):
    assert validate.main([*argv, "--out", str(tmp_path / "v")]) == validate.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "v").exists()


def test_validate_refuses_a_folder_it_does_not_own(capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("a user's file")
    assert validate.main(["--out", str(tmp_path)]) == validate.EXIT_BAD_INPUT
    assert "is not an output of this tool" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_every_executor_gives_identical_results():
    """The same simulations in this process, in two local worker processes and on a Dask cluster's worker
    process: identical numbers, in task order, each worker preparing the one sampler program once."""
    from distributed import LocalCluster

    simulations = calibration.simulate(_check(calibration={"simulations": 3}))
    in_process = _fits(simulations)
    with LocalExecutor(workers=2) as executor:
        local = executor.map(calibration.fit_simulation, simulations)
        assert executor.programs <= 2
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with DaskExecutor(cluster.scheduler_address) as executor:
            on_dask = executor.map(calibration.fit_simulation, simulations)
    assert in_process == local == on_dask
    assert [row["simulation"] for row in local] == list(range(3))


@pytest.mark.slow
def test_full_calibration_of_every_check(tmp_path):
    """200 simulations per check (the command's default)."""
    out = tmp_path / "validation"
    code = validate.main(["--out", str(out)])
    tests = pd.read_csv(out / "uniformity.csv")
    assert code == validate.EXIT_OK, tests
    assert list(tests["check"].unique()) == [spec.name for spec in validate.DEFAULT_CHECKS]
    assert (tests["simulations"] == 200).all() and tests["calibrated"].all()
