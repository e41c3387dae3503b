"""Publication bias as outcome-dependent selection of reports.

A report in a mechanism's scope is always published when every patient responded, and otherwise with
relative probability ω (the weight). Conditioning on publication,

    P(y | published) = P(y) · P(pub | y) / P(pub),   P(pub | population, n) = P(y = n) + ω (1 − P(y = n)),

where P(y = n) = P(y = n | population, n) is the chance that a report of n patients is all-responder,
exactly for each report's size (the family supplies log P(y = n)). The scope is a mechanism's choice:
`single_patient` (reports of one patient; there P(y = n) is the population mean) or `all_responders`
(reports of any size). ω = 1, or an empty scope, adds exactly 0: no selection.
"""

import numpy as np
import pytensor.tensor as pt
from pytensor.conditional import ifelse

MECHANISMS = ("none", "single_patient", "all_responders")


def in_scope(mechanism: str, n) -> np.ndarray:
    """Which reports (by size) a mechanism applies to."""
    n = np.asarray(n)
    if mechanism == "none":
        return np.zeros(n.shape, dtype=bool)
    if mechanism == "single_patient":
        return n == 1
    if mechanism == "all_responders":
        return np.ones(n.shape, dtype=bool)
    raise ValueError(f"unknown publication mechanism {mechanism!r} (known: {', '.join(MECHANISMS)})")


def log_selection(y, n, log_p_all_responded, selected, weight, multiplicity):
    """Σ over reports in scope of log P(pub | y_i) − log P(pub | population, n_i), each row's term counted
    `multiplicity` times.

    Behind a conditional on "any report in scope", so that a model without selection does not pay for
    P(y = n) at every gradient (the logit-normal's quadrature is most of its cost otherwise): PyTensor
    moves work used only by one branch into that branch, which JAX then evaluates lazily."""
    in_scope = pt.eq(selected, 1)
    p_all = pt.exp(log_p_all_responded)
    term = pt.switch(pt.lt(y, n), pt.log(weight), 0.0) - pt.log(weight + (1 - weight) * p_all)
    return ifelse(pt.any(in_scope), pt.sum(pt.switch(in_scope, multiplicity * term, 0.0)),
                  pt.zeros((), dtype=term.dtype))
