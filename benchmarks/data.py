"""Simulated evidence tables for the scale benchmarks: many reports, or very large counts.

The tables look like the case-report literature the tool is built for (most reports of 1-3 patients, a
few series of up to 30), with responders drawn from the primary model itself (a beta-binomial), so a
benchmark times the tool on data it fits well rather than on a misspecification.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

COLUMNS = ("report_id", "drug", "n_treated", "n_any_response")
MEAN, KAPPA = 0.8, 5.0
"""Response rate and concentration of the simulated reports (the shipped data's pooled rate is about 0.85)."""
LARGEST_SERIES = 30
SIZE_EXPONENT = 1.3
"""P(n) ∝ n^-1.3 on 1..30: about 60 % of reports have 1-3 patients, the mean is about 5 (as in the shipped data)."""
LARGE_COUNT = 10**6
"""The largest count of the large-count table: the scale the likelihood must handle without its cost growing."""


def report_sizes(reports: int, rng: np.random.Generator) -> np.ndarray:
    """Patients per report, from a truncated power law like that of published case reports and series."""
    sizes = np.arange(1, LARGEST_SERIES + 1)
    weights = sizes.astype(float) ** -SIZE_EXPONENT
    return rng.choice(sizes, size=reports, p=weights / weights.sum())


def large_sizes(reports: int, rng: np.random.Generator) -> np.ndarray:
    """Patients per report between half of and exactly `LARGE_COUNT` (the largest report is at the bound)."""
    sizes = rng.integers(LARGE_COUNT // 2, LARGE_COUNT + 1, size=reports)
    sizes[0] = LARGE_COUNT
    return sizes


def responders(sizes: np.ndarray, rng: np.random.Generator, mean: float = MEAN, kappa: float = KAPPA) -> np.ndarray:
    """Responders per report from the beta-binomial: θ ~ Beta(mean κ, (1 - mean) κ), y ~ Binomial(n, θ)."""
    theta = rng.beta(mean * kappa, (1 - mean) * kappa, size=len(sizes))
    return rng.binomial(sizes, theta)


def simulate(reports: int, seed: int = 20261204, large_counts: bool = False) -> list[dict]:
    """The rows of a simulated evidence table (naltrexone, the primary outcome only)."""
    rng = np.random.default_rng(seed)
    sizes = large_sizes(reports, rng) if large_counts else report_sizes(reports, rng)
    counts = responders(sizes, rng)
    return [{"report_id": f"sim{i + 1:05d}", "drug": "naltrexone", "n_treated": int(n), "n_any_response": int(y)}
            for i, (n, y) in enumerate(zip(sizes, counts, strict=True))]


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path
