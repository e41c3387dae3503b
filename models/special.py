"""Special functions the models share, stable for any concentration and any count, in NumPy and PyTensor.

**Log rising factorial.** log (a)_k = log Γ(a + k) − log Γ(a). Subtracting two log-gamma values loses every
digit when a is large (a near-homogeneous beta-binomial has a = μκ with κ up to 10^16: both values are
about 10^17 and their difference about 100), and summing log(a + j) over j < k costs memory and time in
proportion to the largest count. Here, for a ≥ 10, Stirling's series is differenced analytically,

    log (a)_k = k log(a + k) + (a − ½) log1p(k / a) − k + S(a + k) − S(a),
    S(x) = 1/(12x) − 1/(360x³) + 1/(1260x⁵) − 1/(1680x⁷)  (truncation error below 3·10⁻¹³ at x ≥ 10),

in which every term is of the size of the result; for a < 10 the plain difference of log-gamma values is
exact to rounding (log Γ(a) is small there). Both branches are finite for every input, so the gradient of
the branch not taken is never NaN.

**Logit-normal marginal.** log ∫ Binomial(y | n, expit(η + τz)) φ(z) dz. The integrand's log,
h(z) = y log p + (n − y) log(1 − p) − z²/2, is strictly concave (h″ ≤ −1); its mode solves z = τ(y − np)
and so lies in [−τ(n − y), τy], where safeguarded Newton steps find it. From the mode, Newton steps find on
each side the point where h has fallen by `TAIL_DROP` (h″ ≤ −1 puts it within √(2·TAIL_DROP) of the mode,
and Newton from beyond it converges monotonically because h is concave); Gauss-Legendre quadrature on
each side then integrates a smooth, log-concave function. Adaptive Gauss-Hermite (Laplace-centred nodes,
as `lme4::glmer(nAGQ)`) is accurate for interior counts but not for an all-responder report when τ is
large, where the integrand is a normal density cut by a sigmoid (errors of 10⁻² in the log at τ = 8); this
rule stays within 10⁻⁵ at τ = 15 against a 800,001-point trapezoid reference. Fixed node and iteration
counts: one compiled graph serves any counts, from single patients to 10⁶.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from scipy import special

STIRLING_FROM = 10.0
NEWTON_STEPS = 60
"""Safeguarded Newton steps to the mode: the bracket at least halves every two steps, so 60 reach any
mode of counts up to 10⁶ at τ ≤ 50 to rounding."""
TAIL_DROP = 40.0
TAIL_STEPS = 12
LEGENDRE_NODES = 24
_LEGENDRE_X, _LEGENDRE_W = np.polynomial.legendre.leggauss(LEGENDRE_NODES)
_LOG_HALF_SQRT_2PI = 0.5 * math.log(2 * math.pi)


# --- NumPy -----------------------------------------------------------------------------------------------


def _stirling_tail(x):
    inv = 1.0 / x
    inv2 = inv * inv
    return inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))


def log_rising(a, k):
    """log Γ(a + k) − log Γ(a), elementwise, for a > 0 and whole k ≥ 0 (see the module docstring)."""
    a, k = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(k, dtype=float))
    out = np.empty(a.shape)
    large = a >= STIRLING_FROM
    al, kl = a[large], k[large]
    out[large] = (kl * np.log(al + kl) + (al - 0.5) * np.log1p(kl / al) - kl
                  + _stirling_tail(al + kl) - _stirling_tail(al))
    small = ~large
    out[small] = special.gammaln(a[small] + k[small]) - special.gammaln(a[small])
    return out


def log_choose(n, k):
    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def log_betabinom(y, n, a, b):
    """log BetaBinomial(y | n, a, b) = log C(n, y) + log (a)_y + log (b)_(n−y) − log (a + b)_n."""
    return log_choose(n, y) + log_rising(a, y) + log_rising(b, np.asarray(n) - np.asarray(y)) - log_rising(a + b, n)


def log_all_responded(a, b, n):
    """log P(y = n) = log (a)_n − log (a + b)_n under BetaBinomial(n, a, b)."""
    return log_rising(a, n) - log_rising(a + b, n)


def _h(y, n, eta, tau, z, xp=np):
    """log Binomial(y | n, expit(η + τz)) − z²/2 without the binomial coefficient (`xp`: numpy or jax.numpy)."""
    t = eta + tau * z
    return -y * xp.logaddexp(0.0, -t) - (n - y) * xp.logaddexp(0.0, t) - z * z / 2


def _jax_support(y, n, eta, tau):
    """(mode, left end, right end) of z ↦ h(z), elementwise, in JAX (see the module docstring). The loops
    stop when every element has converged (at most `NEWTON_STEPS` and `TAIL_STEPS` steps)."""
    import jax
    import jax.numpy as jnp

    lo, hi = -tau * (n - y), tau * y
    scale = 1e-12 * (1.0 + jnp.abs(lo) + jnp.abs(hi))

    def newton(state):
        k, z, lo, hi, step, previous, _ = state
        p = jax.nn.sigmoid(eta + tau * z)
        grad, curvature = tau * (y - n * p) - z, tau**2 * n * p * (1 - p) + 1
        lo, hi = jnp.where(grad > 0, z, lo), jnp.where(grad < 0, z, hi)
        proposal = z + grad / curvature
        bisect = (proposal <= lo) | (proposal >= hi) | (jnp.abs(2 * grad) > jnp.abs(previous * curvature))
        previous, step = step, jnp.where(bisect, 0.5 * (hi - lo), jnp.abs(proposal - z))
        new = jnp.where(bisect, 0.5 * (lo + hi), proposal)
        return k + 1, new, lo, hi, step, previous, jnp.all(jnp.abs(new - z) <= scale)

    width = hi - lo
    # Start where a normal approximation of the likelihood (at its smoothed maximum) meets the prior.
    p_hat = (y + 0.5) / (n + 1.0)
    information = tau**2 * n * p_hat * (1 - p_hat)
    guess = (jnp.log(p_hat) - jnp.log1p(-p_hat) - eta) / jnp.where(tau > 0, tau, 1.0) * information / (1 + information)
    start = (0, jnp.clip(guess, lo, hi), lo, hi, width, width, False)
    mode = jax.lax.while_loop(lambda s: (s[0] < NEWTON_STEPS) & ~s[6], newton, start)[1]
    level = _h(y, n, eta, tau, mode, jnp) - TAIL_DROP

    def tail(state):
        k, z, _ = state
        slope = tau * (y - n * jax.nn.sigmoid(eta + tau * z)) - z
        new = z - (_h(y, n, eta, tau, z, jnp) - level) / slope
        return k + 1, new, jnp.all(jnp.abs(new - z) <= 1e-9 * (1.0 + jnp.abs(z)))

    ends = [jax.lax.while_loop(lambda s: (s[0] < TAIL_STEPS) & ~s[2], tail,
                               (0, mode + side * math.sqrt(2 * TAIL_DROP), False))[1] for side in (-1.0, 1.0)]
    # Where the nodes sit moves the value only by the quadrature error: no gradient through the search.
    return tuple(jax.lax.stop_gradient(v) for v in (mode, *ends))


def _jax_log_marginal(y, n, eta, tau):
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import gammaln

    y, n, eta, tau = jnp.broadcast_arrays(*(jnp.asarray(v, dtype=jnp.float64) for v in (y, n, eta, tau)))
    mode, left, right = _jax_support(y, n, eta, tau)
    logs = []
    for a, b in ((left, mode), (mode, right)):
        half = 0.5 * (b - a)
        z = (0.5 * (a + b))[..., None] + half[..., None] * _LEGENDRE_X
        logs.append(_h(y[..., None], n[..., None], eta[..., None], tau[..., None], z, jnp)
                    + jnp.log(_LEGENDRE_W * jnp.maximum(half, 1e-300)[..., None]))
    log_binomial = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    return log_binomial - _LOG_HALF_SQRT_2PI + jax.scipy.special.logsumexp(jnp.concatenate(logs, axis=-1), axis=-1)


def _double_precision():
    """The integrals need float64; JAX computes in float32 unless told otherwise."""
    import jax

    jax.config.update("jax_enable_x64", True)


@functools.cache
def _jitted(name: str):
    import jax

    _double_precision()
    return jax.jit({"support": _jax_support, "log_marginal": _jax_log_marginal}[name])


def _float_arrays(*values):
    return np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))


def logit_normal_support(y, n, eta, tau):
    """(mode, left end, right end) of z ↦ Binomial(y | n, expit(η + τz)) φ(z), elementwise: the ends where
    its log has fallen by `TAIL_DROP` below the mode."""
    return tuple(np.asarray(v) for v in _jitted("support")(*_float_arrays(y, n, eta, tau)))


def logit_normal_log_marginal(y, n, eta, tau):
    """log ∫ Binomial(y | n, expit(η + τz)) φ(z) dz, elementwise (broadcast): Gauss-Legendre on each side of
    the mode (see the module docstring)."""
    return np.asarray(_jitted("log_marginal")(*_float_arrays(y, n, eta, tau)))


def _conditional_grid(y, n, eta, tau, points: int):
    """z nodes (…, 2·points − 1) across the support, the log density at them (up to a constant) and the
    normalised CDF at them of the density interpolated log-linearly between nodes (exact for a piecewise
    exponential; the error of a log-concave density is second order in the node spacing)."""
    mode, left, right = logit_normal_support(y, n, eta, tau)
    grid = np.linspace(0.0, 1.0, points)
    z = np.concatenate([left[..., None] + (mode - left)[..., None] * grid,
                        mode[..., None] + (right - mode)[..., None] * grid[1:]], axis=-1)
    log_f = _h(y[..., None], n[..., None], eta[..., None], tau[..., None], z)
    log_f = log_f - log_f.max(axis=-1, keepdims=True)
    cells = _cell_mass(np.exp(log_f[..., :-1]), np.diff(log_f, axis=-1), np.diff(z, axis=-1), 1.0)
    cdf = np.concatenate([np.zeros(cells.shape[:-1] + (1,)), np.cumsum(cells, axis=-1)], axis=-1)
    total = cdf[..., -1:]
    return z, log_f - np.log(total), cdf / total


def _cell_mass(f0, rise, width, share):
    """∫ over the first `share` of a cell of width `width` of f0·exp(rise · t / width), t from 0."""
    slope = rise / width
    small = np.abs(rise * share) < 1e-8
    safe = np.where(small, 1.0, slope)
    return np.where(small, f0 * width * share * (1 + rise * share / 2), f0 * np.expm1(safe * width * share) / safe)


def _locate(z, cdf, log_f, k):
    take = lambda a, j: np.take_along_axis(a, j, -1)  # noqa: E731
    return take(z, k), take(z, k + 1), take(cdf, k), take(cdf, k + 1), take(log_f, k), take(log_f, k + 1)


DRAW_CHUNK = 1 << 15
"""Elements per block of `logit_normal_draw_theta`: each carries a grid of 2·points − 1 nodes in several
arrays, so draws × reports at once (8,000 × 500) would take tens of GB."""


def logit_normal_draw_theta(y, n, eta, tau, uniform, points: int = 64):
    """θ = expit(η + τz) drawn from z's conditional given y of n (elementwise, one draw per `uniform` value in
    (0, 1)), by inverting the CDF of the interpolated density (`_conditional_grid`), in blocks of
    `DRAW_CHUNK` elements."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, n, eta, tau, uniform)))
    flat = [a.ravel() for a in arrays]
    out = np.empty(flat[0].size)
    for start in range(0, out.size, DRAW_CHUNK):
        block = slice(start, start + DRAW_CHUNK)
        out[block] = _draw_theta(*(a[block] for a in flat), points)
    return out.reshape(arrays[0].shape)


def _draw_theta(y, n, eta, tau, uniform, points: int):
    z, log_f, cdf = _conditional_grid(y, n, eta, tau, points)
    target = uniform[..., None]
    k = np.clip((cdf <= target).sum(axis=-1) - 1, 0, z.shape[-1] - 2)[..., None]
    z0, z1, c0, _, l0, l1 = _locate(z, cdf, log_f, k)
    width, rise = z1 - z0, l1 - l0
    slope = rise / width
    mass = target - c0
    f0 = np.exp(l0)
    small = np.abs(rise) < 1e-8
    inside = np.where(small, mass / f0, np.log1p(np.maximum(mass * np.where(small, 1.0, slope) / f0, -1 + 1e-16))
                      / np.where(small, 1.0, slope))
    return special.expit(eta + tau * (z0 + np.clip(inside, 0.0, width))[..., 0])


def _log_integral(y, n, eta, tau, a, b):
    """log ∫_a^b exp(h(z)) dz by Gauss-Legendre (h smooth and log-concave between a and b)."""
    half = 0.5 * (b - a)
    z = (0.5 * (a + b))[..., None] + half[..., None] * _LEGENDRE_X
    return special.logsumexp(_h(y[..., None], n[..., None], eta[..., None], tau[..., None], z)
                             + np.log(_LEGENDRE_W * np.maximum(half, 1e-300)[..., None]), axis=-1)


def _conditional(y, n, eta, tau):
    """(y, n, η, τ) broadcast, and z's mode, the support's ends and the log normaliser of θ's conditional:
    what a CDF or density of it computes once for the many x of a quantile search."""
    y, n, eta, tau = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, n, eta, tau)))
    mode, left, right = logit_normal_support(y, n, eta, tau)
    total = np.logaddexp(_log_integral(y, n, eta, tau, left, mode), _log_integral(y, n, eta, tau, mode, right))
    return y, n, eta, tau, mode, left, right, total


def logit_normal_conditional_cdf(y, n, eta, tau) -> Callable[[float], np.ndarray]:
    """x ↦ P(θ ≤ x | η, τ, y of n) for θ = expit(η + τz), elementwise: the Gauss-Legendre rule of the
    marginal on each side of the mode, cut at z = (logit x − η)/τ. The support and the normalising integral
    are computed once, for the many x of a quantile search."""
    y, n, eta, tau, mode, left, right, total = _conditional(y, n, eta, tau)

    def cdf(x: float) -> np.ndarray:
        with np.errstate(divide="ignore"):
            cut = np.clip((special.logit(x) - eta) / tau, left, right)
        below = _log_integral(y, n, eta, tau, left, np.minimum(cut, mode))
        above = _log_integral(y, n, eta, tau, mode, np.maximum(cut, mode))
        return np.clip(np.exp(np.logaddexp(below, np.where(cut > mode, above, -np.inf)) - total), 0.0, 1.0)

    return cdf


def logit_normal_conditional_pdf(y, n, eta, tau) -> Callable[[float], np.ndarray]:
    """x ↦ the density of θ at x given y of n, θ = expit(η + τz), elementwise: the derivative of
    `logit_normal_conditional_cdf` (zero outside the support that CDF integrates over)."""
    y, n, eta, tau, mode, left, right, total = _conditional(y, n, eta, tau)

    def pdf(x: float) -> np.ndarray:
        if not 0.0 < x < 1.0:
            return np.zeros(np.shape(eta))
        z = (special.logit(x) - eta) / tau
        log = _h(y, n, eta, tau, z) - total - np.log(tau) - np.log(x) - np.log1p(-x)
        return np.where((z >= left) & (z <= right), np.exp(log), 0.0)

    return pdf


def beta_pdf(a, b, x: float) -> np.ndarray:
    """The Beta(a, b) density at x, elementwise, from logs (finite for the large shapes of a population
    with little spread)."""
    if not 0.0 < x < 1.0:
        return np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b)))
    return np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b))


def logit_normal_conditional_moments(y, n, eta, tau):
    """E[θ] and E[θ²] given y of n, θ = expit(η + τz), elementwise, by the Gauss-Legendre rule of the
    marginal."""
    y, n, eta, tau = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (y, n, eta, tau)))
    mode, left, right = logit_normal_support(y, n, eta, tau)
    nodes, logs = [], []
    for a, b in ((left, mode), (mode, right)):
        half = 0.5 * (b - a)
        z = (0.5 * (a + b))[..., None] + half[..., None] * _LEGENDRE_X
        nodes.append(z)
        logs.append(_h(y[..., None], n[..., None], eta[..., None], tau[..., None], z)
                    + np.log(_LEGENDRE_W * np.maximum(half, 1e-300)[..., None]))
    z, log_w = np.concatenate(nodes, axis=-1), np.concatenate(logs, axis=-1)
    w = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
    theta = special.expit(eta[..., None] + tau[..., None] * z)
    return (w * theta).sum(-1), (w * theta**2).sum(-1)


def logit_normal_log_all_responded(n, eta, tau):
    return logit_normal_log_marginal(n, n, eta, tau)


# --- PyTensor --------------------------------------------------------------------------------------------


def pt_log_rising(a, k):
    """`log_rising` in PyTensor (used inside the models' log densities)."""
    import pytensor.tensor as pt

    large = pt.maximum(a, STIRLING_FROM)
    stirling = (k * pt.log(large + k) + (large - 0.5) * pt.log1p(k / large) - k
                + _stirling_tail(large + k) - _stirling_tail(large))
    small = pt.minimum(a, STIRLING_FROM)
    direct = pt.gammaln(small + k) - pt.gammaln(small)
    return pt.switch(a >= STIRLING_FROM, stirling, direct)


def pt_log_choose(n, k):
    import pytensor.tensor as pt

    return pt.gammaln(n + 1) - pt.gammaln(k + 1) - pt.gammaln(n - k + 1)


def pt_log_betabinom(y, n, a, b):
    return pt_log_choose(n, y) + pt_log_rising(a, y) + pt_log_rising(b, n - y) - pt_log_rising(a + b, n)


def pt_log_all_responded(a, b, n):
    return pt_log_rising(a, n) - pt_log_rising(a + b, n)


@functools.cache
def _log_marginal_op():
    """The JAX function as a PyTensor Op over vectors of any length (its loops stay loops, so a model
    compiles in seconds; its gradient is JAX's)."""
    from pytensor.link.jax.ops import JAXOp
    from pytensor.tensor.type import TensorType

    _double_precision()
    vector = TensorType("float64", shape=(None,))
    return JAXOp([vector] * 4, [vector], lambda *args: (_jax_log_marginal(*args),), name="logit_normal_log_marginal")


def pt_logit_normal_log_marginal(y, n, eta, tau):
    """`logit_normal_log_marginal` in a PyTensor graph, over vectors of reports."""
    import pytensor.tensor as pt

    y = pt.as_tensor_variable(y).astype("float64")
    n = pt.as_tensor_variable(n).astype("float64")
    scalar = y.ndim == 0
    if scalar:
        y, n = y[None], n[None]
    value = _log_marginal_op()(y, n, pt.as_tensor_variable(eta) + pt.zeros_like(y),
                               pt.as_tensor_variable(tau) + pt.zeros_like(y))
    return value[0] if scalar else value
