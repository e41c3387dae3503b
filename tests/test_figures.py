"""The report's figures (`analysis.report.figures`): every function draws on a real (short) run and on
synthetic inputs, writes PNG and SVG, and the fixes asked for by the referee hold (forest limits, order and
legend; khat names; tornado order; funnel and cumulative input shapes)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from scipy import stats  # noqa: E402

from analysis.report import figures  # noqa: E402

PRIMARY_NAMES = ("forest", "prior_posterior", "trace", "rank", "energy", "predictive_intervals",
                 "predictive_statistics", "khat", "loo_pit")
BORROWING_NAMES = ("borrowing_update", "borrowing_sweep", "map_prior_fit")


# --- inputs -----------------------------------------------------------------------------------------------


def describe(values) -> dict:
    values = np.asarray(values, dtype=float).ravel()
    return {"mean": float(values.mean()), "median": float(np.median(values)), "sd": float(values.std()),
            "ci95": [float(v) for v in np.quantile(values, [0.025, 0.975])]}


def exact_interval(y: int, n: int) -> list[float]:
    lo = 0.0 if y == 0 else float(stats.beta.ppf(0.025, y, n - y + 1))
    hi = 1.0 if y == n else float(stats.beta.ppf(0.975, y + 1, n - y))
    return [lo, hi]


def stand_in_summary(idata, years: dict[str, int], pareto_k: dict[str, float] | None = None) -> dict:
    """The `summary` dict the figures read, built from a posterior (the shape of the brief)."""
    y = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    names = [str(r) for r in idata["observed_data"]["report"].values]
    theta = idata["posterior"]["theta"]
    reports = {}
    for name, yi, ni in zip(names, y, n):
        block = describe(theta.sel(report=name).values)
        reports[name] = {"n": int(ni), "y": int(yi), "year": int(years.get(name, 2020)), "mean": block["mean"],
                         "median": block["median"], "ci95": block["ci95"], "raw_ci95": exact_interval(int(yi), int(ni))}
    total_y, total_n = int(y.sum()), int(n.sum())
    return {
        "outcome": "any_response", "drug": "naltrexone", "seed": 1,
        "reports": reports,
        "pooled": describe(idata["posterior"]["pooled"].values),
        "predictive": describe(idata["posterior"]["theta_new"].values),
        "comparators": {"crude": {"y": total_y, "n": total_n, "proportion": total_y / total_n,
                                  "ci95": exact_interval(total_y, total_n)}},
        "loo": {"pareto_k": pareto_k or {name: 0.1 + 0.05 * i for i, name in enumerate(names)}},
    }


REPORTS = {"Big2019": (14, 8), "Mid2020": (8, 7), "ThreeA2017": (3, 3), "ThreeB2018": (3, 3), "Two2020": (2, 2),
           "OneA2018": (1, 1), "OneB2020": (1, 1)}


def synthetic_idata(seed: int = 0, chains: int = 4, draws: int = 300) -> xr.DataTree:
    """A beta-binomial-shaped posterior with every group the figures read, drawn without a model."""
    rng = np.random.default_rng(seed)
    names = list(REPORTS)
    n = np.array([REPORTS[r][0] for r in names])
    y = np.array([REPORTS[r][1] for r in names])
    k = len(names)

    def population(c, d):
        mu = rng.beta(8, 1.5, size=(c, d))
        u = np.abs(rng.normal(0, 0.5, size=(c, d)))
        kappa = 1 / u**2
        theta = rng.beta((mu * kappa)[..., None] + y, ((1 - mu) * kappa)[..., None] + n - y, size=(c, d, k))
        theta_new = rng.beta(mu * kappa, (1 - mu) * kappa)
        sd = np.sqrt(mu * (1 - mu) / (kappa + 1))
        return {"mu": (("chain", "draw"), mu), "u": (("chain", "draw"), u), "kappa": (("chain", "draw"), kappa),
                "theta": (("chain", "draw", "report"), theta), "theta_new": (("chain", "draw"), theta_new),
                "pooled": (("chain", "draw"), mu), "heterogeneity_sd": (("chain", "draw"), sd)}

    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "report": names}
    posterior = xr.Dataset(population(chains, draws), coords=coords)
    prior = xr.Dataset(population(1, draws), coords={**coords, "chain": [0]})
    theta = posterior["theta"].values
    energy = rng.gamma(2.0, 1.0, size=(chains, draws)) + 10
    tree = xr.DataTree.from_dict({
        "posterior": posterior,
        "prior": prior,
        "sample_stats": xr.Dataset({"energy": (("chain", "draw"), energy),
                                    "diverging": (("chain", "draw"), rng.random((chains, draws)) < 0.002)},
                                   coords={"chain": coords["chain"], "draw": coords["draw"]}),
        "prior_predictive": xr.Dataset({"y": (("chain", "draw", "report"), rng.binomial(n, prior["theta"].values))},
                                       coords={**coords, "chain": [0]}),
        "posterior_predictive": xr.Dataset({"y": (("chain", "draw", "report"), rng.binomial(n, theta)),
                                            "y_new_reports": (("chain", "draw", "report"),
                                                              rng.binomial(n, np.clip(theta[..., ::-1], 0, 1)))},
                                           coords=coords),
        "observed_data": xr.Dataset({"y": ("report", y)}, coords={"report": names}),
        "constant_data": xr.Dataset({"n": ("report", n)}, coords={"report": names}),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "report"), stats.binom.logpmf(y, n, theta))},
                                     coords=coords),
    })
    tree.attrs["model"] = "beta_binomial"
    return tree


def funnel_block(reports: dict) -> dict:
    grid = np.exp(np.linspace(0, math.log(30), 40))
    mean = 1 / (1 + np.exp(-(2.5 - 1.2 * np.log(grid))))
    return {"reports": {k: {"n": v["n"], "y": v["y"], "raw_ci95": v["raw_ci95"]} for k, v in reports.items()},
            "curve": {"n": grid.tolist(), "mean": mean.tolist(), "lo": (mean * 0.7).tolist(),
                      "hi": np.minimum(1, mean * 1.2).tolist()},
            "predictions": [{"label": "report of 14", "n": 14, "mean": 0.62, "ci95": [0.34, 0.87]}],
            "log_n": {"mean": -2.15, "ci95": [-3.96, -0.62], "p_negative": 0.998}}


def step(year, reports, patients, mean, lo, hi, added=()):
    return {"year": year, "reports": reports, "patients": patients, "pooled": {"mean": mean, "ci95": [lo, hi]},
            "predictive": {"mean": mean, "ci95": [max(0.0, lo - 0.3), 1.0]}, "added": list(added)}


STEPS = [step(2017, 2, 6, 0.85, 0.55, 0.99, ["A2017", "B2017"]), step(2019, 6, 25, 0.85, 0.67, 0.97, ["C2019"]),
         step(2024, 12, 43, 0.87, 0.72, 0.97, ["D2024"])]


def sweep_rows(count: int = 45, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    groups = ("outcome", "prior", "evidence", "publication bias", "leave one out")
    rows = [{"variant": "primary", "group": "primary", "description": "Primary", "status": "passed",
             "pooled_mean": 0.87, "pooled_lo": 0.72, "pooled_hi": 0.97, "pooled_shift": 0.0,
             "predictive_mean": 0.87, "predictive_lo": 0.41, "predictive_hi": 1.0,
             "naloxone_mean": 0.9, "naloxone_lo": 0.55, "naloxone_hi": 1.0}]
    for i in range(count - 1):
        shift = float(rng.normal(0, 0.05))
        row = {"variant": f"sens_{groups[i % 5].split()[0]}_v{i}", "group": groups[i % 5], "description": f"v{i}",
               "status": "passed", "pooled_mean": 0.87 + shift, "pooled_lo": 0.7 + shift, "pooled_hi": 0.97,
               "pooled_shift": shift, "predictive_mean": 0.87 + shift, "predictive_lo": 0.4, "predictive_hi": 1.0}
        if i % 3:
            row.update(naloxone_mean=0.9, naloxone_lo=0.5, naloxone_hi=1.0)
        elif i % 2:
            row.update(naloxone_mean=float("nan"), naloxone_lo=float("nan"), naloxone_hi=float("nan"))
        rows.append(row)
    rows[5]["status"] = "failed"
    rows[7] = {"variant": "sens_evidence_broken", "group": "evidence", "description": "cannot run",
               "status": "not run"}
    return rows


def assert_written(directory, names) -> None:
    for name in names:
        png, svg = directory / f"{name}.png", directory / f"{name}.svg"
        assert png.stat().st_size > 10_000, name
        assert svg.stat().st_size > 1_000 and svg.read_text(encoding="utf-8").lstrip().startswith("<?xml"), name


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    left_open = plt.get_fignums()
    plt.close("all")
    assert left_open == [], "a figure was left open"


def sweep_block(borrowing) -> dict:
    """The borrowing block `borrowing_sweep` reads, from a `BorrowingResult` (both routes per weight)."""
    from models.borrowing import robustify

    target = borrowing.target
    rows = []
    for weight, fit in sorted(borrowing.joint_fits.items()):
        two_step = robustify(borrowing.map_fit.mixture, weight, borrowing.vague).posterior(target.y, target.n)
        rows.append({"weight": weight, "two_step": two_step.summary(),
                     "joint": describe(fit.idata["posterior"]["theta_target"].values)})
    return {"target_drug": target.drug, "robust_weight": borrowing.weight, "sweep": rows}


@pytest.fixture(scope="module")
def real_run(model_cache):
    """The primary analysis and the naloxone arm, sampled short (200 + 200 draws per chain)."""
    from analysis.borrowing import run_borrowing, target_arm
    from analysis.config import load_config
    from analysis.pipeline import run_analysis

    config = load_config(sampling={"draws": 200, "tune": 200})
    table, data = config.load()
    result = run_analysis(config, data, model_cache)
    target = target_arm(config, table)
    borrowing = run_borrowing(config, result, target, model_cache) if target is not None else None
    from analysis.checks import psis_loo, randomised_loo_pit
    from models.borrowing import total_variation

    years = {str(r): int(y) for r, y in zip(table.frame["report_id"], table.frame["year"])}
    psis = psis_loo(result.idata)
    pareto_k = {str(r): float(k) for r, k in zip(psis.pareto_k["report"].values, psis.pareto_k.values)}
    summary = stand_in_summary(result.idata, years, pareto_k)
    block = sweep_block(borrowing) if borrowing is not None else None
    if block is not None:
        block["posterior_map_distance"] = total_variation(borrowing.posterior, borrowing.map_fit.mixture)
    pit = randomised_loo_pit(result.idata, psis, np.random.default_rng(1))
    return SimpleNamespace(config=config, result=result, borrowing=borrowing, block=block, summary=summary, pit=pit)


# --- the real run -----------------------------------------------------------------------------------------


def test_primary_figures_on_a_real_run(real_run, tmp_path):
    from models import FAMILIES

    written = figures.draw_primary(real_run.result, real_run.summary, tmp_path,
                                   FAMILIES[real_run.config.model.family].plotted_parameters, real_run.pit)
    assert tuple(written) == PRIMARY_NAMES
    assert_written(tmp_path, PRIMARY_NAMES)
    assert real_run.pit.shape == (len(real_run.summary["reports"]),)
    assert np.all((real_run.pit >= 0) & (real_run.pit <= 1))


def test_borrowing_figures_on_a_real_run(real_run, tmp_path):
    if real_run.borrowing is None:
        pytest.skip("no target arm in the shipped data")
    figures.draw_borrowing(real_run.borrowing, real_run.block, tmp_path)
    assert_written(tmp_path, BORROWING_NAMES)
    assert 0.0 <= real_run.block["posterior_map_distance"] <= 1.0


def test_forest_on_a_real_run_leaves_room_beyond_one(real_run):
    figure = figures.forest(real_run.summary)
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    assert low < 0.0 and high > 1.0
    plt.close(figure)


# --- the forest ---------------------------------------------------------------------------------------------


def test_forest_limits_order_crude_line_and_legend_below_the_axes():
    summary = stand_in_summary(synthetic_idata(), {"Big2019": 2019, "Mid2020": 2020, "ThreeA2017": 2017,
                                                   "ThreeB2018": 2018, "Two2020": 2020, "OneA2018": 2018,
                                                   "OneB2020": 2020})
    figure = figures.forest(summary)
    ax = figure.axes[0]
    low, high = ax.get_xlim()
    assert low < 0.0 and 1.0 < high <= 1.1
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # by size, largest first, then by year; then the pooled and predictive rows
    assert labels[:7] == ["Big2019", "Mid2020", "ThreeA2017", "ThreeB2018", "Two2020", "OneA2018", "OneB2020"]
    assert labels[7:] == ["pooled mean", "new report (predictive)"]
    right = [t.get_text() for t in figure.axes[1].get_yticklabels()]
    assert right[0] == "8/14" and right[-3] == "1/1"
    crude = summary["comparators"]["crude"]["proportion"]
    assert any(np.allclose(line.get_xdata(), crude) for line in ax.get_lines())
    legend = figure.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert any("crude" in t for t in texts) and any("pooled mean" in t for t in texts)
    assert any("predictive" in t for t in texts)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0  # below the data
    plt.close(figure)


# --- khat, loo_pit, the band --------------------------------------------------------------------------------


def test_khat_axis_carries_the_report_names_and_the_threshold():
    pareto_k = {"Big2019": 0.74, "Mid2020": 0.31, "OneA2018": 0.1}
    figure = figures.khat(pareto_k, order=["Mid2020", "Big2019", "OneA2018"])
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Mid2020", "Big2019", "OneA2018"]
    assert any(np.allclose(line.get_ydata(), 0.7) for line in ax.get_lines())
    assert any(t.get_text() == "0.74" for t in ax.texts)  # the value above 0.7 is printed
    plt.close(figure)


def test_khat_on_a_real_run_names_every_report(real_run):
    figure = figures.khat(real_run.summary["loo"]["pareto_k"])
    labels = {t.get_text() for t in figure.axes[0].get_xticklabels()}
    assert labels == set(real_run.summary["reports"])
    plt.close(figure)


def test_loo_pit_draws_randomised_values_in_a_band(tmp_path):
    figure = figures.loo_pit(np.random.default_rng(2).uniform(size=12))
    ax = figure.axes[0]
    assert ax.get_xlabel() == "PIT value" and ax.get_ylabel() == "ECDF − uniform"
    assert "PIT" in ax.get_title(loc="left")
    assert len(ax.collections) >= 1  # the band
    figures.save(figure, tmp_path, "loo_pit")
    assert_written(tmp_path, ("loo_pit",))


def test_simultaneous_band_is_arviz_band():
    from arviz_stats.ecdf_utils import ecdf_pit

    for n, chains in ((40, 4), (25, 2), (30, 1)):
        x, lower, upper = figures.simultaneous_band.__wrapped__(n, chains, 0.95, 120, 3)
        x2, _, lower2, upper2 = ecdf_pit(np.linspace(0, 1, n), 0.95, n_simulations=120, n_chains=chains,
                                         rng=np.random.default_rng(3))
        assert np.array_equal(x, x2) and np.array_equal(lower, lower2) and np.array_equal(upper, upper2)


def test_density_has_no_dip_at_the_bounds():
    draws = np.random.default_rng(4).uniform(size=20_000)
    x, d = figures.density(draws, (0.0, 1.0))
    assert x[0] == 0.0 and x[-1] == 1.0
    assert np.all(np.abs(d - 1.0) < 0.15)  # reflection: a flat density stays flat up to the bounds
    half = np.abs(np.random.default_rng(5).normal(size=20_000))
    x, d = figures.density(half, (0.0, np.inf))
    assert d[0] == pytest.approx(2 * stats.norm.pdf(0), rel=0.1)


def test_total_variation_of_beta_mixtures():
    from models.borrowing import BetaMixture, total_variation

    flat, rising = BetaMixture.single(1, 1), BetaMixture.single(2, 1)
    assert total_variation(flat, flat) == pytest.approx(0.0, abs=1e-12)
    assert total_variation(flat, rising) == pytest.approx(0.25, abs=1e-9)
    spiky = BetaMixture([0.5, 0.5], [0.5, 20.0], [0.3, 2.0])  # unbounded at both ends
    assert total_variation(spiky, flat) == pytest.approx(total_variation(flat, spiky), abs=1e-12)
    assert 0.0 < total_variation(spiky, flat) < 1.0


# --- synthetic posterior: every primary figure --------------------------------------------------------------


def test_primary_figures_on_a_synthetic_posterior(tmp_path):
    idata = synthetic_idata()
    summary = stand_in_summary(idata, {})
    written = figures.draw_primary(SimpleNamespace(idata=idata), summary, tmp_path, ("mu", "u"),
                                   pit_values=np.linspace(0.04, 0.96, len(REPORTS)))
    assert_written(tmp_path, written)


def test_energy_has_integer_chain_ticks():
    figure = figures.energy(synthetic_idata(chains=3))
    bfmi_axis = figure.axes[1]
    assert [t.get_text() for t in bfmi_axis.get_xticklabels()] == ["0", "1", "2"]
    assert any(np.allclose(line.get_ydata(), 0.3) for line in bfmi_axis.get_lines())
    plt.close(figure)


def test_trace_labels_every_density_panel():
    figure = figures.trace(synthetic_idata(), ("mu", "u"))
    titles = [ax.get_title(loc="left") for ax in figure.axes[0::2]]
    assert titles[0].startswith("μ") and titles[1].startswith("u")
    plt.close(figure)


def test_rank_has_a_y_axis_and_a_band():
    figure = figures.rank(synthetic_idata(), ("mu", "u"))
    ax = figure.axes[0]
    assert ax.get_ylabel() == "ECDF − uniform CDF" and len(ax.collections) >= 1
    assert ax.get_ylim()[0] < 0 < ax.get_ylim()[1]
    plt.close(figure)


def test_prior_posterior_has_density_axes_and_titles():
    figure = figures.prior_posterior(synthetic_idata(), ("mu", "u"))
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_ylabel() for ax in panels] == ["density"] * 3  # mu, u and the SD of θ
    assert "population mean" in panels[0].get_title(loc="left") and "spread" in panels[1].get_title(loc="left")
    assert panels[0].get_xlim() == (0.0, 1.0)
    plt.close(figure)


# --- the new figures -------------------------------------------------------------------------------------


def test_funnel_accepts_full_and_bare_blocks(tmp_path):
    reports = stand_in_summary(synthetic_idata(), {})["reports"]
    figure = figures.funnel(funnel_block(reports))
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "5", "8", "14", "30"]
    figures.save(figure, tmp_path, "funnel")
    bare = {"reports": {k: {"n": v["n"], "y": v["y"], "raw_ci95": v["raw_ci95"]} for k, v in reports.items()}}
    figures.save(figures.funnel(bare), tmp_path, "funnel_bare")
    assert_written(tmp_path, ("funnel", "funnel_bare"))


def test_cumulative_accepts_no_alternative_one_step_and_an_alternative(tmp_path):
    alternative = {"label": "C2019 at 2024", "steps": [step(2017, 2, 6, 0.85, 0.55, 0.99),
                                                        step(2019, 5, 11, 0.93, 0.8, 1.0),
                                                        step(2024, 12, 43, 0.87, 0.72, 0.97)]}
    for name, args in (("plain", (STEPS,)), ("none", (STEPS, None)), ("single", (STEPS[:1],)),
                       ("single_none", (STEPS[:1], None)), ("alternative", (STEPS, alternative))):
        figures.save(figures.cumulative(*args), tmp_path, f"cumulative_{name}")
    assert_written(tmp_path, [f"cumulative_{n}" for n in ("plain", "none", "single", "single_none", "alternative")])


def test_tornado_sorts_by_absolute_shift_and_shows_at_most_25(tmp_path):
    rows = sweep_rows(45)
    shown, usable, left_out = figures.tornado_rows(rows, 0.87)
    shifts = [abs(r["shift"]) for r in shown]
    assert shifts == sorted(shifts, reverse=True) and len(shown) == 25
    assert len(usable) == 42 and {r["status"] for r in left_out} == {"failed", "not run"}
    assert all(abs(r["shift"]) <= shifts[-1] for r in usable[25:])
    figure = figures.tornado(rows, 0.87)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    top_to_bottom = [label for _, label in sorted(zip(ax.get_yticks(), labels), reverse=True)]
    assert top_to_bottom[:25] == [figures.variant_label(r) for r in shown]
    assert "25 largest of 42" in figure.get_suptitle()
    figures.save(figure, tmp_path, "tornado")
    assert_written(tmp_path, ("tornado",))


def test_tornado_leaves_out_rows_without_a_shift():
    """Rows of another outcome carry no shift (the sweep leaves it empty): comparisons, not perturbations."""
    rows = [{"variant": "a", "group": "prior", "pooled_mean": 0.80, "pooled_shift": -0.07, "status": "passed"},
            {"variant": "b", "group": "outcome", "pooled_mean": 0.50, "pooled_shift": None, "status": "passed"},
            {"variant": "c", "group": "prior", "pooled_mean": 0.95, "pooled_shift": float("nan"), "status": "passed"}]
    shown, usable, left_out = figures.tornado_rows(rows, 0.87)
    assert [r["variant"] for r in shown] == ["a"] and not left_out
    plt.close(figures.tornado(rows, 0.87))


def test_sensitivity_forest_groups_rows_and_takes_a_data_frame(tmp_path):
    import pandas as pd

    rows = sweep_rows(45)
    figure = figures.sensitivity_forest(rows)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels[0] == "primary" and "OUTCOME" in labels and any("(FAILED)" in t for t in labels)
    assert any("(NOT RUN)" in t for t in labels)
    assert [ax.get_title(loc="center") for ax in figure.axes] == ["pooled mean", "new report (predictive)",
                                                                   "naloxone"]
    figures.save(figure, tmp_path, "sensitivity_forest")
    without_naloxone = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("naloxone")} for r in rows])
    figure = figures.sensitivity_forest(without_naloxone.drop(columns=["status"]).assign(passed=True))
    assert len(figure.axes) == 2
    figures.save(figure, tmp_path, "sensitivity_forest_two")
    assert_written(tmp_path, ("sensitivity_forest", "sensitivity_forest_two"))


def test_variant_labels_are_short():
    assert figures.variant_label({"variant": "sens_publication_all_w025"}) == "publication: all w=0.25"
    assert figures.variant_label({"variant": "loo_Series14_Menta2024"}) == "without Series14_Menta2024"
    assert figures.variant_label({"variant": "sens_prior_u1"}, grouped=True) == "u~HN(1)"
    assert figures.variant_label({"variant": "x", "label": "given"}) == "given"


def test_save_keeps_tight_bounding_box_for_figures_without_a_layout_engine(tmp_path):
    figure, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title")
    figure.tight_layout()
    figures.save(figure, tmp_path, "plain")
    assert (tmp_path / "plain.png").exists() and (tmp_path / "plain.svg").exists()
