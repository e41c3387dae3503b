"""Every input file of a run, read once and validated into one object, before any computation.

`load_inputs(config)` reads the evidence table, the per-patient table, the appraisal, the records
excluded on reading and the search log that the config names, checks each against the evidence, applies
the config's selection and builds the covariate design: every problem a user can fix is found here, one
line each, before a model is built. Variants of one run (the sensitivity sweep) pass the `Files` of the
first, so that a file is read once per run however many configs use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.errors import InputError
from analysis.inputs.appraisal import Appraisal, load_appraisal
from analysis.inputs.config import PROJECT_ROOT, Config, DataSettings
from analysis.inputs.covariates import Design, build_design, covariate_values
from analysis.inputs.evidence import BinomialData, EvidenceTable, Selection, load_evidence, select_counts
from analysis.inputs.patients import read_patients
from analysis.inputs.search import load_excluded


@dataclass
class Files:
    """The files a run has read, by path and kind: one read per file per run."""

    read: dict[tuple[str, str], object] = field(default_factory=dict)

    def get(self, kind: str, path: Path, reader):
        key = (kind, str(Path(path).resolve()))
        if key not in self.read:
            self.read[key] = reader()
        return self.read[key]


@dataclass(frozen=True)
class Inputs:
    """What one analysis reads: the config, the evidence table, the counts it pools (after the selection)
    and the companion files (None where the config names none)."""

    config: Config
    table: EvidenceTable
    data: BinomialData
    patients: pd.DataFrame | None
    appraisal: Appraisal | None
    excluded: pd.DataFrame | None
    search: str | None
    design: Design | None
    """The covariates in natural units (meta-regression), or None."""
    files: Files = field(compare=False, repr=False, default_factory=Files)

    @property
    def condition(self) -> str:
        """The condition's name: the config's, else the evidence file's `condition` column when it gives one."""
        if self.config.names.condition:
            return self.config.names.condition
        column = self.table.frame.get("condition")
        names = [] if column is None else sorted({c for c in column if c})
        return names[0] if len(names) == 1 else ""

    def paths(self) -> list[Path]:
        """Every file this analysis reads (an output folder may hold none of them)."""
        settings = self.config.data
        paths = [PROJECT_ROOT / self.config.source, settings.resolved_path()]
        paths += [settings.companion(p) for p in (settings.patients_path, settings.appraisal_path,
                                                  settings.search_path, settings.excluded_path)]
        return [p for p in paths if p is not None]

    def target(self, drug: str) -> BinomialData:
        """The included reports of another drug that grade the outcome (the target arm of borrowing)."""
        return select_counts(self.table, self.config.data.outcome, drug)


def load_inputs(config: Config, files: Files | None = None) -> Inputs:
    """Read and validate everything `config` names (see the module docstring)."""
    files = files or Files()
    settings = config.data
    path = settings.resolved_path()
    table = files.get("evidence", path, lambda: load_evidence(path, outcomes=(settings.outcome,),
                                                              known_drugs=settings.known_drugs))
    if f"n_{settings.outcome}" not in table.frame.columns:
        raise InputError(f"{path}: missing required column 'n_{settings.outcome}' for outcome '{settings.outcome}'")
    ids = tuple(table.frame["report_id"])
    patients = _companion(files, "patients", settings.patients_path,
                          lambda p: read_patients(p, set(ids), table.path))
    appraisal = _companion(files, "appraisal", settings.appraisal_path, lambda p: load_appraisal(p, ids))
    excluded = _companion(files, "excluded", settings.excluded_path, load_excluded)
    search = _companion(files, "search", settings.search_path, _read_text)
    data = select_counts(table, settings.outcome, settings.drug, selection(settings, table, appraisal),
                         patients=patients)
    if len(data) == 0:
        raise InputError(f"{table.path}: no report left to pool: no included report of drug '{settings.drug}' "
                         f"has a count in column n_{settings.outcome}")
    design = None
    if config.model.covariates:
        if config.model.covariate_missing == "drop":
            data = data.subset(covariate_values(data.rows, config.model.covariates).notna().all(axis=1).to_numpy())
            if len(data) == 0:
                raise InputError(f"{table.path}: no report left to pool: none has a value for every covariate")
        design = build_design(data.rows, config.model.covariates, table.path)
    return Inputs(config, table, data, patients, appraisal, excluded, search, design, files)


def selection(settings: DataSettings, table: EvidenceTable, appraisal: Appraisal | None) -> Selection:
    """The config's evidence filters (one field of `Selection` each), with the reports a risk-of-bias
    filter leaves out."""
    names = {f.name for f in dataclasses.fields(Selection)} - {"concern_excluded"}
    concern: tuple[str, ...] = ()
    if settings.max_concern is not None:
        if appraisal is None:
            raise InputError(f"{table.path}: data.max_concern needs a risk-of-bias appraisal (data.appraisal_path)")
        kept = appraisal.reports_with_concern_at_most(settings.max_concern)
        concern = tuple(r for r in table.frame["report_id"] if r not in kept)
    return Selection(**{name: getattr(settings, name) for name in names}, concern_excluded=concern)


def _companion(files: Files, kind: str, path: str, reader):
    if not path:
        return None
    resolved = DataSettings(path=path).resolved_path()
    return files.get(kind, resolved, lambda: reader(resolved))


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the file ({err})") from None
