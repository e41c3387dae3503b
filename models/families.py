"""The report-level model families and the one way to build a fitted model's spec.

Each family module offers the same interface (see `models.beta_binomial`), so fitting, quadrature,
sensitivity analyses and calibration share one code path.
"""

from __future__ import annotations

from models import beta_binomial, joint, logit_normal
from models.base import ModelSpec, Reports

FAMILIES = {
    "beta_binomial": beta_binomial,
    "logit_normal": logit_normal,
}

EMPTY_TARGET_WEIGHT = 0.5
"""Any w in (0, 1) gives log((1 − w) · 1 + w · 1) = 0 for an empty target arm."""


def model_spec(family_name: str, reports: Reports, prior) -> ModelSpec:
    """The reports' model, as the joint model with an empty target arm.

    A target arm with n = 0 adds log 1 = 0 to the log density, so the reports' model and every joint
    (EXNEX) model of the same family and prior share one compiled program."""
    return joint.model_spec(FAMILIES[family_name], reports, 0, 0, prior, EMPTY_TARGET_WEIGHT, (1.0, 1.0))


def target_spec(family_name: str, reports: Reports, y_target: int, n_target: int, prior, weight: float,
                vague) -> ModelSpec:
    return joint.model_spec(FAMILIES[family_name], reports, y_target, n_target, prior, weight, vague)
