"""Results of the target arm (naloxone by default): its own counts without borrowing, and with the
reports' predictive distribution as a robust prior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Convergence, Estimate, Result, internal


@dataclass(frozen=True)
class Conflict(Result):
    """Box's prior predictive p-value for the target's counts, and what the check can show at all with
    this arm's size: every possible count's p-value, the smallest, and the counts that would flag a
    conflict."""

    p: float
    alpha: float
    flagged: bool
    possible_p: tuple[float, ...]
    min_p: float
    has_power: bool
    flagging_counts: tuple[int, ...]


@dataclass(frozen=True)
class WeightRow(Result):
    weight: float
    exact: Estimate
    """The robust MAP prior with the exact MAP prior (= the joint EXNEX model), updated with the counts."""
    two_step: Estimate
    """RBesT's route: the MAP prior approximated by a fitted Beta mixture, robustified, updated."""


@dataclass(frozen=True)
class TargetArm(Result):
    target_drug: str
    reports: tuple[str, ...]
    y: int
    n: int
    robust_weight: float
    vague_prior: tuple[float, float]
    unborrowed: Estimate
    posterior: Estimate
    """θ_target under the robust prior, exactly (the answer)."""
    posterior_robust_weight: float
    """Posterior probability that the arm is not exchangeable with the reports (the vague component)."""
    p_above: dict[str, float]
    map_prior_ess: dict[str, Any]
    """Moment ESS (exact moments) and the ELIR ESS of a normal-mixture fit to logit θ_new, with its fit."""
    robust_prior_ess: float
    map_fit: dict[str, Any]
    """The fitted Beta mixture of RBesT's route: components, KS distance, AIC."""
    conflict: Conflict
    posterior_map_distance: float
    """Total-variation distance between the posterior and the MAP prior (0: the counts changed nothing)."""
    sweep: tuple[WeightRow, ...]
    joint_check: dict[str, Any]
    """The joint model by NUTS beside the exact answer: its estimate, the difference, its gate."""
    joint_convergence: Convergence
    safety: Any
    densities: dict[str, list[float]]
    """θ, and at each θ the MAP prior, the robust prior, the arm's likelihood (normalised) and the
    posterior densities, exact (for the figures)."""
    idata: Any = internal()
    mixtures: Any = internal()
