"""Report-level covariates for meta-regression: computed from the evidence table, checked, centred and
scaled once, so that every model and output uses the same design.

Scaling follows Gelman et al. (2008): a binary covariate is centred; a continuous one is centred and
divided by two standard deviations, so that one prior scale (`slope_sd`) suits both. Slopes are
reported per natural unit (per unit of log n, per year; 1 against 0 for a binary covariate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.errors import InputError

LOW_START_DOSE_MG = 4.5


@dataclass(frozen=True)
class Covariate:
    label: str
    unit: str
    binary: bool
    column: str
    """The evidence column it is computed from (named in error messages)."""
    value: Callable[[pd.DataFrame], pd.Series]
    """From the reports' rows to one value per report (NaN where unknown)."""


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    values = frame[column] if column in frame else pd.Series("", index=frame.index)
    return pd.to_numeric(values.replace("", np.nan), errors="coerce")


COVARIATES: dict[str, Covariate] = {
    "log_n": Covariate("report size (log n)", "per unit of log n (a 2.7-fold larger report)", False, "n_treated",
                       lambda f: np.log(_numeric(f, "n_treated"))),
    "single_patient": Covariate("single-patient report", "single patient vs series", True, "n_treated",
                                lambda f: (_numeric(f, "n_treated") == 1).astype(float)),
    "secondary_source": Covariate("secondary source", "read from a secondary source vs primary", True, "source_level",
                                  lambda f: f["source_level"].str.startswith("secondary").astype(float)
                                  .where(f["source_level"] != "")),
    "low_start_dose": Covariate(f"starting dose ≤ {LOW_START_DOSE_MG:g} mg/day", f"starting dose ≤ "
                                f"{LOW_START_DOSE_MG:g} mg/day vs higher", True, "dose_mg_min",
                                lambda f: (_numeric(f, "dose_mg_min") <= LOW_START_DOSE_MG).astype(float)
                                .where(_numeric(f, "dose_mg_min").notna())),
    "year": Covariate("publication year", "per year", False, "year", lambda f: _numeric(f, "year")),
}
COVARIATE_NAMES = tuple(COVARIATES)


@dataclass(frozen=True)
class Design:
    """The covariate matrix of one analysis: natural values, and the centring and scale of each column."""

    names: tuple[str, ...]
    raw: np.ndarray
    centre: np.ndarray
    scale: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """What the model sees: (raw − centre) / scale."""
        return self.encode(self.raw)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, dtype=float) - self.centre) / self.scale

    def natural_slopes(self, beta: np.ndarray) -> np.ndarray:
        """Model slopes (trailing axis: covariates) per natural unit of each covariate."""
        return beta / self.scale


def covariate_values(rows: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """One column per covariate, one row per report (NaN where a report gives no usable value)."""
    return pd.DataFrame({name: COVARIATES[name].value(rows).astype(float).to_numpy() for name in names})


def missing_reports(rows: pd.DataFrame, names: tuple[str, ...], path) -> list[str]:
    """One line per report and covariate without a value, naming file, report and column."""
    values = covariate_values(rows, names)
    return [f"{path}: report_id {rid}, column {COVARIATES[name].column}: no value for covariate '{name}' "
            f"({COVARIATES[name].label}); set model.covariate_missing = \"drop\" to leave such reports out"
            for i, rid in enumerate(rows["report_id"]) for name in names if np.isnan(values[name].iloc[i])]


def build_design(rows: pd.DataFrame, names: tuple[str, ...], path) -> Design:
    """The design of the pooled reports; refuses missing values and covariates that do not vary."""
    problems = missing_reports(rows, names, path)
    if problems:
        raise InputError(problems)
    raw = covariate_values(rows, names).to_numpy()
    constant = [name for name, column in zip(names, raw.T) if np.ptp(column) == 0]
    if constant:
        raise InputError([f"{path}: covariate '{name}' has the same value in every pooled report, so its slope "
                          "cannot be estimated" for name in constant])
    centre = raw.mean(axis=0)
    scale = np.array([1.0 if COVARIATES[name].binary else 2 * column.std(ddof=0) for name, column in zip(names, raw.T)])
    return Design(tuple(names), raw, centre, scale)
