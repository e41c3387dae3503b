"""The convergence gate: R-hat, bulk and tail ESS for every parameter and derived quantity, divergences.

Results are data (a table and a verdict); the command decides what to print and which exit code to use.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import bfmi
from arviz_stats.base import array_stats

from analysis.inputs.config import DiagnosticsSettings
from analysis.results import Convergence

QUANTILE_MCSE = {"mcse_median": 0.5, "mcse_q2.5": 0.025, "mcse_q97.5": 0.975}


def check_convergence(idata: xr.DataTree, thresholds: DiagnosticsSettings, heavy_tailed=(),
                      report_level: bool = True) -> Convergence:
    """Diagnostics of every posterior quantity except those constant across all draws (a quantity fixed
    by the model, e.g. a probability of exactly 1, has no Monte Carlo error and no defined R-hat).

    R-hat and the ESS are rank-based, so they hold for any quantity; the MCSE of a mean or sd does not
    exist for a `heavy_tailed` quantity (its mean may be infinite): its table entries are NaN and only the
    MCSE of its quantiles is reported. Without `report_level`, only quantities without a `report`
    dimension are judged (the report θ_i are exact conditional draws given the population quantities)."""
    posterior = idata["posterior"].to_dataset()
    if not report_level:
        posterior = posterior[[name for name, da in posterior.data_vars.items() if "report" not in da.dims]]
    labels, draws = _scalar_draws(posterior)
    columns = {
        "ess_bulk": array_stats.ess(draws, method="bulk"),
        # Stan's tail ESS (Vehtari et al. 2021): the smaller ESS of the 5% and 95% quantiles.
        "ess_tail": array_stats.ess(draws, method="tail", prob=(0.05, 0.95)),
        "r_hat": array_stats.rhat(draws, method="rank"),
        "mcse_mean": array_stats.mcse(draws, method="mean"),
        "mcse_sd": array_stats.mcse(draws, method="sd"),
        **{name: array_stats.mcse(draws, method="quantile", prob=prob) for name, prob in QUANTILE_MCSE.items()},
    }
    table = pd.DataFrame(columns, index=pd.Index(labels))
    heavy = [name for name in labels if name.split("[")[0] in heavy_tailed]
    table.loc[heavy, ["mcse_mean", "mcse_sd"]] = np.nan
    divergences = int(np.sum(idata["sample_stats"]["diverging"].values))
    bfmi_values = np.asarray(bfmi(idata)["energy"].values, dtype=float).ravel()
    failures = tuple(_failures(table, divergences, thresholds))
    return Convergence(
        rhat_max=float(table["r_hat"].max()), ess_bulk_min=float(table["ess_bulk"].min()),
        ess_tail_min=float(table["ess_tail"].min()), divergences=divergences, bfmi_min=float(bfmi_values.min()),
        passed=not failures, failures=failures, thresholds=thresholds.model_dump(), table=table)


def _failures(table: pd.DataFrame, divergences: int, limits: DiagnosticsSettings) -> list[str]:
    """Readable reasons the gate fails; NaN diagnostics count as failures."""
    problems = []
    bad_rhat = table.index[~(table["r_hat"] <= limits.rhat_max)]
    if len(bad_rhat):
        problems.append(f"R-hat above {limits.rhat_max} for {_names(bad_rhat)}")
    for column, limit in (("ess_bulk", limits.ess_bulk_min), ("ess_tail", limits.ess_tail_min)):
        low = table.index[~(table[column] >= limit)]
        if len(low):
            problems.append(f"{column.replace('_', ' ')} ESS below {limit:g} for {_names(low)}")
    if divergences > limits.max_divergences:
        problems.append(f"{divergences} divergent transitions (allowed: {limits.max_divergences})")
    return problems


def _scalar_draws(posterior: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """Every varying scalar quantity as (quantity, chain, draw), labelled `name` or `name[coordinate]`."""
    labels, arrays = [], []
    for name, da in posterior.data_vars.items():
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        values = da.transpose("chain", "draw", *extra).values.reshape(da.sizes["chain"], da.sizes["draw"], -1)
        coords = [f"[{', '.join(str(da[d].values[i]) for d, i in zip(extra, index))}]" if extra else ""
                  for index in np.ndindex(*[da.sizes[d] for d in extra])]
        for k, suffix in enumerate(coords):
            column = values[..., k]
            if np.ptp(column) > 0:
                labels.append(name + suffix)
                arrays.append(column)
    return labels, np.stack(arrays)


def _names(index: pd.Index, shown: int = 5) -> str:
    names = list(index)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
