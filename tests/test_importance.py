"""Importance sampling on fixed quasi-random points (`models.importance`): against closed forms, the same
points every time, and errors that cover the truth."""

import numpy as np
import pytest
from scipy import stats

from models import importance

# A posterior with a scale: x ~ Normal(1 + 0.5 s, 0.3²) given s, s ~ Gamma(3, rate 4), on (x, log s).
SHAPE, RATE = 3.0, 4.0


def log_density(points):
    x, log_s = points[:, 0], points[:, 1]
    s = np.exp(log_s)
    return stats.norm.logpdf(x, 1 + 0.5 * s, 0.3) + stats.gamma.logpdf(s, SHAPE, scale=1 / RATE) + log_s


EXACT = {"x": 1 + 0.5 * SHAPE / RATE, "s": SHAPE / RATE,
         "s_lo": stats.gamma.ppf(0.025, SHAPE, scale=1 / RATE), "s_hi": stats.gamma.ppf(0.975, SHAPE, scale=1 / RATE)}


@pytest.fixture(scope="module")
def weighted():
    return importance.sample(log_density, np.array([0.0, 0.0]), np.array([False, True]))


def test_summaries_match_the_closed_form_within_their_stated_errors(weighted):
    """Means and quantiles against the exact values, within 4 of their stated errors (each error is a
    standard error from 8 independent scramblings: Student-t with 7 degrees of freedom puts 99.5% within
    4) plus 1e-4 for the interpolation of a quantile between atoms. Each error is below a twentieth of the
    posterior standard deviations (0.37 and 0.43): the 2.5% and 97.5% quantiles, where few points fall,
    have the largest."""
    s = lambda r: np.exp(weighted.points[r][:, 1])  # noqa: E731
    x = lambda r: weighted.points[r][:, 0]  # noqa: E731
    checks = {
        "x": weighted.summary(importance.weighted_mean, x),
        "s": weighted.summary(importance.weighted_mean, s),
        "s_lo": weighted.summary(lambda v, w: importance.weighted_quantiles(v, w, [0.025])[0], s),
        "s_hi": weighted.summary(lambda v, w: importance.weighted_quantiles(v, w, [0.975])[0], s),
    }
    for name, (value, error) in checks.items():
        assert 0 < error < 0.02, (name, error)
        assert abs(value - EXACT[name]) <= 4 * error + 1e-4, (name, value, EXACT[name], error)
    assert weighted.ess.min() > 0.5 * min(len(w) for w in weighted.weights)  # a close proposal


def test_the_same_points_and_weights_every_time(weighted):
    again = importance.sample(log_density, np.array([0.0, 0.0]), np.array([False, True]))
    for a, b in zip(weighted.points + weighted.weights, again.points + again.weights):
        np.testing.assert_array_equal(a, b)


def test_a_scale_enters_the_proposal_as_its_square_root():
    """Points are drawn on √s (a proposal point with √s ≤ 0 gets no weight); back on log s the Jacobian
    2/√s makes the weights those of the target: the Gamma's log density on log s is recovered."""
    coordinates = importance._Coordinates(np.array([False, True]))
    y = np.array([[0.3, 0.5], [0.1, -0.2]])
    x, valid, log_jacobian = coordinates.backward(y)
    assert valid.tolist() == [True, False]
    np.testing.assert_allclose(x[0], [0.3, 2 * np.log(0.5)])
    np.testing.assert_allclose(log_jacobian[0], np.log(2 / 0.5))
    np.testing.assert_allclose(coordinates.forward(x[:1]), y[:1])


def test_weighted_quantiles_of_equal_atoms_are_the_midpoint_sample_quantiles():
    values = np.random.default_rng(1).normal(size=100_001)
    weights = np.full(values.size, 1 / values.size)
    np.testing.assert_allclose(importance.weighted_quantiles(values, weights, [0.025, 0.5, 0.975]),
                               np.quantile(values, [0.025, 0.5, 0.975], method="hazen"), atol=1e-12)


def test_the_laplace_covariance_of_a_flat_or_broken_direction_is_wide_not_an_error():
    """A mode the search could not settle may leave a Hessian with a flat, convex or non-finite direction:
    its curvature is raised to `MIN_CURVATURE` (a standard deviation of 10), the others kept."""
    covariance = importance.laplace_covariance(np.diag([-4.0, 0.0, 3.0]))
    np.testing.assert_allclose(np.diag(covariance), [0.25, 100.0, 100.0])
    broken = importance.laplace_covariance(np.array([[-4.0, np.nan], [np.nan, -1.0]]))
    np.testing.assert_allclose(broken, np.diag([0.25, 1.0]))
