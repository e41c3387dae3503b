"""From the evidence to the next study: exact operating characteristics and assurance.

The design prior for θ in a new setting is the synthesis's own predictive distribution: exactly a mixture
of Beta(μκ, (1 − μ)κ) over the primary grid (no selection), over the grid at each publication scenario,
and over the ω-averaged posterior. Because the published response rate is partly selective publication,
the chance that a confirmatory study succeeds depends on how much of it is: the assurance is given under
each. All sums are exact (binomial and beta-binomial; `models.design`).
"""

from __future__ import annotations

import numpy as np

from analysis.engine.quadrature import Exact
from analysis.inputs.config import DesignSettings
from analysis.results import Primary
from analysis.results.borrowing import TargetArm
from analysis.results.clinical import Durability
from analysis.results.design import Design, Interim, SingleArm, TargetStudy, Withdrawal
from analysis.results.publication import Publication
from analysis.steps import estimates as est
from models import design
from models.mixtures import BetaMixture, fit_beta_mixture, robustify

THETA = np.linspace(0.0, 1.0, 101)
PRUNE = 1e-10
"""Grid nodes below this share of the largest weight are left out of a design prior (their mass is
negligible; fewer components make the beta-binomial sums cheaper)."""


PRIOR_SAMPLE_SEED = 20261204
"""For a family without an exact Beta mixture, the draws the design prior is fitted to come from this fixed
seed, not the run's, so that the design numbers are the same at any seed."""


def design_prior(exact: Exact) -> BetaMixture:
    """θ of a new setting as a Beta mixture: exactly over the grid for the beta-binomial; for another
    family, a Beta mixture fitted to draws from its exact predictive (RBesT's route)."""
    rng = np.random.default_rng(PRIOR_SAMPLE_SEED)
    weights = exact.grid.weights
    keep = weights > PRUNE * weights.max()
    values = {k: v[keep] for k, v in exact.values.items()}
    if "kappa" in values:
        return design.mean_precision_mixture(weights[keep], values["mu"], values["kappa"])
    chosen = rng.choice(int(keep.sum()), size=8000, p=weights[keep] / weights[keep].sum())
    theta = 1 / (1 + np.exp(-(values["mu"][chosen] + values["tau"][chosen] * rng.standard_normal(chosen.size))))
    return fit_beta_mixture(theta, 4, constrain_gt1=False).mixture


def _criteria(settings: DesignSettings, benchmark: float) -> list[design.Criterion]:
    criteria = [design.Criterion(benchmark, settings.probability)]
    if settings.relevance is not None:
        criteria.append(design.Criterion(settings.relevance, 0.5))
    return criteria


def single_arm(settings: DesignSettings, priors: dict[str, BetaMixture]) -> SingleArm:
    analysis = BetaMixture.single(*settings.analysis_prior)
    criteria = _criteria(settings, settings.benchmark)
    largest = max(settings.sizes)
    return SingleArm(
        benchmark=settings.benchmark, probability=settings.probability, relevance=settings.relevance,
        analysis_prior=tuple(settings.analysis_prior), sizes=tuple(settings.sizes),
        critical={str(n): design.critical_count(analysis, n, criteria) for n in settings.sizes},
        false_success={str(n): float(design.operating_characteristics(analysis, n, criteria, [settings.benchmark])[0])
                       for n in settings.sizes},
        assurance={name: {str(n): design.assurance(analysis, n, criteria, prior) for n in settings.sizes}
                   for name, prior in priors.items()},
        theta=tuple(THETA.tolist()),
        oc={str(n): tuple(design.operating_characteristics(analysis, n, criteria, THETA).tolist()) for n in settings.sizes},
        benchmark_sensitivity={name: {f"{b:g}": design.assurance(analysis, largest, _criteria(settings, b), prior)
                                      for b in settings.benchmarks} for name, prior in priors.items()})


def target_study(settings: DesignSettings, arm: TargetArm) -> TargetStudy:
    """The arm's next study analysed with RBesT's robust MAP prior (the fitted Beta mixture, robustified)
    against a flat prior."""
    em = BetaMixture(*np.array(arm.map_fit["components"]).T)
    priors = {"robust_map": robustify(em, arm.robust_weight, arm.vague_prior),
              "flat": BetaMixture.single(*arm.vague_prior)}
    criteria = _criteria(settings, settings.benchmark)
    at = float(arm.posterior.mean)
    return TargetStudy(
        drug=arm.target_drug, benchmark=settings.benchmark, sizes=tuple(settings.target_sizes), power_at=at,
        power={name: {str(n): float(design.operating_characteristics(p, n, criteria, [at])[0])
                      for n in settings.target_sizes} for name, p in priors.items()},
        false_success={name: {str(n): float(design.operating_characteristics(p, n, criteria, [settings.benchmark])[0])
                              for n in settings.target_sizes} for name, p in priors.items()})


def interim(settings: DesignSettings) -> Interim:
    prior = BetaMixture.single(*settings.analysis_prior)
    looks = [n for n in settings.interim_looks if n < settings.interim_max]
    boundaries = design.interim_boundaries(looks, settings.interim_max, prior, settings.benchmark,
                                           settings.interim_final_probability, settings.interim_futility,
                                           settings.interim_efficacy)
    return Interim(settings.interim_max, settings.interim_final_probability, settings.interim_futility,
                   settings.interim_efficacy, tuple({"n": b.n, "futility": b.futility, "efficacy": b.efficacy}
                                                    for b in boundaries))


def withdrawal(settings: DesignSettings, durability: Durability) -> Withdrawal | None:
    """Design priors from the dechallenge data: flares after stopping (a stopped patient per report that
    stopped without a flare) and losses of response on the drug; None when neither was observed."""
    totals = durability.dechallenge.totals
    loss = durability.loss_on_treatment
    flare_events = totals.patients_positive_dechallenge
    flare_patients = flare_events + totals.reports_negative_dechallenge
    if flare_patients == 0 or loss.responders_graded == 0:
        return None
    stop = design.discounted_design_prior(flare_events, flare_patients, settings.withdrawal_power)
    keep = design.discounted_design_prior(loss.lost, loss.responders_graded, settings.withdrawal_power)
    return Withdrawal(
        flare_off={"events": flare_events, "patients": flare_patients},
        loss_on={"events": loss.lost, "patients": loss.responders_graded},
        discount=settings.withdrawal_power, probability=settings.withdrawal_probability,
        sizes=tuple(settings.withdrawal_sizes), design_means={"stop": stop.mean(), "continue": keep.mean()},
        power_at_means={str(n): design.withdrawal_power(n, stop.mean(), keep.mean(), settings.withdrawal_probability)
                        for n in settings.withdrawal_sizes},
        assurance={str(n): design.withdrawal_assurance(n, stop, keep, settings.withdrawal_probability)
                   for n in settings.withdrawal_sizes})


def analyse(settings: DesignSettings, primary: Primary, publication: Publication | None, arm: TargetArm | None,
            durability: Durability) -> Design | None:
    """None when the primary posterior has no grid (a model too large for exact design priors)."""
    if primary.exact is None:
        return None
    exacts = {"no selection": primary.exact}
    if publication is not None:
        for scenario in publication.scenarios:
            if scenario.mechanism == "all_responders":
                exacts[f"omega {scenario.weight:g}"] = publication.grids.exact(scenario.weight)
        exacts["omega averaged"] = publication.averaged.exact
    priors = {name: design_prior(exact) for name, exact in exacts.items()}
    summaries = {name: est.of_mixture(prior) for name, prior in priors.items()}
    return Design(
        single_arm=single_arm(settings, priors),
        target=None if arm is None else target_study(settings, arm),
        interim=interim(settings), withdrawal=withdrawal(settings, durability),
        design_priors={name: {"mean": s.mean, "lo": s.lo, "hi": s.hi} for name, s in summaries.items()})
