"""What a clinician asks beyond "how many respond": is it safe, how soon does it work, does it last, and
what happens on stopping. Read from the wording of the evidence table, never from a model: `wording`
holds the vocabularies and parsers, `safety` and `durability` the counts, `analysis.results.clinical`
their types and `analysis.report.prose.clinical` the sentences."""

from analysis.steps.clinical.durability import (LONG_FOLLOWUP_MONTHS, SHORT_FOLLOWUP_MONTHS, dechallenge,
                                                durability, followup, loss_on_treatment, time_to_first_improvement,
                                                time_to_response)
from analysis.steps.clinical.safety import JEFFREYS, safety
from analysis.steps.clinical.wording import (MONTH_DAYS, WEEK_DAYS, cell, classify_adverse_events,
                                             classify_flare, classify_rechallenge, count, followup_length,
                                             included_reports, parse_time_to_response, read_followup)

__all__ = [
    "JEFFREYS", "LONG_FOLLOWUP_MONTHS", "MONTH_DAYS", "SHORT_FOLLOWUP_MONTHS", "WEEK_DAYS", "cell",
    "classify_adverse_events", "classify_flare", "classify_rechallenge", "count", "dechallenge", "durability",
    "followup", "followup_length", "included_reports", "loss_on_treatment", "parse_time_to_response",
    "read_followup", "safety", "time_to_first_improvement", "time_to_response",
]
