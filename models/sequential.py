"""Sequential (continuation-ratio) hierarchical model of the graded outcomes, all four in one model.

A report's patients pass through four stages, each a conditional probability of the report:

    s1  p1 = P(any response)                      A | n ~ Binomial(n, p1)
    s2  p2 = P(marked | responded)                M | A ~ Binomial(A, p2)
    s3  p3 = P(complete | marked)                 C | M ~ Binomial(M, p3)
    s4  p4 = P(sustained | responded)             S | A ~ Binomial(A, p4)

so the cumulative outcome probabilities, P(any) = p1, P(marked) = p1·p2, P(complete) = p1·p2·p3 and
P(sustained) = p1·p4, nest (complete ≤ marked ≤ any, sustained ≤ any) for every parameter value, by
construction. Assumptions: patients of a report are independent given the report's four stage
probabilities; and given a response, being marked (and then complete) and being sustained are
independent ((M, C) ⊥ S | A), so S | A is binomial whatever M and C are and no joint table of
marked × sustained is needed. The four stages of a report are tied together through correlated
report effects:

    logit p_is = μ_s + τ_s · (L z_i)_s,   z_i ~ Normal(0, I_4)          (non-centred)
    μ_s ~ Normal(mu_mean, mu_sd),   τ_s ~ HalfNormal(tau_scale),   R = L Lᵀ ~ LKJ(η)

The correlation's Cholesky factor L is built from its six canonical partial correlations (C-vine,
Lewandowski, Kurowicka and Joe 2009): the partial correlation of stages i and j given stages 0..j−1 is
2b − 1 with b ~ Beta(η + (2 − j)/2, η + (2 − j)/2) (4 stages), independently, which is exactly
R ~ LKJ(η). NUTS sees logit b, whose prior is a product of independent, log-concave, light-tailed
densities, and η enters only as the Beta shape, so it is a `pm.Data` value like every other prior
hyperparameter (one compiled program serves any prior). `pm.LKJCholeskyCov` was not used: its
coordinates are those of the covariance factor diag(τ)·L, which ties the correlation's coordinates to
τ's scale (a funnel as τ → 0); `pm.LKJCorr`'s row-normalising transform would also serve, but this
one's prior factorises. The tests check the construction against `pm.LKJCorr` draws. (Fitted to the
shipped data: no divergence, R-hat ≤ 1.004 and bulk ESS > 4000 for every quantity, seeds 1 to 5.)

Missing grades. A report contributes exactly the stages it graded (counts −1 = not graded). An
ungraded intermediate stage is summed out exactly: C observed, M not: C | A ~ Bin(A, p2·p3); A not
graded but one descendant D is: D | n ~ Bin(n, p1·q) with q = p2, p2·p3 or p4; A not graded but both a
marked/complete count and S are: Σ_{a=0..n} Bin(a | n, p1) Bin(D | a, q) Bin(S | a, p4), with the
loop running to a static bound (a compiled program has fixed shapes) and terms with a > n masked to
exactly 0. Every pattern shares one vectorised graph (`log_likelihood`); all logs of probabilities
are computed from logits (log p = −softplus(−η), log(1 − p2·p3) = logaddexp(log(1 − p2), log p2 +
log(1 − p3)), ...) so that they stay finite, as do their gradients, at any logit.

Population quantities. The pooled probability of an outcome is its mean over a new report's effects,
e.g. P(complete) = E_z[p1 p2 p3], a 4-D normal integral (3-D for complete), computed per draw on one
fixed set of 2^11 scrambled-Sobol points mapped through the normal inverse CDF (`population_means`).
All four use the same points with equal weights, so the nesting holds in every draw, and the result
is deterministic. Integration error per draw, the largest over random (μ, τ, R) against 2^20 points:
about 3e-5 for τ ≤ 1, 1e-4 for τ ≤ 2.5 and 4e-4 for τ up to 5 (no better with 2^12 points), against
posterior standard deviations of about 0.1 and Monte Carlo standard errors of about 1e-3.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor.conditional import ifelse
import xarray as xr
from pytensor.tensor.special import logsumexp
from scipy import special, stats
from scipy.stats import qmc

from models.base import ModelSpec, ReportEffects
from models.padding import pad, padded_size
from models.priors import SequentialPrior

STAGES = ("response", "marked_given_response", "complete_given_marked", "sustained_given_response")
"""The conditional stage probabilities p1..p4, the model's `stage` dimension."""
OUTCOMES = ("any_response", "marked", "complete", "sustained")
"""The cumulative outcome probabilities (the `outcome` dimension), named as in `analysis.inputs.evidence.OUTCOMES`."""
COUNT_COLUMNS = tuple(f"n_{o}" for o in OUTCOMES)
"""The columns of a report's counts, in stage order (A, M, C, S)."""
MISSING = -1
"""A count that the report did not grade."""

_SHORT = ("response", "marked", "complete", "sustained")
_PAIR_ROWS = np.array([1, 2, 2, 3, 3, 3])
_PAIR_COLUMNS = np.array([0, 0, 1, 0, 1, 2])
PAIRS = tuple(f"{_SHORT[j]}:{_SHORT[i]}" for i, j in zip(_PAIR_ROWS, _PAIR_COLUMNS))
"""Stage pairs (i > j) in the order the Cholesky factor is filled: `rho` and `cpc_unit` along `pair`."""
LABELS = {"stage": STAGES, "pair": PAIRS}
"""The labels of the model's fixed dimensions (the sampler's draws carry the dimensions, not their labels)."""

hyperparameters = ("mu", "tau", "rho")
plotted_parameters = ("mu", "tau")


# --- counts ----------------------------------------------------------------------------------------------


def validate_counts(counts, n) -> tuple[np.ndarray, np.ndarray]:
    """The counts as int64 arrays, or ValueError when they are not (reports, 4) and (reports,), a count is
    below −1 or above n, or the graded counts break the nesting (C ≤ M ≤ A, S ≤ A)."""
    counts = np.asarray(counts, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != 4 or n.shape != counts.shape[:1]:
        raise ValueError(f"counts must be (reports, 4) and n (reports,), got {counts.shape} and {n.shape}")
    if np.any(n < 0) or np.any(counts < MISSING) or np.any(counts > n[:, None]):
        raise ValueError("counts must lie in 0..n_treated (−1 for not graded) and n_treated must be ≥ 0")
    a, m, c, s = counts.T
    for small, large, what in ((m, a, "marked > any"), (c, m, "complete > marked"), (c, a, "complete > any"),
                               (s, a, "sustained > any")):
        if np.any((small >= 0) & (large >= 0) & (small > large)):
            raise ValueError(f"counts break the nesting ({what})")
    return counts, n


def missing_as_failure(counts, n, min_n: int = 2) -> np.ndarray:
    """The worst-case sensitivity variant: in every series (a report with n ≥ `min_n`) an ungraded stage
    counts no patient as reaching it beyond what the nesting forces; reports with n < `min_n` (single
    patients by default) keep their missing grades (they drop out of that stage, as in the main model).

    Per stage, in this order, for a series: complete, if ungraded, becomes 0; marked, if ungraded,
    becomes the (possibly just filled) complete count (0 unless complete was graded); sustained, if
    ungraded, becomes 0; any response, if ungraded, becomes max(marked, sustained) of the filled counts.
    Graded counts are never changed, and the result nests (C ≤ M ≤ A, S ≤ A) whenever the input does.
    """
    counts, n = validate_counts(counts, n)
    out = counts.copy()
    series = n >= min_n
    a, m, c, s = (out[:, k] for k in range(4))  # views into `out`
    c[series & (c < 0)] = 0
    fill = series & (m < 0)
    m[fill] = c[fill]
    s[series & (s < 0)] = 0
    fill = series & (a < 0)
    a[fill] = np.maximum(m[fill], s[fill])
    return out


def simulate_counts(n, p, rng: np.random.Generator, graded=None) -> np.ndarray:
    """Counts drawn patient by patient from stage probabilities `p` (reports, 4) for `n` treated, in the
    model's order (A, then M of A, C of M, S of A); `graded` (reports, 4) bool marks the stages kept, the
    rest become −1 (all graded by default). For simulation-based calibration and the tests."""
    n = np.asarray(n, dtype=np.int64)
    p = np.asarray(p, dtype=float)
    a = rng.binomial(n, p[:, 0])
    m = rng.binomial(a, p[:, 1])
    c = rng.binomial(m, p[:, 2])
    s = rng.binomial(a, p[:, 3])
    counts = np.column_stack([a, m, c, s])
    if graded is not None:
        counts = np.where(np.asarray(graded, dtype=bool), counts, MISSING)
    return counts


def padded_reports(size: int) -> int:
    """Reports padded to a multiple of 4: each padded report adds four latent effects to every gradient,
    so this model pads less than the binomial families (`models.padding.padded_size`)."""
    return -(-int(size) // 4) * 4


def count_bound(counts, n) -> int:
    """The static length of the sum over an ungraded response count: at least the largest report whose
    response count is ungraded while both a marked (or complete) and a sustained count are graded (the
    only pattern that needs the sum); 1 when there is none, so that counts of any size cost nothing."""
    counts, n = np.asarray(counts), np.asarray(n)
    summed = (counts[:, 0] < 0) & ((counts[:, 1] >= 0) | (counts[:, 2] >= 0)) & (counts[:, 3] >= 0)
    return padded_size(int(np.max(n[summed], initial=1)), minimum=1)


# --- the likelihood --------------------------------------------------------------------------------------


def _log_binomial(k, size, log_p, log_q):
    """log Binomial(k | size, p) from log p and log(1 − p); k and size are clipped into a valid range
    first, so that the value (and its gradient) is finite even where a mask later discards it."""
    size = pt.maximum(size, 0)
    k = pt.clip(k, 0, size)
    log_choose = pt.gammaln(size + 1) - pt.gammaln(k + 1) - pt.gammaln(size - k + 1)
    return log_choose + k * log_p + (size - k) * log_q


def log_likelihood(counts, n, logit_p, bound: int):
    """log P(the graded counts | n, p) per report: (reports,) from counts (reports, 4) int (−1 = not
    graded), n (reports,) and the stage logits logit_p (reports, 4), for n ≤ `bound`.

    One graph for all 16 patterns of graded stages, chosen per report by masks (see the module
    docstring). A report with n = 0 (padding) or no graded stage contributes exactly 0."""
    log_p = -pt.softplus(-logit_p)
    log_q = -pt.softplus(logit_p)
    lp1, lp2, lp3, lp4 = (log_p[..., k] for k in range(4))
    lq1, lq2, lq3, lq4 = (log_q[..., k] for k in range(4))
    a, m, c, s = (counts[..., k] for k in range(4))
    has_a, has_m, has_c, has_s = (x >= 0 for x in (a, m, c, s))

    # D: the highest graded count of the marked → complete chain, reached by a responder with prob. q.
    has_d = has_m | has_c
    d = pt.switch(has_m, m, pt.switch(has_c, c, 0))
    log_qd = pt.switch(has_m, lp2, lp2 + lp3)
    log_qd_fail = pt.switch(has_m, lq2, pt.logaddexp(lq2, lp2 + lq3))  # log(1 − p2·p3) without cancellation
    s_ = pt.switch(has_s, s, 0)

    complete_given_marked = pt.switch(has_m & has_c, _log_binomial(c, m, lp3, lq3), 0.0)

    graded_response = (
        _log_binomial(a, n, lp1, lq1)
        + pt.switch(has_d, _log_binomial(d, a, log_qd, log_qd_fail), 0.0)
        + pt.switch(has_s, _log_binomial(s_, a, lp4, lq4), 0.0)
    )

    # Response count not graded: D | n ~ Bin(n, p1 q), S | n ~ Bin(n, p1 p4), or both summed over A = a.
    d_only = _log_binomial(d, n, lp1 + log_qd, pt.logaddexp(lq1, lp1 + log_qd_fail))
    s_only = _log_binomial(s_, n, lp1 + lp4, pt.logaddexp(lq1, lp1 + lq4))
    both = has_d & has_s & ~has_a
    d_sum = pt.switch(both, d, 0)[..., None]  # other reports: 0, so that a = 0 is a valid term
    s_sum = pt.switch(both, s_, 0)[..., None]
    j = pt.arange(bound + 1)
    terms = (
        _log_binomial(j, n[..., None], lp1[..., None], lq1[..., None])
        + _log_binomial(d_sum, j, log_qd[..., None], log_qd_fail[..., None])
        + _log_binomial(s_sum, j, lp4[..., None], lq4[..., None])
    )
    valid = (j <= n[..., None]) & (j >= pt.maximum(d_sum, s_sum))
    # Behind a conditional: data that grade every response count (the usual case) skip the whole sum
    # (PyTensor moves work used only by one branch into it; JAX then evaluates it lazily).
    summed = ifelse(pt.any(both), logsumexp(pt.switch(valid, terms, -np.inf), axis=-1), pt.zeros_like(lp1))
    ungraded_response = pt.switch(both, summed, pt.switch(has_d, d_only, pt.switch(has_s, s_only, 0.0)))

    return complete_given_marked + pt.switch(has_a, graded_response, ungraded_response)


# --- the correlation --------------------------------------------------------------------------------------


def _beta_shapes(eta):
    """Beta shape of each canonical partial correlation's (r + 1)/2: η + (d − 2 − j)/2, d = 4."""
    return eta + (len(STAGES) - 2 - _PAIR_COLUMNS) / 2.0


def correlation_cholesky(cpc_unit, xp=np):
    """Lower Cholesky factor L (..., 4, 4) of the correlation matrix whose canonical partial correlations
    are 2 b − 1, b = `cpc_unit` (..., 6) in `PAIRS` order: L[i, j] = r_ij Π_{k<j} (1 − r_ik²)^½ and
    L[i, i] = Π_{k<i} (1 − r_ik²)^½, with 1 − r² = 4 b (1 − b) (no cancellation). `xp`: numpy or
    pytensor.tensor."""
    r = 2.0 * cpc_unit - 1.0
    root = 2.0 * xp.sqrt(cpc_unit * (1.0 - cpc_unit))  # (1 − r²)^½
    one = xp.ones_like(r[..., 0])
    zero = xp.zeros_like(one)
    rows = [[one, zero, zero, zero]]
    k = 0
    for i in range(1, len(STAGES)):
        row, remaining = [], one
        for _ in range(i):
            row.append(r[..., k] * remaining)
            remaining = remaining * root[..., k]
            k += 1
        rows.append(row + [remaining] + [zero] * (len(STAGES) - 1 - i))
    return xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)


def correlations(chol, xp=np):
    """The off-diagonal correlations R[i, j] (..., 6) in `PAIRS` order, R = L Lᵀ."""
    return xp.stack([(chol[..., i, :] * chol[..., j, :]).sum(axis=-1) for i, j in zip(_PAIR_ROWS, _PAIR_COLUMNS)],
                    axis=-1)


# --- the model ---------------------------------------------------------------------------------------------


def structure_key(prior: SequentialPrior) -> tuple:
    """Every prior value is `pm.Data`; the padded number of reports and the loop bound (added by
    `model_spec`) are the only sizes."""
    return ("sequential",)


def initial_point(prior: SequentialPrior) -> dict[str, np.ndarray]:
    """Data-independent starting values (jittered per chain): μ = 0, τ = 0.5, R = I (b = 1/2); z = 0."""
    return {"mu": np.zeros(len(STAGES)), "tau": np.full(len(STAGES), 0.5), "cpc_unit": np.full(len(PAIRS), 0.5)}


def data_values(counts, n, prior: SequentialPrior) -> dict:
    """The `pm.Data` values: counts padded with ungraded empty reports (n = 0, all −1) to a multiple of 4
    (each padded report costs four latent effects at every gradient, so the padding is kept small) and
    the priors."""
    counts, n = validate_counts(counts, n)
    size = padded_reports(len(n))
    padded = np.full((size, len(STAGES)), MISSING, dtype=np.int64)
    padded[: len(n)] = counts
    return {
        "counts": padded,
        "n_treated": pad(n, size),
        "mu_mean": np.float64(prior.mu_mean),
        "mu_sd": np.float64(prior.mu_sd),
        "tau_scale": np.float64(prior.tau_scale),
        "lkj_eta": np.float64(prior.lkj_eta),
    }


def build_model(counts, n, prior: SequentialPrior, bound: int | None = None) -> pm.Model:
    """`bound`: the static length of the sum over an ungraded response count (`count_bound` by default; it
    must cover every report that needs the sum)."""
    values = data_values(counts, n, prior)
    bound = bound or count_bound(counts, n)
    if bound < count_bound(counts, n):
        raise ValueError(f"bound {bound} is below the largest report that needs the sum")
    coords = {"report": np.arange(values["n_treated"].size), **{dim: list(labels) for dim, labels in LABELS.items()}}
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Normal("mu", data["mu_mean"], data["mu_sd"], dims="stage")
        tau = pm.HalfNormal("tau", data["tau_scale"], dims="stage")
        shape = _beta_shapes(data["lkj_eta"])
        cpc_unit = pm.Beta("cpc_unit", shape, shape, dims="pair")
        chol = correlation_cholesky(cpc_unit, xp=pt)
        pm.Deterministic("rho", correlations(chol, xp=pt), dims="pair")
        z = pm.Normal("z", 0.0, 1.0, dims=("report", "stage"))
        population = {"mu": mu, "tau": tau, "cpc_unit": cpc_unit}
        pm.Deterministic("p", pm.math.invlogit(report_logits(population, z)), dims=("report", "stage"))
        pm.Potential("loglik", _report_log_likelihood(bound)(population, z, data).sum())
    return model


def report_logits(population: dict, z):
    """The stage logits of reports with effects z (reports, 4): μ + τ · (L z), L the correlation's Cholesky
    factor (PyTensor)."""
    chol = correlation_cholesky(population["cpc_unit"], xp=pt)
    return population["mu"] + population["tau"] * (z @ chol.T)


def _report_log_likelihood(bound: int):
    return lambda population, z, rows: log_likelihood(rows["counts"], rows["n_treated"],
                                                      report_logits(population, z), bound)


def _report_outcomes(population: dict, z):
    return cumulative(pm.math.invlogit(report_logits(population, z)), xp=pt)


def model_spec(counts, n, prior: SequentialPrior) -> ModelSpec:
    counts, n = validate_counts(counts, n)
    return ModelSpec(
        key=(*structure_key(prior), count_bound(counts, n)),
        build=lambda: build_model(counts, n, prior),
        values=data_values(counts, n, prior),
        initial_point=initial_point(prior),
        reports=len(n),
        effects=ReportEffects("z", ("mu", "tau", "cpc_unit"), ("counts", "n_treated"),
                              _report_log_likelihood(count_bound(counts, n)), _report_outcomes),
    )


# --- derived quantities -------------------------------------------------------------------------------------

QMC_POINTS = stats.norm.ppf(
    qmc.Sobol(len(STAGES), scramble=True, rng=np.random.default_rng(20261121)).random_base2(11)
)
"""2^11 scrambled-Sobol points of Normal(0, I_4), fixed: the pooled quantities are deterministic."""


def cumulative(p, xp=np):
    """Cumulative outcome probabilities (..., 4) in `OUTCOMES` order from stage probabilities (..., 4):
    p1, p1·p2, p1·p2·p3, p1·p4. Products of numbers ≤ 1 with correct rounding never exceed their factors,
    so complete ≤ marked ≤ any and sustained ≤ any hold exactly in floating point too."""
    any_ = p[..., 0]
    marked = any_ * p[..., 1]
    return xp.stack([any_, marked, marked * p[..., 2], any_ * p[..., 3]], axis=-1)


def population_means(mu, tau, chol, points: np.ndarray | None = None, chunk: int = 16) -> np.ndarray:
    """E_z[cumulative(expit(μ + τ · L z))], z ~ Normal(0, I_4), per draw: mu, tau (..., 4), chol (..., 4, 4)
    in, (..., 4) in `OUTCOMES` order out, by equal-weight quasi-Monte Carlo on `points` (K, 4), the fixed
    Sobol points by default. Equal non-negative weights keep the nesting of the integrands."""
    points = QMC_POINTS if points is None else points
    mu = np.asarray(mu, dtype=float)
    lead = mu.shape[:-1]
    mu = mu.reshape(-1, len(STAGES))
    scaled = np.asarray(chol, dtype=float) * np.asarray(tau, dtype=float)[..., None]  # rows of diag(τ) L
    scaled = scaled.reshape(-1, len(STAGES), len(STAGES))
    out = np.empty_like(mu)
    for start in range(0, mu.shape[0], chunk):
        block = slice(start, start + chunk)
        logit_p = np.matmul(points, np.swapaxes(scaled[block], -1, -2)) + mu[block, None, :]
        out[block] = point_average(cumulative(special.expit(logit_p)))
    return out.reshape(*lead, len(STAGES))


def point_average(values: np.ndarray) -> np.ndarray:
    """(draw, point, outcome) → (draw, outcome): the equal-weight average over quasi-Monte Carlo points, as a
    matrix product (a reduction along the strided middle axis is about ten times slower)."""
    return values.transpose(0, 2, 1) @ np.full(values.shape[1], 1.0 / values.shape[1])


def chol_draws(posterior: xr.Dataset) -> np.ndarray:
    """The correlation Cholesky factor (chain, draw, 4, 4) of every posterior draw, as the model built it."""
    return correlation_cholesky(posterior["cpc_unit"].transpose("chain", "draw", "pair").values)


def derive(posterior: xr.Dataset, counts, n, rng: np.random.Generator) -> xr.Dataset:
    """Per-report stage probabilities `p` (chain, draw, report, stage) and cumulative outcome probabilities
    `cumulative` (chain, draw, report, outcome); the pooled population means `pooled` (chain, draw,
    outcome); a new report's `p_new` (stage) and `cumulative_new` (outcome), one fresh z per draw from
    `rng`; and `typical` (outcome), the cumulative probabilities of a report with z = 0 (every stage at its
    population median)."""
    reports = len(np.asarray(n))
    mu = posterior["mu"].transpose("chain", "draw", "stage").values
    tau = posterior["tau"].transpose("chain", "draw", "stage").values
    chol = chol_draws(posterior)
    p = posterior["p"].transpose("chain", "draw", "report", "stage").values[:, :, :reports]
    z_new = rng.standard_normal(mu.shape)
    p_new = special.expit(mu + tau * np.einsum("cdst,cdt->cds", chol, z_new))
    draw_coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    coords = {**draw_coords, "report": np.arange(reports), "stage": list(STAGES), "outcome": list(OUTCOMES)}
    return xr.Dataset(
        {
            "p": (("chain", "draw", "report", "stage"), p),
            "cumulative": (("chain", "draw", "report", "outcome"), cumulative(p)),
            "pooled": (("chain", "draw", "outcome"), population_means(mu, tau, chol)),
            "p_new": (("chain", "draw", "stage"), p_new),
            "cumulative_new": (("chain", "draw", "outcome"), cumulative(p_new)),
            "typical": (("chain", "draw", "outcome"), cumulative(special.expit(mu))),
        },
        coords=coords,
    )

