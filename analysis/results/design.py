"""Results of the study-design step: what the synthesis implies for the next study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Result


@dataclass(frozen=True)
class SingleArm(Result):
    """A single-arm study judged against the benchmark: per size the critical count, the false-success rate
    at the benchmark and the assurance under each design prior; the operating characteristics over θ."""

    benchmark: float
    probability: float
    relevance: float | None
    analysis_prior: tuple[float, float]
    sizes: tuple[int, ...]
    critical: dict[str, int | None]
    false_success: dict[str, float]
    assurance: dict[str, dict[str, float]]
    """{design prior: {size: assurance}}."""
    theta: tuple[float, ...]
    oc: dict[str, tuple[float, ...]]
    """{size: P(success | θ) over `theta`}."""
    benchmark_sensitivity: dict[str, dict[str, float]]
    """{design prior: {benchmark: assurance at the largest size}}."""


@dataclass(frozen=True)
class TargetStudy(Result):
    """The target arm's next study with the robust MAP prior as its analysis prior, beside a flat prior:
    the power borrowing buys and the false-success rate it costs at the benchmark."""

    drug: str
    benchmark: float
    sizes: tuple[int, ...]
    power_at: float
    """The θ at which power is shown: the target arm's exact posterior mean."""
    power: dict[str, dict[str, float]]
    """{"robust_map" | "flat": {size: P(success | θ = power_at)}}."""
    false_success: dict[str, dict[str, float]]
    """{"robust_map" | "flat": {size: P(success | θ = benchmark)}}."""


@dataclass(frozen=True)
class Interim(Result):
    """Lee & Liu's predictive-probability monitoring of the single-arm study."""

    n_max: int
    final_probability: float
    futility: float
    efficacy: float
    boundaries: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Withdrawal(Result):
    """A randomised withdrawal (illustrative): responders randomised to stop or continue; design priors for
    flare off the drug and loss of response on it from the dechallenge data, discounted by a power prior."""

    flare_off: dict[str, int]
    loss_on: dict[str, int]
    discount: float
    probability: float
    sizes: tuple[int, ...]
    design_means: dict[str, float]
    power_at_means: dict[str, float]
    assurance: dict[str, float]


@dataclass(frozen=True)
class Design(Result):
    single_arm: SingleArm
    target: TargetStudy | None
    interim: Interim
    withdrawal: Withdrawal | None
    design_priors: dict[str, dict[str, float]]
    """Each design prior's mean and 95% interval for θ of a new setting."""
