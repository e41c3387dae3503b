"""What every model takes and gives: the reports it sees, and the recipe of a compiled program."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Reports:
    """What a model sees of the evidence: responders `y` of `n` treated per report; optional report-level
    covariates (one column each, centred and scaled by the caller); which reports a publication-selection
    mechanism applies to (`selected`) and its weight ω (`publication_weight`, 1 = no selection)."""

    y: np.ndarray
    n: np.ndarray
    covariates: np.ndarray | None = None
    selected: np.ndarray | None = None
    publication_weight: float = 1.0
    multiplicity: np.ndarray | None = None
    """How many reports each row stands for (1 each unless `compressed`)."""

    def __post_init__(self) -> None:
        y, n = np.asarray(self.y, dtype=np.int64), np.asarray(self.n, dtype=np.int64)
        covariates = np.zeros((y.size, 0)) if self.covariates is None else np.asarray(self.covariates, dtype=float)
        selected = np.zeros(y.size, dtype=bool) if self.selected is None else np.asarray(self.selected, dtype=bool)
        multiplicity = np.ones(y.size) if self.multiplicity is None else np.asarray(self.multiplicity, dtype=float)
        for name, value in {"y": y, "n": n, "covariates": covariates, "selected": selected,
                            "multiplicity": multiplicity}.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "publication_weight", float(self.publication_weight))

    def __len__(self) -> int:
        return int(self.y.size)

    @property
    def n_covariates(self) -> int:
        return int(self.covariates.shape[1])

    def subset(self, keep) -> "Reports":
        """The reports where `keep` is true (a boolean mask or indices), everything else unchanged."""
        return Reports(self.y[keep], self.n[keep], self.covariates[keep], self.selected[keep], self.publication_weight,
                       self.multiplicity[keep])

    def with_weight(self, weight: float) -> "Reports":
        return Reports(self.y, self.n, self.covariates, self.selected, weight, self.multiplicity)

    def compressed(self) -> "Reports":
        """One row per distinct (y, n, covariates, in scope of selection), its `multiplicity` the reports it
        stands for: the same likelihood (each report's term times its count), at a cost that grows with the
        distinct rows rather than the reports (at most 495 for reports of 1 to 30 patients)."""
        first, row = distinct_rows(np.column_stack([self.y, self.n, self.covariates, self.selected]))
        counts = np.bincount(row, weights=self.multiplicity, minlength=first.size)
        return Reports(self.y[first], self.n[first], self.covariates[first], self.selected[first],
                       self.publication_weight, counts)

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """(first, row): the index of the first report of each distinct (y, n, covariates) row, and each
        report's position among those rows. Reports that share a row have the same posterior θ and the
        same leave-one-out term, so those are computed once per row (a thousand case reports hold a few
        hundred distinct rows)."""
        return distinct_rows(np.column_stack([self.y, self.n, self.covariates]))


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first index of each distinct row and each row's position among them (rows in sorted order)."""
    _, first, row = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, row.ravel()


@dataclass(frozen=True)
class ReportEffects:
    """A model's report effects z_i ~ Normal(0, I_k) that enter only their own report's likelihood: its
    population parameters' posterior can then be integrated report by report (`analysis.engine.effects`).
    `log_likelihood(population, z, rows)` and `outputs(population, z)` build PyTensor graphs from the
    population variables (constrained, by name), effects z (rows, k) and the per-report data `rows`
    (rows, ...): the likelihood of each row (rows,) and quantities of each report at its effects (rows, m).
    The model uses the same functions, so it stays the single definition."""

    variable: str
    """The effects' variable (report, k), sampled untransformed."""
    population: tuple[str, ...]
    """The population variables the likelihood and outputs read."""
    rows: tuple[str, ...]
    """The `pm.Data` values with one row per report."""
    log_likelihood: Callable
    outputs: Callable


@dataclass(frozen=True)
class ModelSpec:
    """What a program cache needs: a structure key, how to build the model, and the values to swap in."""

    key: tuple
    build: Callable = field(compare=False)
    values: dict = field(compare=False)
    initial_point: dict = field(compare=False)
    reports: int = field(compare=False, default=0)
    """The real number of reports: draws along the padded `report` dimension beyond it are dropped."""
    effects: ReportEffects | None = field(compare=False, default=None)
    """Report effects that can be integrated report by report (None: the model has none, or they do not
    separate)."""
