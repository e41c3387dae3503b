"""Prior sensitivity by power scaling (Kallioinen et al. 2023): how much the posterior of each population
parameter moves when the prior, or the likelihood, is raised to a power near 1 (arviz-stats `psense`)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import arviz_stats
import pymc as pm
import xarray as xr

from analysis.inputs.config import Config
from analysis.results import Primary
from models.families import FAMILIES


def analyse(config: Config, primary: Primary) -> tuple[tuple[dict, ...], xr.DataTree]:
    """The psense table (parameter, prior, likelihood, diagnosis) and the DataTree it was computed on
    (posterior, log_likelihood, log_prior: what `plot_psense_dist` draws)."""
    family = FAMILIES[config.model.family]
    names = list(family.plotted_parameters)
    posterior = primary.idata["posterior"].to_dataset()[names]
    model = family.build_model(primary.reports_input, config.model.prior)
    tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": primary.idata["log_likelihood"].to_dataset()})
    log_prior = pm.stats.compute_log_prior(tree, model=model, extend_inferencedata=False, progressbar=False)
    tree = xr.DataTree.from_dict({**{k: tree[k].to_dataset() for k in ("posterior", "log_likelihood")},
                                  "log_prior": log_prior})
    advice = logging.getLogger("arviz_stats.psense")
    level, advice.level = advice.level, logging.ERROR  # its advice is logged; the diagnosis column carries it
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            summary = arviz_stats.psense_summary(tree, prior_var_names=names)
    finally:
        advice.setLevel(level)
    rows = tuple({"parameter": str(p), "prior": float(r["prior"]), "likelihood": float(r["likelihood"]),
                  "diagnosis": str(r["diagnosis"])} for p, r in summary.iterrows())
    return rows, tree
