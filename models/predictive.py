"""Exact predictive distributions of count statistics over a set of reports, from each report's predictive
pmf at every node of a posterior (or prior) grid: the reports' counts are independent given the node, so
a count of reports with some property is Poisson-binomial and a total is a convolution, both exact, and
the predictive is their mixture over the nodes. Statistics with no such form (a rank correlation) are
replicated by inverse-CDF sampling on a fixed scrambled-Sobol point set, so they too are deterministic."""

from __future__ import annotations

import numpy as np
from scipy.stats import qmc

QMC_SEED = 20261205
"""The scramble of the replication points: fixed, so that a replicated statistic is the same at every run."""
BLOCK = 8192
"""Replicates per block of `replicate` (its largest array is BLOCK × (n_i + 1))."""


def count_pmf(probabilities: np.ndarray) -> np.ndarray:
    """(nodes, reports) probabilities of an event per report → (nodes, reports + 1): the pmf of how many
    reports have it (Poisson-binomial, by the exact recursion over reports)."""
    probabilities = np.asarray(probabilities, dtype=float)
    nodes, reports = probabilities.shape
    pmf = np.zeros((nodes, reports + 1))
    pmf[:, 0] = 1.0
    for i in range(reports):
        p = probabilities[:, i:i + 1]
        pmf[:, 1:i + 2] = pmf[:, 1:i + 2] * (1 - p) + pmf[:, :i + 1] * p
        pmf[:, 0] *= 1 - p[:, 0]
    return pmf


def sum_pmf(pmfs: list[np.ndarray]) -> np.ndarray:
    """The pmf (nodes, Σ n_i + 1) of a sum of independent counts from their pmfs (nodes, n_i + 1)."""
    total = np.ones((pmfs[0].shape[0], 1))
    for pmf in pmfs:
        out = np.zeros((total.shape[0], total.shape[1] + pmf.shape[1] - 1))
        for k in range(pmf.shape[1]):  # a report's count is small beside the running total
            out[:, k:k + total.shape[1]] += total * pmf[:, k:k + 1]
        total = out
    return total


def replicate(weights: np.ndarray, pmfs: list[np.ndarray], size_log2: int = 16) -> np.ndarray:
    """2**size_log2 replicated data sets (replicate, report; 65,536 by default, so that a tail probability near
    0.02 keeps its second decimal): a node drawn by its weight, then each report's
    count from its pmf at that node, both by inverse CDF on one fixed scrambled-Sobol point set (the first
    coordinate picks the node, so the nodes are stratified by weight)."""
    points = qmc.Sobol(1 + len(pmfs), scramble=True, rng=np.random.default_rng(QMC_SEED)).random_base2(size_log2)
    cumulative = np.cumsum(weights)
    node = np.minimum(np.searchsorted(cumulative, points[:, 0] * cumulative[-1], side="right"), len(weights) - 1)
    counts = np.empty((points.shape[0], len(pmfs)), dtype=np.int64)
    for i, pmf in enumerate(pmfs):
        cdf = np.cumsum(pmf, axis=1)
        for start in range(0, points.shape[0], BLOCK):  # (block, n_i + 1) at a time: a large report stays small
            rows = slice(start, start + BLOCK)
            at = cdf[node[rows]]
            counts[rows, i] = np.minimum((at < points[rows, 1 + i:2 + i] * at[:, -1:]).sum(axis=1), pmf.shape[1] - 1)
    return counts

