"""Analysis configs: TOML files that may extend a parent, validated into one frozen object.

A config names its parent with ``extends = "default.toml"`` (a path relative to the config file);
tables are merged key by key, the child winning. Unknown keys, wrong types and impossible values are
rejected with one line per problem naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from analysis.data import (
    DEFAULT_KNOWN_DRUGS,
    OUTCOMES,
    BinomialData,
    EvidenceTable,
    Selection,
    load_evidence,
    read_patients,
    select_counts,
)
from analysis.errors import InputError
from analysis.covariates import COVARIATE_NAMES, build_design, covariate_values
from models.priors import BetaBinomialPrior, LogitNormalPrior, SequentialPrior
from models.publication import MECHANISMS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_renamed(values, old_key: str, message: str):
    """A config section's raw values, unless they use a key that was renamed: then its one-line message."""
    if isinstance(values, dict) and old_key in values:
        raise ValueError(message)
    return values


class DataSettings(_Section):
    path: str = "data/reports.csv"
    """Relative paths are relative to the project root."""
    patients_path: str = "data/patients.csv"
    """Per-patient detail (starting doses, times to response); "" = none. `--data` clears it."""
    appraisal_path: str = "data/appraisal.csv"
    """Risk-of-bias appraisal, one row per report; "" = none (the sections that need it say so)."""
    search_path: str = "data/search.md"
    """How the reports were found (the report's methods and PRISMA flow); "" = none."""
    excluded_path: str = "data/excluded_on_reading.csv"
    """Records read and excluded, with the reason (PRISMA flow); "" = none."""
    outcome: Outcome = "any_response"
    drug: str = "naltrexone"
    known_drugs: tuple[str, ...] = DEFAULT_KNOWN_DRUGS
    # Evidence-set filters for sensitivity analyses, one per field of analysis.data.Selection (which keeps the
    # loader free of the config); defaults keep the default set.
    exclude_reports: tuple[str, ...] = ()
    exclude_source_levels: tuple[str, ...] = ()
    min_n: PositiveInt = 1
    max_n: PositiveInt | None = None
    max_start_dose_mg: PositiveFloat | None = None
    max_concern: Literal["low", "moderate", "high"] | None = None
    """Leave out reports whose overall risk-of-bias concern (the appraisal) is above this."""
    include_reasons: tuple[str, ...] = ()
    blank_as_nonresponse: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, values):
        return refuse_renamed(values, "max_dose_mg", "max_dose_mg selected on the highest dose, which depends on "
                              "the outcome (non-responders were escalated); use max_start_dose_mg")

    def selection(self, concern_excluded: tuple[str, ...] = ()) -> Selection:
        fields = {f.name for f in dataclasses.fields(Selection)} - {"concern_excluded"}
        return Selection(**{name: getattr(self, name) for name in fields}, concern_excluded=concern_excluded)

    def load(self) -> tuple[EvidenceTable, BinomialData]:
        """The validated evidence table and the counts this config pools; refuses a selection that
        leaves no report."""
        table = load_evidence(self.resolved_path(), outcomes=(self.outcome,), known_drugs=self.known_drugs)
        data = select_counts(table, self.outcome, self.drug, self.selection(self._concern_excluded(table)),
                             patients=self.load_patients(table))
        if len(data) == 0:
            raise InputError(f"{table.path}: no report left to pool: no included report of drug '{self.drug}' "
                             f"has a count in column n_{self.outcome}")
        return table, data

    def _concern_excluded(self, table: EvidenceTable) -> tuple[str, ...]:
        if self.max_concern is None:
            return ()
        appraisal = self.load_appraisal(table)
        if appraisal is None:
            raise InputError(f"{table.path}: data.max_concern needs a risk-of-bias appraisal (data.appraisal_path)")
        return tuple(r for r in table.frame["report_id"] if r not in appraisal.reports_with_concern_at_most(self.max_concern))

    def load_appraisal(self, table: EvidenceTable):
        """The validated appraisal of the table's reports, or None when the data come without one."""
        from analysis.appraisal import load_appraisal

        path = self.companion(self.appraisal_path)
        return None if path is None else load_appraisal(path, tuple(table.frame["report_id"]))

    def load_patients(self, table: EvidenceTable) -> pd.DataFrame | None:
        """The per-patient table checked against `table`, or None when the config names none."""
        path = self.companion(self.patients_path)
        return None if path is None else read_patients(path, table)

    def resolved_path(self) -> Path:
        return _resolve(self.path)

    def companion(self, path: str) -> Path | None:
        """A companion file's path, or None when the config names none."""
        return _resolve(path) if path else None


def _resolve(path: str) -> Path:
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


class PublicationSettings(_Section):
    """Outcome-dependent publication (models.publication): a report in the mechanism's scope is always
    published when every patient responded, any other with relative probability `weight`."""

    mechanism: Literal[MECHANISMS] = "none"  # type: ignore[valid-type]
    weight: float = Field(1.0, gt=0, le=1)
    """ω: relative chance that a report in scope with a non-responder is published (1 = no selection)."""

    @model_validator(mode="after")
    def _weight_needs_a_mechanism(self):
        if self.mechanism == "none" and self.weight != 1:
            raise ValueError('weight applies only with a mechanism ("single_patient" or "all_responders")')
        return self


class ModelSettings(_Section):
    family: Literal["beta_binomial", "logit_normal"] = "beta_binomial"
    beta_binomial: BetaBinomialPrior = BetaBinomialPrior()
    logit_normal: LogitNormalPrior = LogitNormalPrior()
    publication: PublicationSettings = PublicationSettings()
    covariates: tuple[Literal[COVARIATE_NAMES], ...] = ()  # type: ignore[valid-type]
    """Report-level covariates on the logit of the report mean (meta-regression; analysis.covariates)."""
    covariate_missing: Literal["error", "drop"] = "error"
    """A report without a value for a covariate: an error naming it, or left out of the analysis."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, values):
        return refuse_renamed(values, "selection_weight", 'selection_weight is replaced by [model.publication]: '
                              'mechanism = "single_patient", weight = (the old value)')

    @property
    def prior(self) -> BetaBinomialPrior | LogitNormalPrior:
        return getattr(self, self.family)


class SamplingSettings(_Section):
    chains: PositiveInt = 4
    cores: PositiveInt = 2
    draws: int = Field(2000, ge=10)
    tune: int = Field(1000, ge=0)
    target_accept: float = Field(0.95, gt=0, lt=1)
    seed: int = Field(20261121, ge=0)
    prior_draws: int = Field(2000, ge=10)


class DiagnosticsSettings(_Section):
    rhat_max: float = Field(1.01, gt=1.0)
    ess_bulk_min: float = Field(400, ge=0)
    ess_tail_min: float = Field(400, ge=0)
    max_divergences: int = Field(0, ge=0)


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
OpenProbability = Annotated[float, Field(gt=0.0, lt=1.0)]


class BorrowingSettings(_Section):
    """The target arm (naloxone by default), informed by the pooled reports of `data.drug`."""

    enabled: bool = True
    target_drug: str = "naloxone"
    robust_weight: Probability = 0.2
    """Weight w of the vague component, (1 − w)·MAP + w·Beta(vague); also the joint model's
    non-exchangeable weight, so the two routes fit the same model."""
    vague: tuple[PositiveFloat, PositiveFloat] = (1.0, 1.0)
    thresholds: tuple[OpenProbability, ...] = (0.5, 0.7, 0.8, 0.9)
    """Report P(θ_target > c) for each c."""
    weight_sweep: tuple[Probability, ...] = (0.0, 0.1, 0.2, 0.5, 1.0)
    max_components: int = Field(4, ge=1, le=8)
    conflict_alpha: OpenProbability = 0.05
    """Flag prior-data conflict when Box's prior predictive p-value is below this."""


class CalibrationSettings(_Section):
    """Simulation-based calibration (`python -m analysis.validate`): the config's model refitted to data
    simulated from its prior, with the chains and target acceptance of `sampling`."""

    simulations: int = Field(200, ge=1)
    draws: int = Field(1000, ge=10)
    """Per chain, after `tune`."""
    tune: int = Field(1000, ge=0)
    ranks: int = Field(100, ge=10)
    """Posterior draws kept per simulation, evenly thinned (so ranks run from 0 to `ranks`): thinning
    makes the kept draws nearly independent, which rank uniformity assumes."""
    alpha: OpenProbability = 0.01
    """Family-wise level of the uniformity tests (Bonferroni over every quantity checked)."""


class GradedSettings(_Section):
    """The graded outcomes (any, marked, complete, sustained response) as one coherent model
    (`models.sequential`), fitted beside the primary analysis; `data.outcome` does not apply to it."""

    enabled: bool = True
    model: Literal["sequential"] = "sequential"
    missing: Literal["at_random", "failure"] = "at_random"
    """An ungraded stage is missing at random given the report's effects (the model), or, as a sensitivity
    analysis, counted as failures in series of two or more patients (`models.sequential.missing_as_failure`)."""
    prior: SequentialPrior = SequentialPrior()
    draws: int = Field(1000, ge=10)
    """Draws per chain (the other settings are `sampling`'s): 4 × 1000 give a bulk ESS of thousands."""


class CumulativeSettings(_Section):
    """Cumulative meta-analysis: refits in publication-year order."""

    enabled: bool = True
    first_seen: dict[str, int] = {}
    """Reports whose year is uncertain, with the year they were first seen: the analysis is shown again with
    them at that year."""


GradeLevel = Literal["high", "moderate", "low", "very low"]


class GradeJudgement(_Section):
    judgement: Literal["not serious", "serious", "very serious"]
    reason: str


class GradeSettings(_Section):
    """GRADE certainty of evidence: the judgements a reviewer owns, and the thresholds of the rules the run
    computes (`analysis.grade` writes each rule into the report)."""

    start: GradeLevel = "low"
    start_reason: str = ("non-comparative case series and case reports are observational evidence, which GRADE "
                         "rates from low certainty before any domain is assessed")
    indirectness: GradeJudgement = GradeJudgement(
        judgement="serious",
        reason="no validated Hailey-Hailey outcome measure: response is the authors' or patients' global "
               "judgement, 'any response' includes mild and transient improvement, and follow-up is short")
    risk_of_bias_high_share: Probability = 0.5
    """Risk of bias is very serious when at least this share of patients is in reports of high concern, and
    serious when less than this share is in reports of low concern."""
    inconsistency_width: tuple[Probability, Probability] = (0.4, 0.7)
    """Width of the 95% predictive interval for a new report above which inconsistency is serious, very serious."""
    imprecision_width: tuple[Probability, Probability] = (0.2, 0.4)
    """Width of the pooled 95% interval above which imprecision is serious, very serious."""
    publication_shift: Probability = 0.05
    """Publication bias is strongly suspected when all-responder selection at ω = 0.5 lowers the pooled mean
    by more than this, or when P(size slope < 0) is at least `publication_slope_probability`."""
    publication_slope_probability: Probability = 0.95


class Config(_Section):
    name: str
    description: str = ""
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    sampling: SamplingSettings = SamplingSettings()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    borrowing: BorrowingSettings = BorrowingSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    graded: GradedSettings = GradedSettings()
    cumulative: CumulativeSettings = CumulativeSettings()
    grade: GradeSettings = GradeSettings()
    source: str = ""
    """The config file this was loaded from (set by the loader)."""

    def load(self) -> tuple[EvidenceTable, BinomialData]:
        """The evidence table and the counts this config pools: the data selection, then, with
        `model.covariate_missing = "drop"`, without the reports that lack a covariate value."""
        table, data = self.data.load()
        if self.model.covariates and self.model.covariate_missing == "drop":
            data = data.subset(covariate_values(data.rows, self.model.covariates).notna().all(axis=1).to_numpy())
            if len(data) == 0:
                raise InputError(f"{table.path}: no report left to pool: none has a value for every covariate")
        if self.model.covariates:
            build_design(data.rows, self.model.covariates, table.path)  # every problem now, before any fit
        return table, data


def user_data(path: str | Path | None) -> dict:
    """The `data` overrides for a user's evidence file: it comes without the shipped companion files
    (patients, appraisal, search log, exclusions), unless those are given too."""
    if path is None:
        return {}
    return {"path": str(Path(path).resolve()), "patients_path": "", "appraisal_path": "", "search_path": "",
            "excluded_path": ""}


def display_path(path: str | Path) -> str:
    """A path as users see it: relative to the project root when inside it, so outputs do not depend on
    where the project is checked out."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def load_config(path: str | Path = DEFAULT_CONFIG, **overrides: dict) -> Config:
    """Load a config file, following `extends`, then apply section overrides (e.g. sampling={"seed": 1})."""
    path = Path(path)
    merged = _read_with_parents(path, chain=())
    merged.setdefault("name", path.stem)
    merged["source"] = display_path(path)
    for section, values in overrides.items():
        current = merged.get(section, {})
        # A section that is not a table (`data = 5`) is left as written for validation to report.
        merged[section] = _merge(current, values) if isinstance(current, dict) else current
    try:
        return Config.model_validate(merged)
    except ValidationError as err:
        raise InputError([f"{path}: {_describe(e)}" for e in err.errors()]) from None


def _read_with_parents(path: Path, chain: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(p.name for p in chain + (resolved,))
        raise InputError(f"{chain[0]}: circular 'extends' ({cycle})")
    if not path.is_file():
        origin = f"{chain[-1]}: extends " if chain else ""
        raise InputError(f"{origin}{path}: config file not found")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the file ({err.strerror or err})") from None
    parent = document.pop("extends", None)
    if parent is None:
        return document
    if not isinstance(parent, str):
        raise InputError(f"{path}: extends: must be a file name, got {parent!r}")
    base = _read_with_parents(path.parent / parent, chain + (resolved,))
    base.pop("name", None)
    base.pop("description", None)
    return _merge(base, document)


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key}: {error['msg']} (got {error.get('input')!r})"
