"""One analysis, in memory: sample, derive report-level and predictive quantities, predictive checks, gate.

`run_analysis` does no file I/O, so the command, sensitivity variants and calibration runs share it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

from analysis.config import Config
from analysis.covariates import Design, build_design
from analysis.data import BinomialData
from analysis.diagnostics import ConvergenceReport, check_convergence
from analysis.sampling import ModelCache, Seeds
from models import FAMILIES, Reports, model_spec
from models.publication import in_scope


@dataclass(frozen=True)
class AnalysisResult:
    config: Config
    data: BinomialData
    reports: Reports
    """What the model saw: counts, centred covariates, the publication scope and weight."""
    design: Design | None
    """The covariates in natural units (meta-regression), or None."""
    idata: xr.DataTree
    """Groups: posterior (with derived θ_i, θ_new, pooled), sample_stats, prior, prior_predictive,
    posterior_predictive, observed_data, constant_data, log_likelihood."""
    convergence: ConvergenceReport


def model_reports(config: Config, data: BinomialData) -> tuple[Reports, Design | None]:
    """The counts as the model takes them, with the config's covariates and publication mechanism."""
    design = build_design(data.rows, config.model.covariates, config.data.path) if config.model.covariates else None
    publication = config.model.publication
    reports = Reports(data.y, data.n, None if design is None else design.matrix,
                      in_scope(publication.mechanism, data.n), publication.weight)
    return reports, design


def run_analysis(config: Config, data: BinomialData, cache: ModelCache, progress: bool = False,
                 checks: bool = True) -> AnalysisResult:
    """Fit, derive and gate; with `checks`, also the prior and posterior predictive draws and the
    integrated log-likelihood that the predictive checks and PSIS-LOO need, and the gate over every
    report's θ_i with the MCSE table (a sensitivity variant or a cumulative step needs only the posterior
    and its population quantities)."""
    family = FAMILIES[config.model.family]
    prior = config.model.prior
    seeds = Seeds(config.sampling.seed)
    reports, design = model_reports(config, data)

    spec = model_spec(config.model.family, reports, prior)
    idata = cache.sample(spec, config.sampling, seed=seeds.sampler, progress=progress)
    posterior = idata["posterior"].to_dataset()
    posterior = posterior.merge(family.derive(posterior, reports, seeds.rng("derive")))
    posterior = _label_reports(posterior, data.report_ids)
    if design is not None:
        posterior = posterior.assign_coords(covariate=list(design.names))

    groups = {
        "posterior": posterior,
        "sample_stats": idata["sample_stats"].to_dataset(),
        "observed_data": xr.Dataset({"y": ("report", data.y)}, coords={"report": list(data.report_ids)}),
        "constant_data": xr.Dataset({"n": ("report", data.n)}, coords={"report": list(data.report_ids)}),
    }
    if checks:
        groups |= {
            "posterior_predictive": _posterior_predictive(family, posterior, reports, data,
                                                          seeds.rng("posterior_predictive")),
            # PSIS-LOO needs the likelihood with θ_i integrated out: per-report θ_i make it unreliable.
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "report"), family.log_marginal_draws(posterior, reports))},
                coords={"chain": posterior["chain"], "draw": posterior["draw"], "report": list(data.report_ids)},
            ),
            **_prior_predictive(family, prior, reports, data, config.sampling.prior_draws, seeds),  # without selection
        }
    idata = xr.DataTree.from_dict(groups)
    idata.attrs.update(
        config=config.name, outcome=data.outcome, drug=data.drug, model=config.model.family, seed=config.sampling.seed
    )
    return AnalysisResult(config=config, data=data, reports=reports, design=design, idata=idata,
                          convergence=check_convergence(idata, config.diagnostics, family.heavy_tailed,
                                                        report_level=checks))


def _prior_predictive(family, prior, reports: Reports, data: BinomialData, draws: int, seeds: Seeds) -> dict[str, xr.Dataset]:
    """Draws of every quantity from the prior, and of the counts the model expects before seeing data."""
    model = family.build_model(reports, prior)
    # Forward sampling of a few scalars: Python-mode compilation takes a fraction of numba's time. The
    # prior predictive describes reports before any publication selection, so the selection Potential
    # is rightly left out of it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        sampled = pm.sample_prior_predictive(
            draws=draws, model=model, random_seed=seeds.prior, compile_kwargs={"mode": "FAST_COMPILE"}
        )
    # The model pads its report arrays (models.padding); the padded reports are not data.
    real = {"report": slice(0, len(data))}
    prior_ds = sampled["prior"].to_dataset().isel(real, missing_dims="ignore")
    # θ_i given no data: the derived-quantity code with y = n = 0 gives the prior θ_i.
    zeros = np.zeros(len(data), dtype=np.int64)
    derived = family.derive(prior_ds, Reports(zeros, zeros, reports.covariates), seeds.rng("prior_derive"))
    prior_ds = _label_reports(prior_ds.merge(derived, compat="override"), data.report_ids)
    predictive = _label_reports(sampled["prior_predictive"].to_dataset().isel(real), data.report_ids)
    return {"prior": prior_ds, "prior_predictive": predictive}


def _posterior_predictive(family, posterior: xr.Dataset, reports: Reports, data: BinomialData,
                          rng: np.random.Generator) -> xr.Dataset:
    """Replicated counts for the same reports (y_rep, same θ_i) and for new reports of the same sizes and
    covariates (fresh θ): the second is the 'mixed' replication that checks the population distribution."""
    theta = posterior["theta"].transpose("chain", "draw", "report")
    theta_fresh = family.draw_new_theta(posterior, rng, covariates=reports.covariates)
    n = data.n
    return xr.Dataset(
        {
            "y": (theta.dims, rng.binomial(n, theta.values)),
            "y_new_reports": (theta.dims, rng.binomial(n, theta_fresh)),
        },
        coords={"chain": theta["chain"], "draw": theta["draw"], "report": list(data.report_ids)},
    )


def _label_reports(ds: xr.Dataset, report_ids: tuple[str, ...]) -> xr.Dataset:
    """The models index reports by position; outputs name them by report id."""
    return ds.assign_coords(report=list(report_ids)) if "report" in ds.dims else ds
