"""Facts about the evidence the report shows beside the model: every report of the table with its role,
the risk-of-bias summary over the pooled reports, the PRISMA flow, the search log, and the conventional
comparators (crude, common-effect, ML GLMM) that published reviews quote."""

from __future__ import annotations

import pandas as pd

from analysis.inputs.appraisal import ANSWERS, CONCERNS, ITEM_KEYS, ITEMS, Appraisal
from analysis.inputs.bundle import Inputs
from analysis.inputs.search import search_methods
from analysis.results.evidence import Comparators, EvidenceRow, RiskOfBias
from analysis.steps.prisma import prisma_counts
from models.comparators import comparators

DETAILS = (("response_wording", "wording"), ("followup_note", "follow-up"), ("cointervention", "co-interventions"),
           ("adverse_events", "adverse events"), ("withdrawal_flare", "flare on stopping or lowering"),
           ("overlap_note", "overlap with other reports"))
"""Report-level text shown with each report, as extracted."""
GRADED_COLUMNS = ("any_response", "marked", "complete", "sustained")


def evidence_rows(inputs: Inputs, target: str | None) -> tuple[EvidenceRow, ...]:
    """Every report of the table, included or not, with why, and what a reader needs to judge it."""
    frame, settings = inputs.table.frame, inputs.config.data
    column = f"n_{settings.outcome}"
    rows = []
    for _, r in frame.iterrows():
        if not r["included"]:
            role = f"excluded ({str(r.get('default_set', '')).removeprefix('exclude_').replace('_', ' ')})"
        elif r["drug"] == settings.drug:
            role = "pooled" if pd.notna(r.get(column)) else f"not graded for {settings.outcome.replace('_', ' ')}"
        elif r["drug"] == target:
            role = "target arm"
        else:
            role = "not analysed"
        graded = {o: None if f"n_{o}" not in r or pd.isna(r[f"n_{o}"]) else int(r[f"n_{o}"]) for o in GRADED_COLUMNS}
        link_text, link = _link(r)
        rows.append(EvidenceRow(
            str(r["report_id"]), _text(r.get("year", "")), _text(r.get("country", "")), _text(r.get("design", "")),
            str(r["drug"]), _text(r.get("route", "")), _dose(r), int(r["n_treated"]), graded, role,
            _text(r.get("source_level", "")), _text(r.get("confidence", "")), link, link_text,
            tuple((label, _text(r.get(key, ""))) for key, label in DETAILS if _text(r.get(key, "")))))
    return tuple(rows)


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _dose(r) -> str:
    lo, hi = _text(r.get("dose_mg_min", "")), _text(r.get("dose_mg_max", ""))
    if lo and hi:
        return f"{lo} mg/day" if lo == hi else f"{lo}–{hi} mg/day"
    return _text(r.get("dose_note", "")) or "dose not stated"


def _link(r) -> tuple[str, str]:
    if _text(r.get("doi", "")):
        return f"doi:{r['doi']}", f"https://doi.org/{r['doi']}"
    if _text(r.get("pmid", "")):
        return f"PMID {r['pmid']}", f"https://pubmed.ncbi.nlm.nih.gov/{r['pmid']}/"
    if _text(r.get("source_url", "")):
        return "source", str(r["source_url"])
    return "", ""


def risk_of_bias(appraisal: Appraisal | None, pooled: tuple[str, ...]) -> RiskOfBias | None:
    """The appraisal of every report, and its counts over the pooled reports only."""
    if appraisal is None:
        return None
    kept = [r for r in appraisal if r.report_id in pooled]
    return RiskOfBias(
        reports=appraisal.as_summary(),
        notes={r.report_id: {**r.notes, "overall": r.overall_note} for r in appraisal},
        items=tuple({"key": i.key, "number": i.number, "label": i.label, "domain": i.domain, "question": i.question}
                    for i in ITEMS),
        pooled_reports=tuple(r.report_id for r in kept),
        pooled_overall={level: sum(r.overall == level for r in kept) for level in CONCERNS},
        pooled_items={key: {a: sum(r.answers[key] == a for r in kept) for a in ANSWERS} for key in ITEM_KEYS})


def prisma(inputs: Inputs, target: str | None) -> dict:
    return prisma_counts(inputs.table.frame, inputs.excluded, inputs.config.data.drug, target)


def search(inputs: Inputs) -> dict | None:
    return None if inputs.search is None else search_methods(inputs.search)


def conventional(inputs: Inputs) -> Comparators:
    found = comparators(inputs.data.y, inputs.data.n)
    return Comparators(found["crude"], found["common_effect"], found["glmm_ml"])
