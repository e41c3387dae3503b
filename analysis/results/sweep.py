"""The sensitivity sweep: every variant's estimates beside the primary analysis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Estimate, Result


@dataclass(frozen=True)
class VariantRow(Result):
    """One variant's row. `kind` separates the two questions the sweep answers: "bias" (if publication were
    selective) and "choice" (if an analysis choice were different); `estimand` says whether the row
    estimates the primary estimand (only those have a shift)."""

    variant: str
    group: str
    kind: str
    description: str
    estimand: str
    status: str
    error: str
    outcome: str | None = None
    model: str | None = None
    reports: int | None = None
    patients: int | None = None
    responders: int | None = None
    pooled: Estimate | None = None
    predictive: Estimate | None = None
    target: Estimate | None = None
    """The target arm (naloxone) under this variant, when it has one."""
    pooled_shift: float | None = None
    predictive_shift: float | None = None
    target_shift: float | None = None
    identical_to: tuple[str, ...] = ()
    """Other leave-one-out rows with exactly the same result (reports of the same counts)."""


@dataclass(frozen=True)
class Sweep(Result):
    status: str
    note: str
    variants: tuple[VariantRow, ...]
    psense: tuple[dict[str, Any], ...] | None
