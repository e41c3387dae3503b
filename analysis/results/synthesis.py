"""`Synthesis`: everything one run computes, and `summary.json` as its dump (`to_dict`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Primary, Result, internal, to_plain


@dataclass(frozen=True)
class Synthesis(Result):
    """The run's results. `meta` holds the run's identity (config, data, hashes, names); the other fields
    are the steps' results, None where a step did not run (its reason in `skipped`)."""

    meta: dict[str, Any]
    evidence: dict[str, Any]
    data_warnings: tuple[str, ...]
    primary: Primary
    comparators: Any
    publication: Any
    meta_regression: Any
    small_study: Any
    cumulative: Any
    graded: Any
    safety: Any
    durability: Any
    risk_of_bias: Any
    prisma: dict[str, Any]
    search: dict[str, Any] | None
    evidence_rows: tuple[Any, ...]
    grade: dict[str, Any]
    grade_rules: dict[str, str]
    target: Any
    sweep: Any
    design: Any
    next_report: Any
    skipped: dict[str, str]
    failures: tuple[str, ...]
    psense_tree: Any = internal()
    """The DataTree the power-scaling figure draws (posterior, log_likelihood, log_prior), or None."""
    config: dict = internal()
    """The config as resolved (config.json)."""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        p = self.primary
        document = {
            **to_plain(self.meta),
            "status": "passed" if self.passed else "failed",
            "failures": list(self.failures),
            "data_warnings": list(self.data_warnings),
            "evidence": to_plain(self.evidence),
            "method": p.method,
            "numerical_error": to_plain(p.numerical_error),
            "pooled": p.pooled.to_dict(),
            "predictive": p.predictive.to_dict(),
            "heterogeneity": to_plain(p.heterogeneity),
            "hyperparameters": to_plain(p.hyperparameters),
            "prior_predictive": to_plain(p.prior),
            "reports": to_plain(p.reports),
            "predictive_checks": to_plain(p.checks),
            "loo": p.loo.to_dict(),
            "cross_check": to_plain(p.cross_check),
            "diagnostics": p.convergence.to_dict(),
            "comparators": to_plain(self.comparators),
            "skipped": dict(self.skipped),
            "evidence_table": [to_plain(r) for r in self.evidence_rows],
        }
        optional = {"expit_mu": p.expit_mu, "weights": p.weights, "bias": self.publication,
                    "meta_regression": self.meta_regression, "small_study": self.small_study,
                    "cumulative": self.cumulative, "graded": self.graded, "safety": self.safety,
                    "durability": self.durability, "risk_of_bias": self.risk_of_bias, "sensitivity": self.sweep,
                    "design": self.design, "next_report": self.next_report}
        document.update({k: to_plain(v) for k, v in optional.items() if v is not None})
        document["prisma"] = to_plain(self.prisma)
        document["search"] = to_plain(self.search)
        document["grade"] = to_plain(self.grade)
        document["grade_rules"] = dict(self.grade_rules)
        if self.target is not None:
            document["target"] = to_plain(self.target)
        return document
