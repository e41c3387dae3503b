"""Analysis configs: TOML files that may extend a parent, validated into one frozen object.

A config names its parent with ``extends = "default.toml"`` (a path relative to the config file);
tables are merged key by key, the child winning. Unknown keys, wrong types and impossible values are
rejected with one line per problem naming the file and the dotted key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from analysis.errors import InputError
from analysis.inputs.covariates import COVARIATE_NAMES
from models.priors import BetaBinomialPrior, LogitNormalPrior, SequentialPrior
from models.publication import MECHANISMS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "analysis" / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

OUTCOMES = ("any_response", "marked", "complete", "sustained")
DEFAULT_KNOWN_DRUGS = ("naltrexone", "naloxone")
MAX_SEED = 2**63 - 1
Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_renamed(values, old_key: str, message: str):
    """A config section's raw values, unless they use a key that was renamed: then its one-line message."""
    if isinstance(values, dict) and old_key in values:
        raise ValueError(message)
    return values


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
OpenProbability = Annotated[float, Field(gt=0.0, lt=1.0)]


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
    # Evidence-set filters for sensitivity analyses, one per field of analysis.inputs.evidence.Selection (which keeps the
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

    def resolved_path(self) -> Path:
        return resolve(self.path)

    def companion(self, path: str) -> Path | None:
        """A companion file's path, or None when the config names none."""
        return resolve(path) if path else None


def resolve(path: str) -> Path:
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


class NamesSettings(_Section):
    """What the report calls the condition; the drug and outcome names come from `data`. A user's own data
    (`--data`) start with no condition name (the report then says "the condition"), unless the evidence
    file has a `condition` column or `--condition` gives one."""

    condition: str = ""
    natural_course: str = ""
    """One clause on how the condition behaves untreated (why uncontrolled reports cannot show an effect),
    e.g. "it relapses and remits on its own"; "" leaves the clause out."""


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


class BiasSettings(_Section):
    """The bias-integrated answer (`analysis.steps.publication`): how strong selective publication of
    all-responder reports would have to be to change the conclusion, and the answer averaged over an
    uncertain selection strength ω."""

    scenarios: tuple[OpenProbability, ...] = (0.5, 0.25, 0.1)
    """Fixed selection weights shown as scenarios (all-responder reports of any size)."""
    single_patient_scenarios: tuple[OpenProbability, ...] = (0.5, 0.25)
    """Fixed selection weights of single-patient reports only (another mechanism, as scenarios)."""
    thresholds: tuple[OpenProbability, ...] = (0.75, 0.70)
    """Clinical thresholds for the pooled mean: the ω at which it falls below each is reported."""
    lower_bound_threshold: OpenProbability = 0.5
    """The ω at which the 95% lower bound of the pooled mean falls below this is reported."""
    omega_min: OpenProbability = 0.01
    """Smallest selection weight considered (reports with a non-responder 100 times less likely to be published)."""
    omega_prior: Literal["log_uniform", "uniform"] = "log_uniform"
    """The prior of ω in the averaged answer (the other one is shown as its sensitivity)."""
    omega_nodes: int = Field(24, ge=8, le=400)
    """Nodes of the quadrature over log ω (and of the tipping-point curve)."""


class ModelSettings(_Section):
    family: Literal["beta_binomial", "logit_normal"] = "beta_binomial"
    beta_binomial: BetaBinomialPrior = BetaBinomialPrior()
    logit_normal: LogitNormalPrior = LogitNormalPrior()
    publication: PublicationSettings = PublicationSettings()
    covariates: tuple[Literal[COVARIATE_NAMES], ...] = ()  # type: ignore[valid-type]
    """Report-level covariates on the logit of the report mean (meta-regression; analysis.inputs.covariates)."""
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
    seed: int = Field(20261121, ge=0, le=MAX_SEED)
    prior_draws: int = Field(2000, ge=10)


class DiagnosticsSettings(_Section):
    rhat_max: float = Field(1.01, gt=1.0)
    ess_bulk_min: float = Field(400, ge=0)
    ess_tail_min: float = Field(400, ge=0)
    max_divergences: int = Field(0, ge=0)




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


class DesignSettings(_Section):
    """Planning the next study (`analysis.steps.design`): a single-arm study judged against a benchmark
    response rate, the target arm's study with and without borrowing, interim monitoring, and a randomised
    withdrawal. The benchmark is a judgement (there is no control arm); the report shows how the answer
    moves with it."""

    enabled: bool = True
    benchmark: OpenProbability = 0.5
    """θ₀: the response rate a new treatment must beat (e.g. what standard care achieves)."""
    benchmarks: tuple[OpenProbability, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
    probability: OpenProbability = 0.9
    """Success when P(θ > benchmark | the study's data) exceeds this."""
    relevance: OpenProbability | None = None
    """Optional second (dual) criterion: P(θ > relevance) > 0.5, a clinically relevant rate."""
    analysis_prior: tuple[PositiveFloat, PositiveFloat] = (1.0, 1.0)
    """The new study's own analysis prior for θ (Beta), independent of the synthesis."""
    sizes: tuple[PositiveInt, ...] = (10, 20, 30, 40, 60)
    target_sizes: tuple[PositiveInt, ...] = (5, 10, 20)
    interim_looks: tuple[PositiveInt, ...] = (10, 20, 30)
    interim_max: PositiveInt = 40
    interim_final_probability: OpenProbability = 0.9
    interim_futility: Probability = 0.05
    interim_efficacy: Probability = 0.95
    withdrawal_sizes: tuple[PositiveInt, ...] = (10, 20, 30)
    withdrawal_probability: OpenProbability = 0.9
    withdrawal_power: Probability = 0.5
    """How many patients one dechallenge observation counts as in the withdrawal's design priors (a power
    prior: 1 takes them at face value, 0 ignores them)."""


GradeLevel = Literal["high", "moderate", "low", "very low"]


class GradeJudgement(_Section):
    judgement: Literal["not serious", "serious", "very serious"]
    reason: str


class GradeSettings(_Section):
    """GRADE certainty of evidence: the judgements a reviewer owns (starting level, indirectness,
    publication bias), and the thresholds of the rules the run computes (`analysis.steps.grade` writes
    each rule into the report). `{condition}` in a reason is replaced by the condition's name."""

    start: GradeLevel = "low"
    start_reason: str = ("non-comparative case series and case reports are observational evidence, which GRADE "
                         "rates from low certainty before any domain is assessed")
    indirectness: GradeJudgement = GradeJudgement(
        judgement="serious",
        reason="no validated outcome measure for {condition}: response is the authors' or patients' global "
               "judgement, 'any response' includes mild and transient improvement, and follow-up is short")
    publication_bias: GradeJudgement = GradeJudgement(
        judgement="serious",
        reason="strongly suspected: case reports and small series of successes are more likely to be written up and published "
               "than failures; no registry or consecutive series exists to check it")
    harms_publication_bias: GradeJudgement = GradeJudgement(
        judgement="serious",
        reason="strongly suspected, toward safety: harms are under-reported in case reports (rarely looked for, seldom stated), which biases the "
               "counts toward safety: the opposite direction to the response outcomes")
    risk_of_bias_high_share: Probability = 0.5
    """Risk of bias is very serious when at least this share of patients is in reports of high concern, and
    serious when less than this share is in reports of low concern."""
    decision_threshold: OpenProbability = 0.5
    """The response rate that would change a decision (e.g. justify an off-label trial): imprecision is judged
    by whether the 95% interval crosses it."""
    harm_threshold: OpenProbability = 0.1
    """The adverse-event risk that would change a decision (common side effects, 1 patient in 10)."""
    optimal_information_size: int = Field(100, ge=1)
    """Patients below which the estimate is imprecise whatever its interval (GRADE's optimal information
    size: about 100 patients give a 95% interval of ±0.1 around a proportion near 0.5)."""


class Config(_Section):
    name: str
    description: str = ""
    names: NamesSettings = NamesSettings()
    data: DataSettings = DataSettings()
    bias: BiasSettings = BiasSettings()
    model: ModelSettings = ModelSettings()
    sampling: SamplingSettings = SamplingSettings()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()
    borrowing: BorrowingSettings = BorrowingSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    graded: GradedSettings = GradedSettings()
    cumulative: CumulativeSettings = CumulativeSettings()
    grade: GradeSettings = GradeSettings()
    design: DesignSettings = DesignSettings()
    source: str = ""
    """The config file this was loaded from (set by the loader)."""


def user_overrides(path: str | Path | None) -> dict[str, dict]:
    """The config overrides for a user's evidence file: it comes without the shipped companion files
    (patients, appraisal, search log, exclusions) and without the shipped data's condition name, unless
    those are given too."""
    if path is None:
        return {}
    return {"data": {"path": str(Path(path).resolve()), "patients_path": "", "appraisal_path": "",
                     "search_path": "", "excluded_path": ""},
            "names": {"condition": "", "natural_course": ""}}


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
