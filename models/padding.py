"""Fixed array sizes, so that data sets of similar size share one compiled sampler."""

import numpy as np


def padded_size(size: int, minimum: int = 16) -> int:
    """`size` rounded up to a power of two, at least `minimum`.

    A compiled program has fixed array shapes. Report arrays are padded to this length with empty
    reports (n = 0, which add exactly 0 to the log density), so data sets of similar size (sensitivity
    variants, leave-one-out, cumulative steps, a user's own table) share one compiled program.
    """
    return max(minimum, 1 << max(int(size) - 1, 0).bit_length())


def pad(values, size: int) -> np.ndarray:
    """An integer count array padded with zeros (empty reports) to `size`."""
    values = np.asarray(values, dtype=np.int64)
    return np.concatenate([values, np.zeros(size - values.size, dtype=np.int64)])


def pad_rows(values, size: int) -> np.ndarray:
    """A float matrix (one row per report) padded with zero rows to `size` rows."""
    values = np.asarray(values, dtype=np.float64)
    return np.concatenate([values, np.zeros((size - values.shape[0], values.shape[1]))])


def report_values(reports, slope_sd: float) -> dict:
    """The `pm.Data` values every report-level family shares: counts, how many reports each row stands
    for, publication scope and weight, and the covariates with their slopes' prior scale (when there are
    any), padded to `padded_size`."""
    size = padded_size(len(reports))
    values = {
        "responders": pad(reports.y, size),
        "n_treated": pad(reports.n, size),
        "multiplicity": np.concatenate([reports.multiplicity, np.zeros(size - len(reports))]),
        "publication_scope": pad(reports.selected, size),
        "publication_weight": np.float64(reports.publication_weight),
    }
    if reports.n_covariates:
        values["covariates"] = pad_rows(reports.covariates, size)
        values["slope_sd"] = np.float64(slope_sd)
    return values
