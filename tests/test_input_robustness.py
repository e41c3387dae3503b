"""A statistician's own spreadsheets and configs: every bad input ends in one line per problem, never a traceback.

Bad files are built from the shipped `data/reports.csv` (read as strings, one cell edited) so the cases
look like real exports. Every case goes through the command's `main`; a few also through a fresh process
(about 3 s each), which must print the same lines. Property-based tests fuzz the loader itself.
"""

import contextlib
import csv
import io
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analysis import fit
from analysis.inputs.config import CONFIG_DIR, PROJECT_ROOT, load_config
from analysis.inputs.evidence import MAX_COUNT, MISSING_TOKENS, OUTCOMES, load_evidence, select_counts
from analysis.errors import InputError

REPORTS = PROJECT_ROOT / "data" / "reports.csv"
ORIGINAL = pd.read_csv(REPORTS, dtype=str, keep_default_na=False)
COUNT_COLUMNS = [c for c in ORIGINAL.columns if c.startswith("n_")]
ROW_OF = {rid: i for i, rid in enumerate(ORIGINAL["report_id"])}
EXTENDS_DEFAULT = f"extends = '{CONFIG_DIR / 'default.toml'}'\n"


def edited(**cells) -> pd.DataFrame:
    """The shipped table with cells replaced: edited(Albers2017={"n_any_response": "-1"})."""
    frame = ORIGINAL.copy()
    for rid, values in cells.items():
        for column, value in values.items():
            frame.loc[ROW_OF[rid], column] = value
    return frame


def write_frame(frame: pd.DataFrame, path: Path, **to_csv) -> Path:
    frame.to_csv(path, index=False, **to_csv)
    return path


def write_bytes(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def input_problems(path: Path, **kwargs) -> list[str]:
    with pytest.raises(InputError) as err:
        load_evidence(path, **kwargs)
    return err.value.problems


def assert_one_line_each(problems: list[str], path: Path) -> None:
    assert problems
    for line in problems:
        assert isinstance(line, str) and len(line.splitlines()) == 1, repr(line)
        assert path.name in line, line


# --- bad data through the command ---------------------------------------------------------------------

# Row-level problems are all collected in one pass, so one file carries all of them (one process run).
# case: (report edited, column, new cell, report id the message shows, expected text)
ROW_CASES = {
    "negative count": ("Albers2017", "n_any_response", "-1", "Albers2017", "'-1' is not a whole number of 0 or more"),
    "fractional count": ("Ibrahim2017", "n_marked", "2.5", "Ibrahim2017", "'2.5' is not a whole number"),
    "non-numeric count": ("Cao2018", "n_complete", "one", "Cao2018", "'one' is not a whole number"),
    "count above n_treated": ("JasansBarcelo2020", "n_no_response", "9", "JasansBarcelo2020",
                              "9 is larger than n_treated (8)"),
    "zero treated": ("Sonthalia2019", "n_treated", "0", "Sonthalia2019", "must be a whole number of at least 1, got 0"),
    "unknown drug": ("Moulin2019", "drug", "LDN", "Moulin2019", "unknown drug 'LDN' (known: naloxone, naltrexone)"),
    "duplicate report id": ("Grolleau2020", "report_id", "McBride2020", "McBride2020", "duplicate of row 9"),
    "blank report id": ("Campbell2018_unverified", "report_id", "", "<blank>", "report_id is blank"),
    "count too large to store": ("Gavali2024", "n_treated", "1" + "0" * 30, "Gavali2024",
                                 "is larger than 100,000,000, the largest count per report this tool supports"),
    "line break inside a cell": ("Kollman2018", "n_any_response", "1\n(relapsed)", "Kollman2018",
                                 r"'1\n(relapsed)' is not a whole number"),
}


def _xlsx(path: Path) -> Path:
    """What a workbook saved as .xlsx looks like to a CSV reader: a zip archive."""
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData/></worksheet>")
    return path


def _unquoted_separator(path: Path) -> Path:
    """A comma typed into the first report's title, written out without quotes by a hand-made export."""
    lines = REPORTS.read_text().splitlines(keepends=True)
    title = ORIGINAL.loc[0, "title"]
    lines[1] = lines[1].replace(title, f"{title}, a case series", 1)
    path.write_text("".join(lines))
    return path


# case: (how to build the file in a directory, expected text, report id the line names or None)
FILE_CASES = {
    "missing file": (lambda d: d / "no such file.csv", "file not found", None),
    "xlsx workbook": (lambda d: _xlsx(d / "reports.xlsx"), "not a text CSV file", None),
    "missing required column": (
        lambda d: write_frame(ORIGINAL.drop(columns="n_treated"), d / "no_n.csv"),
        "missing required column 'n_treated'", None,
    ),
    "empty file": (lambda d: write_bytes(d / "empty.csv", b""), "the file is empty", None),
    "header only": (lambda d: write_frame(ORIGINAL.iloc[:0], d / "header.csv"), "no data rows under the header", None),
    "outcome column entirely blank": (
        lambda d: write_frame(ORIGINAL.assign(n_any_response=""), d / "blank_outcome.csv"),
        "no included report of drug 'naltrexone' has a count in column n_any_response", None,
    ),
    "column repeated": (
        lambda d: write_frame(pd.concat([ORIGINAL, ORIGINAL[["n_any_response"]]], axis=1), d / "twice.csv"),
        "column 'n_any_response' appears more than once in the header", None,
    ),
    "unquoted separator in a cell": (
        lambda d: _unquoted_separator(d / "shifted.csv"),
        "32 cells but the header has 31 columns", "Albers2017",
    ),
}


class Run(NamedTuple):
    returncode: int
    stderr: str


def _main(*args: str) -> Run:
    """`python -m analysis.fit ARGS` in this process: the same code path as the command, without the 3 s
    start-up of a fresh interpreter (importing the models imports PyMC)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = fit.main(list(args))
    return Run(code, stderr.getvalue())


def _run_fit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis.fit", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """{case: (bad file, output directory)}; case "rows" is the shipped table with every ROW_CASES edit."""
    files = {}
    for case, (build, _, _) in FILE_CASES.items():
        folder = tmp_path_factory.mktemp("case")
        files[case] = (build(folder), folder / "out")
    folder = tmp_path_factory.mktemp("rows")
    cells: dict[str, dict[str, str]] = {}
    for rid, column, value, _, _ in ROW_CASES.values():
        cells.setdefault(rid, {})[column] = value
    files["rows"] = (write_frame(edited(**cells), folder / "my reports.csv"), folder / "out")
    return files


@pytest.fixture(scope="module")
def command_runs(bad_files) -> dict[str, tuple[Path, Path, Run]]:
    return {case: (path, out, _main("--data", str(path), "--out", str(out))) for case, (path, out) in bad_files.items()}


def assert_refused(path: Path, out: Path, run: Run | subprocess.CompletedProcess) -> list[str]:
    """Exit 2, no traceback, nothing written, every stderr line `error: <file>: ...`; returns the lines."""
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert lines and all(line.startswith(f"error: {path}") for line in lines), run.stderr
    assert not out.exists()
    return lines


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_unusable_file_is_refused_in_one_line(command_runs, case):
    path, out, run = command_runs[case]
    [line] = assert_refused(path, out, run)
    _, expected, row = FILE_CASES[case]
    assert path.name in line and expected in line
    if row is not None:
        assert f"(report_id {row})" in line


@pytest.mark.parametrize("case", ROW_CASES, ids=list(ROW_CASES))
def test_bad_cell_is_refused_naming_file_report_and_column(command_runs, case):
    path, out, run = command_runs["rows"]
    lines = assert_refused(path, out, run)
    rid, column, _, shown, expected = ROW_CASES[case]
    at = f"error: {path}: row {ROW_OF[rid] + 1} (report_id {shown}), column {column}: "
    assert any(line.startswith(at) and expected in line for line in lines), "\n".join(lines)


def test_only_the_edited_rows_are_reported(command_runs):
    """Every line belongs to an edited row: no knock-on complaints about the rows left alone."""
    path, out, run = command_runs["rows"]
    shown = {f"(report_id {case[3]})" for case in ROW_CASES.values()}
    for line in assert_refused(path, out, run):
        assert any(s in line for s in shown), line


PROCESS_CASES = ("rows",)


@pytest.fixture(scope="module")
def process_runs(bad_files, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Real `python -m analysis.fit` processes, side by side: the PROCESS_CASES files and a bad config."""
    config = tmp_path_factory.mktemp("config") / "my variant.toml"
    config.write_text(
        EXTENDS_DEFAULT + "sampling = 'fast'\n"
        "[model]\nfamly = 'logit_normal'\n[model.publication]\nmechanism = 'all_responders'\nweight = 0\n"
        "[borrowing]\nrobust_weight = 1.5\n"
    )
    argv = {case: ("--data", str(bad_files[case][0]), "--out", str(bad_files[case][1])) for case in PROCESS_CASES}
    argv["config"] = ("--config", str(config), "--data", str(REPORTS), "--seed", "3", "--out", str(config.parent / "out"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {case: pool.submit(_run_fit, *args) for case, args in argv.items()}
        return {case: run.result() for case, run in runs.items()} | {"config file": config}


@pytest.mark.parametrize("case", PROCESS_CASES)
def test_the_command_as_a_fresh_process_prints_the_same_lines_and_exits_2(bad_files, command_runs, process_runs, case):
    """The checks above call the command's `main`; a real process (about 3 s each, so only a few) shows
    the same lines, the exit status and that nothing else reaches stderr."""
    path, out = bad_files[case]
    assert assert_refused(path, out, process_runs[case]) == command_runs[case][2].stderr.splitlines()


@pytest.mark.parametrize(
    "content, expected",
    [
        (bytes(range(256)) * 4, "not a text CSV file"),
        (b"Dear colleague,\nplease find the counts attached.\n", "missing required column 'report_id'"),
        ("report_id,drug,n_treated,n_any_response\n".encode("utf-16"), "not a text CSV file"),
        (b'report_id,drug,n_treated,n_any_response\nA,"naltrexone,4,3\n', "not a readable CSV file (line 2"),
        (b'\xef\xbb\xbf""\r\n \r\n', "the file is empty"),
    ],
    ids=["binary bytes", "prose", "utf-16 text", "unclosed quote", "nothing but an empty quoted cell"],
)
def test_not_a_csv(tmp_path, content, expected):
    path = write_bytes(tmp_path / "upload.csv", content)
    problems = input_problems(path)
    assert_one_line_each(problems, path)
    assert expected in problems[0]


def test_unreadable_file(tmp_path, monkeypatch):
    """A file the user may not read, or one a spreadsheet program holds locked (the tests run as root, so
    the refusal is simulated)."""
    path = write_frame(ORIGINAL, tmp_path / "locked.csv")
    real = Path.read_bytes

    def refuse(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert input_problems(path) == [f"{path}: cannot read the file (Permission denied)"]


def test_counts_are_read_exactly_up_to_the_largest_supported(tmp_path):
    """int(float(cell)) would round 2**53 + 1; the largest supported count is read to the unit, one more
    is refused (the exact likelihood's loop bound grows with the largest count)."""
    n = MAX_COUNT
    frame = edited(Series14_Menta2024={"n_treated": str(n), "n_no_response": str(n - 8)})
    path = write_frame(frame, tmp_path / "big.csv")
    data = select_counts(load_evidence(path), "any_response", "naltrexone")
    assert data.n[data.report_ids.index("Series14_Menta2024")] == n
    for too_big in (n + 1, 2**53 + 1):
        frame = edited(Series14_Menta2024={"n_treated": str(too_big), "n_no_response": str(too_big - 8)})
        problems = input_problems(write_frame(frame, tmp_path / "bigger.csv"))
        assert any(f"column n_treated: {too_big} is larger than {MAX_COUNT:,}" in p for p in problems), problems


# --- spreadsheet exports -----------------------------------------------------------------------------

EXPORTS = {
    "utf-8 byte-order mark": {"encoding": "utf-8-sig"},
    "windows line endings": {"lineterminator": "\r\n"},
    "semicolon separated": {"sep": ";"},
    "tab separated": {"sep": "\t"},
    "european excel": {"sep": ";", "encoding": "utf-8-sig", "lineterminator": "\r\n", "quoting": csv.QUOTE_ALL},
}


def assert_same_evidence(path: Path, reference: Path = REPORTS) -> None:
    ours, theirs = load_evidence(path, outcomes=OUTCOMES), load_evidence(reference, outcomes=OUTCOMES)
    pd.testing.assert_frame_equal(ours.frame, theirs.frame)
    for outcome in OUTCOMES:
        for drug in ("naltrexone", "naloxone"):
            a, b = select_counts(ours, outcome, drug), select_counts(theirs, outcome, drug)
            assert a.report_ids == b.report_ids
            np.testing.assert_array_equal(a.n, b.n)
            np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize("export", EXPORTS, ids=list(EXPORTS))
def test_spreadsheet_export_of_the_real_file_loads_the_same(tmp_path, export):
    assert_same_evidence(write_frame(ORIGINAL, tmp_path / "export.csv", **EXPORTS[export]))


def test_rows_whose_trailing_blank_cells_were_dropped_load_the_same(tmp_path):
    """Some spreadsheet exports leave out a row's trailing separators when its last cells are blank."""
    reference = write_frame(ORIGINAL.assign(evidence=""), tmp_path / "reference.csv")
    header, *rows = reference.read_text().splitlines()
    assert all(row.endswith(",") for row in rows)
    short = tmp_path / "short.csv"
    short.write_text("\n".join([header] + [row.rstrip(",") for row in rows]) + "\n")
    assert_same_evidence(short, reference)


# --- property-based: malformed tables ----------------------------------------------------------------

HEADER = list(ORIGINAL.columns)
ROWS = ORIGINAL.to_numpy().tolist()
COUNT_LIKE = st.one_of(
    st.integers(-3, 20).map(str),
    st.integers(2**53, 10**25).map(str),  # beyond exact floats, and beyond 64-bit integers
    st.floats().map(str),
    st.sampled_from(["", " ", "NA", "n/a", "3.0", "3.", "+2", "-0", "1e3", "1,5", "½", "٣", "0x10", " 2 ", "2 of 3"]),
)
CELL = st.one_of(st.text(max_size=12), COUNT_LIKE)
SOMETIMES = st.integers(0, 4).map(lambda k: k == 0)  # one time in five
MUTATIONS = [
    "drop column", "rename column", "duplicate column", "extra column", "replace cell", "replace count",
    "blank cell", "duplicate id", "duplicate row", "drop rows", "truncate row", "extra cell",
]


@st.composite
def malformed_files(draw) -> bytes:
    """The shipped table, mutated a few times, written with a random dialect and encoding, maybe damaged."""
    header, rows = list(HEADER), [list(r) for r in ROWS]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(MUTATIONS))
        j = draw(st.integers(0, len(header) - 1)) if header else 0
        i = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if kind == "drop column" and len(header) > 1:
            del header[j]
            for r in rows:
                del r[j:j + 1]
        elif kind == "rename column" and header:
            header[j] = draw(st.one_of(st.text(max_size=12), st.sampled_from(HEADER).map(lambda c: f"{c} ")))
        elif kind == "duplicate column" and header:
            header.insert(j, header[j])
            for r in rows:
                r.insert(j, r[j] if j < len(r) else "")
        elif kind == "extra column":
            header.append(draw(st.text(max_size=8)))
            for r in rows:
                r.append(draw(CELL))
        elif kind == "replace cell" and rows and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(CELL)
        elif kind == "replace count" and rows:
            column = draw(st.sampled_from(COUNT_COLUMNS))
            if column in header and header.index(column) < len(rows[i]):
                rows[i][header.index(column)] = draw(COUNT_LIKE)
        elif kind == "blank cell" and rows and rows[i]:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = ""
        elif kind == "duplicate id" and rows and rows[i]:
            rows[i][0] = rows[draw(st.integers(0, len(rows) - 1))][0]
        elif kind == "duplicate row" and rows:
            rows.insert(i, list(rows[draw(st.integers(0, len(rows) - 1))]))
        elif kind == "drop rows":
            rows = rows[: draw(st.integers(0, len(rows)))]
        elif kind == "truncate row" and rows:
            rows[i] = rows[i][: draw(st.integers(0, len(rows[i])))]
        elif kind == "extra cell" and rows:
            rows[i].append(draw(CELL))

    sep = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    if not draw(SOMETIMES):
        buffer = io.StringIO()
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        csv.writer(buffer, delimiter=sep, lineterminator=newline, quoting=quoting).writerows([header, *rows])
        text = buffer.getvalue()
    else:  # a hand-made export: no quoting at all
        text = "".join(sep.join(r) + newline for r in [header, *rows])
    raw = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"])), errors="replace")
    if draw(SOMETIMES):  # stray bytes, e.g. another encoding pasted in
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    if draw(SOMETIMES):  # a truncated download or copy
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "Counts from Anna (v3).csv"


def load_or_refuse(path: Path):
    """The loader's contract: valid counts, or InputError with one line per problem naming the file."""
    try:
        table = load_evidence(path)
        data = select_counts(table, "any_response", "naltrexone")
    except InputError as err:
        assert_one_line_each(err.problems, path)
        return None
    assert table.frame["report_id"].is_unique and (table.frame["report_id"] != "").all()
    assert data.n.dtype == np.int64 and data.y.dtype == np.int64
    assert (data.n >= 1).all() and (data.y >= 0).all() and (data.y <= data.n).all()
    assert len(set(data.report_ids)) == len(data.report_ids)
    return data


@settings(max_examples=200, deadline=None)
@given(raw=malformed_files())
def test_malformed_tables_give_valid_counts_or_one_line_problems(scratch, raw):
    scratch.write_bytes(raw)
    load_or_refuse(scratch)


@settings(max_examples=40, deadline=None)
@given(
    sep=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    bom=st.booleans(),
    padding=st.sampled_from(["", " ", "  "]),
)
def test_any_spreadsheet_dialect_reads_the_same_counts(scratch, sep, newline, quoting, bom, padding):
    """Separator, line endings, quoting, byte-order mark and spaces around cells never change the counts."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator=newline, quoting=quoting)
    writer.writerows([HEADER] + [[padding + cell + padding for cell in row] for row in ROWS])
    scratch.write_bytes(buffer.getvalue().encode("utf-8-sig" if bom else "utf-8"))
    reference = select_counts(load_evidence(REPORTS), "any_response", "naltrexone")
    data = load_or_refuse(scratch)
    assert data is not None
    assert data.report_ids == reference.report_ids
    np.testing.assert_array_equal(data.n, reference.n)
    np.testing.assert_array_equal(data.y, reference.y)


WHOLE_NUMBER = re.compile(r"\+?\d+(\.0*)?")  # in any script's digits, as int() reads them


@settings(max_examples=60, deadline=None)
@given(
    row=st.integers(0, len(ROWS) - 1),
    column=st.sampled_from(COUNT_COLUMNS),
    cell=st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t and t.strip()
                                                 and not WHOLE_NUMBER.fullmatch(t.strip())),
)
def test_a_cell_that_is_not_a_count_is_never_accepted(scratch, row, column, cell):
    assume(column == "n_treated" or cell.strip().lower() not in MISSING_TOKENS)  # NA in an outcome: not graded
    rows = [list(r) for r in ROWS]
    rows[row][HEADER.index(column)] = cell
    with scratch.open("w", newline="") as file:  # the csv module quotes a lone "\r"; pandas' to_csv does not
        csv.writer(file).writerows([HEADER, *rows])
    problems = input_problems(scratch, outcomes=OUTCOMES)
    assert_one_line_each(problems, scratch)
    at = f"{scratch}: row {row + 1} (report_id {ROWS[row][0]}), column {column}: "
    assert any(p.startswith(at) for p in problems), problems


@settings(max_examples=40, deadline=None)
@given(
    row=st.integers(0, len(ROWS) - 1),
    extra=st.integers(0, MAX_COUNT - 100),
    form=st.sampled_from(["{}", "+{}", "{}.0", "{}.", " {} ", "00{}"]),
)
def test_whole_numbers_in_any_spreadsheet_form_are_read_exactly(scratch, row, extra, form):
    n = int(ROWS[row][HEADER.index("n_treated")]) + extra
    frame = ORIGINAL.copy()
    frame.iloc[row, HEADER.index("n_treated")] = form.format(n)
    write_frame(frame, scratch)
    assert load_evidence(scratch).frame["n_treated"].iloc[row] == n


# --- bad configs -------------------------------------------------------------------------------------

# tests/test_config.py covers unknown keys, an unknown family and outcome, a negative tau scale, a string
# for an integer, a missing parent, a two-file extends cycle and broken TOML; these are the rest.
BAD_CONFIGS = [
    ("[borrowing]\nrobust_weight = 1.5\n", "borrowing.robust_weight: Input should be less than or equal to 1"),
    ("[borrowing]\nrobust_weight = -0.1\n", "borrowing.robust_weight: Input should be greater than or equal to 0"),
    ("[borrowing]\nweight_sweep = [0.0, 2.0]\n", "borrowing.weight_sweep.1: Input should be less than or equal to 1"),
    ("[borrowing]\nrobust_weight = 'high'\n", "borrowing.robust_weight: Input should be a valid number"),
    ("[borrowing]\nvague = [1.0, -1.0]\n", "borrowing.vague.1: Input should be greater than 0"),
    ("[model.publication]\nmechanism = 'all_responders'\nweight = 0\n",
     "model.publication.weight: Input should be greater than 0"),
    ("[model.publication]\nmechanism = 'single_patient'\nweight = 1.5\n",
     "model.publication.weight: Input should be less than or equal to 1"),
    ("[model.publication]\nweight = 0.5\n", "model.publication: Value error, weight applies only with a mechanism"),
    ("[model.publication]\nmechanism = 'some'\n", "model.publication.mechanism: Input should be 'none'"),
    ("[model]\nselection_weight = 0.5\n", "model: Value error, selection_weight is replaced by [model.publication]"),
    ("[model]\ncovariates = ['size']\n", "model.covariates.0: Input should be 'log_n'"),
    ("[data]\nmax_dose_mg = 6.25\n", "data: Value error, max_dose_mg selected on the highest dose"),
    ("[model.beta_binomial]\nu_scale = -0.5\n", "model.beta_binomial.u_scale: Input should be greater than 0"),
    ("[model.logit_normal]\nmu_sd = 0\n", "model.logit_normal.mu_sd: Input should be greater than 0"),
    ("[data]\nknown_drugs = 'naltrexone'\n", "data.known_drugs: Input should be a valid tuple"),
    ("[sampling]\ndraws = 2.5\n", "sampling.draws: Input should be a valid integer"),
    ("data = 'mine.csv'\n", "data: Input should be a valid dictionary"),
    ("[model]\nfamily = '''beta\nbinomial'''\n", "model.family: Input should be 'beta_binomial' or 'logit_normal'"),
]


@pytest.mark.parametrize("text, expected", BAD_CONFIGS, ids=[expected.split(":")[0] for _, expected in BAD_CONFIGS])
def test_impossible_config_values_name_file_and_key(tmp_path, text, expected):
    path = tmp_path / "mine.toml"
    path.write_text(EXTENDS_DEFAULT + text)
    with pytest.raises(InputError) as err:
        load_config(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: {expected}") and "\n" not in line


def test_a_section_that_is_not_a_table_with_command_line_overrides(tmp_path):
    """`--data`/`--seed` merge into [data]/[sampling]: a config where those are not tables used to crash."""
    path = tmp_path / "mine.toml"
    path.write_text("data = 'mine.csv'\nsampling = 5\n")
    with pytest.raises(InputError) as err:
        load_config(path, data={"path": "x.csv"}, sampling={"seed": 1})
    assert err.value.problems == [
        f"{path}: data: Input should be a valid dictionary or instance of DataSettings (got 'mine.csv')",
        f"{path}: sampling: Input should be a valid dictionary or instance of SamplingSettings (got 5)",
    ]


def test_extends_chains_name_the_file_that_is_wrong(tmp_path):
    (tmp_path / "self.toml").write_text('extends = "self.toml"\n')
    (tmp_path / "child.toml").write_text('extends = "parent.toml"\n')
    (tmp_path / "parent.toml").write_text('extends = "gone/grandparent.toml"\n')
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "self.toml")
    assert err.value.problems == [f"{tmp_path / 'self.toml'}: circular 'extends' (self.toml -> self.toml)"]
    with pytest.raises(InputError) as err:
        load_config(tmp_path / "child.toml")
    assert err.value.problems == [
        f"{tmp_path / 'parent.toml'}: extends {tmp_path / 'gone' / 'grandparent.toml'}: config file not found"
    ]


def test_unreadable_config(tmp_path, monkeypatch):
    path = tmp_path / "locked.toml"
    path.write_text("[sampling]\nseed = 1\n")
    real = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: cannot read the file (Permission denied)"]


def test_command_refuses_a_bad_config_in_one_line_per_problem(process_runs):
    """A section that is not a table (`sampling = 'fast'`) with `--seed` used to end in a traceback."""
    config, run = process_runs["config file"], process_runs["config"]
    assert run.returncode == 2 and "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert sorted(line.split(": ")[2] for line in lines) == [
        "borrowing.robust_weight", "model.famly", "model.publication.weight", "sampling"
    ]
    assert all(line.startswith(f"error: {config}: ") for line in lines)
    assert not (config.parent / "out").exists()
