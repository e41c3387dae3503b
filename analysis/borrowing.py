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
from analysis.intervals import describe, describe_weighted, rounded
from analysis.pipeline import AnalysisResult
from analysis.sampling import ModelCache, Seeds
from models import FAMILIES, joint
from models.borrowing import (
    BetaMixture,
    MixtureFit,
    box_conflict_p,
    ess_elir,
    ess_moment,
    fit_beta_mixture,
    robustify,
)


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


# --- numbers for summary.json ---------------------------------------------------------------------------


def summary_block(result: BorrowingResult, config: Config) -> dict:
    settings = config.borrowing
    target, prior, posterior = result.target, result.prior, result.posterior
    map_mixture = result.map_fit.mixture
    conflict_p = box_conflict_p(map_mixture, target.y, target.n)
    joint = result.joint
    theta_joint = joint.idata["posterior"]["theta_target"]
    return {
        "target_drug": target.drug,
        "route": "robust_map",
        "reports": list(target.report_ids),
        "y": target.y,
        "n": target.n,
        "robust_weight": settings.robust_weight,
        "vague_prior": list(settings.vague),
        "map_prior": {
            **_rounded(map_mixture.summary()),
            "mixture": [[rounded(v) for v in comp] for comp in map_mixture.components()],
            "draws": describe(result.map_draws),
            "fit": _fit_quality(result.map_fit),
        },
        "map_prior_ess": _ess(result.elir_fit, result.map_draws, None, settings),
        "robust_prior_ess": _ess(result.elir_fit, result.map_draws, settings.robust_weight, settings),
        "prior": _rounded(prior.summary()),
        "posterior_robust_weight": rounded(posterior.weights[-1]) if 0 < settings.robust_weight < 1 else settings.robust_weight,
        **_rounded(posterior.summary()),
        "p_above": {f"{c:g}": rounded(posterior.prob_above(c)) for c in settings.thresholds},
        "conflict_p": rounded(conflict_p),
        "conflict": bool(conflict_p < settings.conflict_alpha),
        "conflict_alpha": settings.conflict_alpha,
        "joint": {
            "model": "exnex",
            "nonexchangeable_weight": joint.weight,
            **describe(theta_joint),
            "p_above": {f"{c:g}": rounded((theta_joint.values > c).mean()) for c in settings.thresholds},
            "p_exchangeable": rounded(joint.idata["posterior"]["p_exchangeable"].mean()),
            "diagnostics": joint.convergence.as_dict(),
        },
        "sweep": [_sweep_row(result, w) for w in sorted(result.joint_fits)],
    }


def _sweep_row(result: BorrowingResult, weight: float) -> dict:
    fit = result.joint_fits[weight]
    two_step = robustify(result.map_fit.mixture, weight, result.vague).posterior(result.target.y, result.target.n)
    return {
        "weight": weight,
        "two_step": _rounded(two_step.summary()),
        "joint": {**describe(fit.idata["posterior"]["theta_target"]), "passed": fit.convergence.passed},
    }


def _ess(elir_fit: MixtureFit, draws: np.ndarray, weight: float | None, settings) -> dict:
    """ELIR on the a, b ≥ 1 fit, and the moment ESS from the draws (or the robust mixture's moments)."""
    mixture = elir_fit.mixture if weight is None else robustify(elir_fit.mixture, weight, settings.vague)
    # Moments of (1 − w)·MAP + w·Beta(vague), the MAP's taken from its draws (no mixture approximation).
    m, v, w = float(draws.mean()), float(draws.var()), weight or 0.0
    vague = BetaMixture.single(*settings.vague)
    mean = (1 - w) * m + w * vague.mean()
    second = (1 - w) * (v + m**2) + w * (vague.var() + vague.mean() ** 2)
    moment = ess_moment(mean, second - mean**2)
    # ELIR jumps at a or b = 1 (Beta(a, 1 + ε) has ELIR a + 1 + ε, Beta(a, 1) has 1), and a fit pressed
    # against that bound, or a poor one, makes the number meaningless rather than approximate.
    on_boundary = bool(np.any(elir_fit.mixture.a < 1.001) or np.any(elir_fit.mixture.b < 1.001))
    elir = ess_elir(mixture)
    reliable = elir_fit.ks_distance <= 0.02 and not on_boundary and elir > 0
    return {
        "elir": rounded(elir) if reliable else None,
        "moment": rounded(moment),
        "elir_fit_ks_distance": rounded(elir_fit.ks_distance),
        "elir_reliable": reliable,
        "note": "" if reliable else (
            "not reported: the MAP prior piles up at 0 or 1, where no Beta mixture with a, b >= 1 fits it "
            f"(KS distance {elir_fit.ks_distance:.3f}) and the ELIR integral is dominated by the boundary; "
            "read the moment ESS"
        ),
    }


def _fit_quality(fit: MixtureFit) -> dict:
    return {
        "components": len(fit.mixture.weights),
        "ks_distance": rounded(fit.ks_distance),
        "aic": {str(k): rounded(v, 2) for k, v in fit.aic.items()},
    }


def _rounded(summary: dict) -> dict:
    return {k: [rounded(x) for x in v] if isinstance(v, list) else rounded(v) for k, v in summary.items()}
