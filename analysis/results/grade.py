"""GRADE summary of findings: one row per outcome, with every domain's judgement and reason."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.results import Estimate, Result


@dataclass(frozen=True)
class Domain(Result):
    judgement: str
    reason: str
    supporting: tuple[str, ...] = ()
    """Considerations that support a judgement made on other grounds (not a detection rule)."""


@dataclass(frozen=True)
class GradeRow(Result):
    """One outcome: the estimate and where it comes from, the denominators that go with it, the crude count
    of the reports that graded it, the domains and the certainty."""

    source: str
    estimate: Estimate | None
    estimate_reports: int
    estimate_patients: int
    graded_reports: int
    graded_patients: int
    crude_y: int
    crude_n: int
    domains: dict[str, Domain]
    certainty: str
