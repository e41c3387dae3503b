"""The convergence gate: R-hat, bulk and tail ESS for every parameter and derived quantity, divergences.

Results are data (a table and a verdict); the command decides what to print and which exit code to use.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
from arviz_stats.base import array_stats
import numpy as np
import pandas as pd
import xarray as xr

from analysis.config import DiagnosticsSettings


@dataclass(frozen=True)
class ConvergenceReport:
    table: pd.DataFrame
    """One row per scalar quantity: ess_bulk, ess_tail, r_hat, the MCSE of the median and of the 2.5% and
    97.5% quantiles, and mcse_mean and mcse_sd where the quantity's mean exists (NaN otherwise)."""
    divergences: int
    bfmi: tuple[float, ...]
    """Energy Bayesian fraction of missing information per chain; below 0.3 signals poor exploration."""
    thresholds: DiagnosticsSettings

    @property
    def rhat_max(self) -> float:
        return float(self.table["r_hat"].max())

    @property
    def ess_bulk_min(self) -> float:
        return float(self.table["ess_bulk"].min())

    @property
    def ess_tail_min(self) -> float:
        return float(self.table["ess_tail"].min())

    @property
    def failures(self) -> list[str]:
        """Readable reasons the gate fails; empty when it passes. NaN diagnostics count as failures."""
        t, limits, problems = self.table, self.thresholds, []
        bad_rhat = t.index[~(t["r_hat"] <= limits.rhat_max)]
        if len(bad_rhat):
            problems.append(f"R-hat above {limits.rhat_max} for {_names(bad_rhat)}")
        for column, limit in (("ess_bulk", limits.ess_bulk_min), ("ess_tail", limits.ess_tail_min)):
            low = t.index[~(t[column] >= limit)]
            if len(low):
                problems.append(f"{column.replace('_', ' ')} ESS below {limit:g} for {_names(low)}")
        if self.divergences > limits.max_divergences:
            problems.append(f"{self.divergences} divergent transitions (allowed: {limits.max_divergences})")
        return problems

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": self.divergences,
            "bfmi_min": round(min(self.bfmi), 4),
            "passed": self.passed,
            "failures": self.failures,
            "thresholds": self.thresholds.model_dump(),
        }


QUANTILE_MCSE = {"mcse_median": 0.5, "mcse_q2.5": 0.025, "mcse_q97.5": 0.975}


def check_convergence(idata: xr.DataTree, thresholds: DiagnosticsSettings, heavy_tailed=(),
                      report_level: bool = True) -> ConvergenceReport:
    """Diagnostics of every posterior quantity except those constant across all draws (a quantity fixed
    by the model, e.g. a probability of exactly 1, has no Monte Carlo error and no defined R-hat).

    R-hat and the ESS are rank-based, so they hold for any quantity; the MCSE of a mean or sd does not
    exist for a `heavy_tailed` quantity (its mean may be infinite): its table entries are NaN and only the
    MCSE of its quantiles is reported. Without `report_level`, only quantities without a `report`
    dimension are judged (a sensitivity variant's population quantities: the report θ_i are exact
    conditional draws given them), and the MCSE columns are left out."""
    posterior = idata["posterior"].to_dataset()
    if not report_level:
        posterior = posterior[[name for name, da in posterior.data_vars.items() if "report" not in da.dims]]
    labels, draws = _scalar_draws(posterior)
    columns = {
        "ess_bulk": array_stats.ess(draws, method="bulk"),
        # Stan's tail ESS (Vehtari et al. 2021): the smaller ESS of the 5% and 95% quantiles.
        "ess_tail": array_stats.ess(draws, method="tail", prob=(0.05, 0.95)),
        "r_hat": array_stats.rhat(draws, method="rank"),
    }
    if report_level:
        columns |= {"mcse_mean": array_stats.mcse(draws, method="mean"), "mcse_sd": array_stats.mcse(draws, method="sd"),
                    **{name: array_stats.mcse(draws, method="quantile", prob=prob) for name, prob in QUANTILE_MCSE.items()}}
    table = pd.DataFrame(columns, index=pd.Index(labels))
    heavy = [name for name in labels if name.split("[")[0] in heavy_tailed]
    if report_level:
        table.loc[heavy, ["mcse_mean", "mcse_sd"]] = np.nan
    diverging = idata["sample_stats"]["diverging"].values
    bfmi = tuple(float(v) for v in az.bfmi(idata)["energy"].values)
    return ConvergenceReport(table=table, divergences=int(np.sum(diverging)), bfmi=bfmi, thresholds=thresholds)


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
