"""The target arm (naloxone by default) by two routes that fit the same model.

1. Two-step robust MAP prior (as in RBesT): θ_new draws of the fitted reports' model → Beta mixture
   (EM, AIC) → robustify with weight w → exact conjugate update with the target's counts.
2. Joint EXNEX model: the target enters the reports' PyMC model, exchangeable with probability 1 − w.

Both are run for the configured w and for every w of the sweep; the joint model reuses one compiled
sampler for the whole sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from analysis.config import Config
from analysis.data import EvidenceTable, select_counts
from analysis.diagnostics import ConvergenceReport, check_convergence
from analysis.intervals import describe_weighted
from analysis.pipeline import AnalysisResult
from analysis.sampling import ModelCache, Seeds
from models import FAMILIES, joint
from models.borrowing import BetaMixture, MixtureFit, fit_beta_mixture, robustify


@dataclass(frozen=True)
class TargetArm:
    drug: str
    report_ids: tuple[str, ...]
    y: int
    n: int


@dataclass(frozen=True)
class JointFit:
    weight: float
    idata: xr.DataTree
    """posterior (population parameters, θ_target, p_exchangeable) and sample_stats."""
    convergence: ConvergenceReport


@dataclass(frozen=True)
class BorrowingResult:
    target: TargetArm
    weight: float
    vague: tuple[float, float]
    map_draws: np.ndarray
    map_fit: MixtureFit
    """Unconstrained Beta-mixture fit of the MAP prior: used for the update."""
    elir_fit: MixtureFit
    """Fit constrained to a, b ≥ 1, on which the ELIR ESS is defined."""
    joint_fits: dict[float, JointFit]

    @property
    def prior(self) -> BetaMixture:
        return robustify(self.map_fit.mixture, self.weight, self.vague)

    @property
    def posterior(self) -> BetaMixture:
        return self.prior.posterior(self.target.y, self.target.n)

    @property
    def joint(self) -> JointFit:
        return self.joint_fits[self.weight]


def target_arm(config: Config, table: EvidenceTable) -> TargetArm | None:
    """The target drug's included reports for the outcome, pooled into one arm (None if there are none)."""
    data = select_counts(table, config.data.outcome, config.borrowing.target_drug)
    if len(data) == 0:
        return None
    return TargetArm(config.borrowing.target_drug, data.report_ids, int(data.y.sum()), int(data.n.sum()))


def run_borrowing(config: Config, primary: AnalysisResult, target: TargetArm, cache: ModelCache) -> BorrowingResult:
    settings = config.borrowing
    draws = primary.idata["posterior"]["theta_new"].values.ravel()
    weights = sorted(set(settings.weight_sweep) | {settings.robust_weight})
    joint_fits = {w: fit_joint(config, primary, target, w, cache) for w in weights}
    return BorrowingResult(
        target=target,
        weight=settings.robust_weight,
        vague=settings.vague,
        map_draws=draws,
        map_fit=fit_beta_mixture(draws, settings.max_components, constrain_gt1=False),
        elir_fit=fit_beta_mixture(draws, settings.max_components, constrain_gt1=True),
        joint_fits=joint_fits,
    )


def fit_joint(config: Config, primary: AnalysisResult, target: TargetArm, weight: float, cache: ModelCache) -> JointFit:
    family, prior = config.model.family, config.model.prior
    vague = config.borrowing.vague
    seeds = Seeds(config.sampling.seed)
    spec = joint.model_spec(family, primary.reports, target.y, target.n, prior, weight, vague)
    trace = cache.sample(spec, config.sampling, seed=seeds.integer(f"joint {weight}"))
    posterior = trace["posterior"].to_dataset()
    derived = joint.derive_target(family, posterior, target.y, target.n, weight, vague, seeds.rng(f"joint {weight}"))
    idata = xr.DataTree.from_dict(
        {"posterior": posterior.merge(derived), "sample_stats": trace["sample_stats"].to_dataset()}
    )
    return JointFit(weight=weight, idata=idata,
                    convergence=check_convergence(idata, config.diagnostics, FAMILIES[family].heavy_tailed))


def reweighted_target(config: Config, primary: AnalysisResult, target: TargetArm, weight: float) -> dict:
    """θ_target under the joint EXNEX model from the reports' posterior alone, by weighting its draws with
    p(y_target | population) (`models.joint.target_log_likelihood`): the same model as `fit_joint`
    without a second fit, for the sensitivity sweep."""
    family, vague = config.model.family, config.borrowing.vague
    posterior = primary.idata["posterior"]
    rng = Seeds(config.sampling.seed).rng(f"reweighted target {weight}")
    theta = joint.derive_target(family, posterior, target.y, target.n, weight, vague, rng)["theta_target"]
    log_weights = joint.target_log_likelihood(family, posterior, target.y, target.n, weight, vague)
    return describe_weighted(theta, log_weights)
