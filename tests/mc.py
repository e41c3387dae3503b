"""Monte Carlo tolerances: an MCMC estimate may differ from the exact value by a few of its own MCSEs."""

import arviz as az
import numpy as np
import xarray as xr

# 4 MCSE: a correct sampler fails this with probability about 6e-5 per comparison (normal MC error).
MCSE_MULTIPLE = 4.0


def estimate_and_mcse(draws: xr.DataArray, statistic: str, prob: float | None = None) -> tuple[float, float]:
    if statistic == "mean":
        return float(draws.mean()), float(az.mcse(draws, method="mean"))
    value = float(np.quantile(draws.values, prob))
    return value, float(az.mcse(draws, method="quantile", prob=prob))


def assert_matches(draws: xr.DataArray, exact: float, statistic: str = "mean", prob: float | None = None,
                   extra: float = 0.0, label: str = "") -> None:
    """|estimate − exact| ≤ 4 MCSE (+ `extra`, a stated, independent error of the exact value)."""
    value, mcse = estimate_and_mcse(draws, statistic, prob)
    bound = MCSE_MULTIPLE * mcse + extra
    assert abs(value - exact) <= bound, f"{label} {statistic}{'' if prob is None else prob}: {value:.5f} vs exact {exact:.5f} (allowed ±{bound:.5f}, MCSE {mcse:.5f})"
