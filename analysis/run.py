"""Everything one command computes, in memory: the primary analysis and its checks, the naloxone arm,
the graded outcomes, the bias analyses, the sensitivity sweep. The report renders a `Run`; nothing here
writes a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import bias, checks
from analysis.borrowing import BorrowingResult, run_borrowing, target_arm
from analysis.config import Config
from analysis.covariates import covariate_values
from analysis.data import BinomialData, EvidenceTable
from analysis.errors import InputError
from analysis.graded import GradedResult, run_graded
from analysis.pipeline import AnalysisResult, run_analysis
from analysis.sampling import Seeds
from analysis.timing import Stopwatch
from models import FAMILIES, Reports


@dataclass(frozen=True)
class Run:
    config: Config
    table: EvidenceTable
    data: BinomialData
    result: AnalysisResult
    loo: dict
    """PSIS-LOO with exact refits of the reports of Pareto k > 0.7, and the complete-pooling comparison."""
    psis: object
    """ArviZ's ELPDData (for the Pareto k figure)."""
    loo_pit: np.ndarray
    borrowing: BorrowingResult | str | None
    """The target arm, the sentence saying why it was not computed, or None (disabled)."""
    graded: GradedResult | None
    cumulative: dict | None
    """{"steps": [...], "first_seen": {"moved": {report: year}, "steps": [...]} or None, "note": why the
    covariates were left out, or None}, or None."""
    sweep: pd.DataFrame | None
    """The sensitivity sweep's table, or None when it was not run (a draft report)."""
    psense: pd.DataFrame | None
    sensitivity_note: str
    """Why the sweep was not run ("" when it was)."""


def run_all(config: Config, table: EvidenceTable, data: BinomialData, cache, clock: Stopwatch,
            sensitivity: bool, sensitivity_note: str = "", progress: bool = False, data_path=None) -> Run:
    """Each phase timed under its own name in `clock`."""
    with clock.phase("fit"):
        result = run_analysis(config, data, cache, progress=progress)
        psis = checks.psis_loo(result.idata)
        loo = checks.loo_summary(psis, exact_loo(config, data, psis, cache),
                                 checks.complete_pooling_loo(data.y, data.n))
        loo_pit = checks.randomised_loo_pit(result.idata, psis, Seeds(config.sampling.seed).rng("loo pit"))
    borrowing = None
    if config.borrowing.enabled:
        target = target_arm(config, table)
        if config.model.covariates:
            borrowing = (f"the {config.borrowing.target_drug} arm is computed without covariates only (it would need "
                         "the target's own covariate values)")
        elif target is None:
            borrowing = (f"no included report of drug '{config.borrowing.target_drug}' has a count in column "
                         f"n_{config.data.outcome}; the {config.borrowing.target_drug} arm was not computed")
        else:
            with clock.phase("borrowing"):
                borrowing = run_borrowing(config, result, target, cache)
    graded = None
    if config.graded.enabled:
        with clock.phase("graded"):
            graded = run_graded(config, table, cache)
    cumulative = None
    if config.cumulative.enabled:
        with clock.phase("cumulative"):
            cumulative = cumulative_analysis(config, data, cache)
    sweep = psense = None
    if sensitivity:
        from analysis import sensitivity as sweep_module
        from analysis.executors import InProcessExecutor

        with clock.phase("sensitivity"):
            variants = sweep_module.discover_variants(data_path, config.sampling.seed)
            executor = InProcessExecutor(threads=config.sampling.cores)
            sweep = sweep_module.run_sweep(variants, executor, primary=result, primary_graded=graded)
            psense = sweep_module.prior_sensitivity(config, result)
    return Run(config, table, data, result, loo, psis, loo_pit, borrowing, graded, cumulative, sweep, psense,
               sensitivity_note)


def exact_loo(config: Config, data: BinomialData, psis, cache) -> dict[str, float]:
    """log p(y_i | y_−i) by refitting without report i, for every report whose Pareto k exceeds 0.7 (PSIS
    is unreliable there, and a refit costs a fraction of a second)."""
    family = FAMILIES[config.model.family]
    exact = {}
    if len(data) < 2:
        return exact
    for i, rid in enumerate(str(r) for r in psis.pareto_k["report"].values):
        if float(psis.pareto_k.values[i]) <= checks.PARETO_K_UNRELIABLE:
            continue
        keep = np.arange(len(data)) != i
        try:
            refit = run_analysis(config, data.subset(keep), cache, checks=False)
        except InputError:  # without report i a covariate is constant: no slope to refit, PSIS stands
            continue
        held = data.subset(~keep)
        covariates = None if refit.design is None else refit.design.encode(
            covariate_values(held.rows, refit.design.names).to_numpy())  # the refit's own centring
        held_out = Reports(held.y, held.n, covariates)
        exact[rid] = checks.exact_loo_term(family.log_marginal_draws(refit.idata["posterior"], held_out))
    return exact


def cumulative_analysis(config: Config, data: BinomialData, cache) -> dict | None:
    """The cumulative meta-analysis by publication year, and again with reports of uncertain year moved to
    the year they were first seen (when the config names any that these data hold). A meta-regression's
    covariates are left out: the early steps hold too few reports to estimate a slope."""
    note = None
    if config.model.covariates:
        config = config.model_copy(update={"model": config.model.model_copy(update={"covariates": ()})})
        note = "without the covariates (the early steps hold too few reports to estimate their slopes)"
    steps = bias.cumulative(config, data, cache)
    if not steps:
        return None
    moved = bias.first_seen_years(config, data)
    alternative = {"moved": moved, "steps": bias.cumulative(config, data, cache, moved)} if moved else None
    return {"steps": steps, "first_seen": alternative, "note": note}
