"""Results about the evidence itself: what was pooled, how it was found, how it was appraised, and the
conventional comparators that readers of published reviews know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Result


@dataclass(frozen=True)
class EvidenceRow(Result):
    """One report of the table, included or not, with its role and what a reader needs to judge it."""

    report_id: str
    year: str
    country: str
    design: str
    drug: str
    route: str
    dose: str
    n: int
    graded: dict[str, int | None]
    role: str
    source_level: str
    confidence: str
    link: str
    link_text: str
    details: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RiskOfBias(Result):
    """The appraisal (Murad et al. 2018): every report's answers and notes, and the counts over the reports
    pooled in the primary analysis (not over every appraised row)."""

    reports: dict[str, dict[str, str]]
    """{report: {"overall": concern, item: answer, ...}}."""
    notes: dict[str, dict[str, str]]
    items: tuple[dict[str, Any], ...]
    """Each item's key, number, label, domain and question."""
    pooled_reports: tuple[str, ...]
    pooled_overall: dict[str, int]
    pooled_items: dict[str, dict[str, int]]


@dataclass(frozen=True)
class Comparators(Result):
    crude: dict[str, Any]
    common_effect: dict[str, Any]
    glmm_ml: dict[str, Any]
