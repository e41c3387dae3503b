"""The convergence gate: R-hat, bulk and tail ESS for every parameter and derived quantity, divergences.

Results are data (a table and a verdict); the command decides what to print and which exit code to use.
"""

from __future__ import annotations

from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from analysis.config import DiagnosticsSettings


@dataclass(frozen=True)
class ConvergenceReport:
    table: pd.DataFrame
    """One row per scalar quantity: ess_bulk, ess_tail, r_hat, mcse_mean, mcse_sd."""
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


def check_convergence(idata: xr.DataTree, thresholds: DiagnosticsSettings) -> ConvergenceReport:
    """Diagnostics of every posterior quantity except those constant across all draws (a quantity fixed
    by the model, e.g. a probability of exactly 1, has no Monte Carlo error and no defined R-hat)."""
    posterior = idata["posterior"].to_dataset()
    varying = [name for name, da in posterior.data_vars.items() if np.ptp(da.values) > 0]
    table = az.summary(posterior[varying], kind="diagnostics", round_to="none")
    diverging = idata["sample_stats"]["diverging"].values
    bfmi = tuple(float(v) for v in az.bfmi(idata)["energy"].values)
    return ConvergenceReport(table=table, divergences=int(np.sum(diverging)), bfmi=bfmi, thresholds=thresholds)


def _names(index: pd.Index, shown: int = 5) -> str:
    names = list(index)
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
