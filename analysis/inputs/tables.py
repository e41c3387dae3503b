"""One reader for every CSV the tool takes (evidence, patients, appraisal, exclusions), and one way to name
a bad cell.

Every problem becomes one line "FILE: row R (report_id X), column C: ...", collected into one
`InputError`. The csv module reads the cells, not pandas: pandas silently renames a repeated column
(`n_treated.1`) and, when the first row has one cell too many, makes the first column an index and shifts
every value. A table remembers its delimiter: in a semicolon-separated file (how spreadsheets in
decimal-comma locales export) "4,5" is the number 4.5; in a comma-separated file a number with a comma is
refused, never read as missing.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

from analysis.errors import InputError

MISSING_TOKENS = frozenset({"na", "nan", "n/a"})
"""How R (`write.csv`), pandas and spreadsheets write a missing value."""
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_COMMA_NUMBER = re.compile(r"^[+-]?\d+,\d+$")


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a CSV file")
    try:
        return path.read_bytes()
    except OSError as err:  # e.g. no permission, or the file is locked by the spreadsheet that has it open
        raise InputError(f"{path}: cannot read the file ({err.strerror or err})") from None


def parse_csv(path: Path, raw: bytes) -> pd.DataFrame:
    """Decode (UTF-8, with or without a byte-order mark; else Windows-1252) and parse comma-, semicolon- or
    tab-separated text into strings. Short rows are padded with blanks (spreadsheets drop trailing blank
    cells); long rows are refused. `frame.attrs["delimiter"]` keeps the delimiter."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file (cannot decode as UTF-8)") from None
    if "\x00" in text:
        raise InputError(f"{path}: not a text CSV file (contains binary data)")
    header = next(iter(text.lstrip().splitlines()), "")
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = [r for r in reader if len(r) > 1 or "".join(r).strip()]  # skip blank lines
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV file (line {reader.line_num}: {err})") from None
    if not records:
        raise InputError(f"{path}: the file is empty")
    columns = [c.strip() or f"Unnamed: {i}" for i, c in enumerate(records[0])]
    repeated = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
    if repeated:
        raise InputError([f"{path}: column '{one_line(c)}' appears more than once in the header" for c in repeated])
    rows = [[cell.strip() for cell in r] for r in records[1:]]
    if not rows:
        raise InputError(f"{path}: no data rows under the header")
    id_at = columns.index("report_id") if "report_id" in columns else None
    too_long = [
        f"{row_label(path, i, r[id_at] if id_at is not None else '')}: {len(r)} cells but the header has "
        f"{len(columns)} columns (a {delimiter!r} inside an unquoted cell?)"
        for i, r in enumerate(rows)
        if len(r) > len(columns)
    ]
    if too_long:
        raise InputError(too_long)
    frame = pd.DataFrame([r + [""] * (len(columns) - len(r)) for r in rows], columns=columns, dtype=str)
    frame.attrs["delimiter"] = delimiter
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV file as a frame of stripped strings (see `parse_csv`)."""
    path = Path(path)
    return parse_csv(path, read_bytes(path))


def require_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise InputError([f"{path}: missing required column '{c}'" for c in missing])


def id_problem(rid: str, i: int, first_seen: dict[str, int], column: str) -> str | None:
    """Why row `i`'s id cannot name it (blank, or the id of an earlier row), else None; records the id."""
    if not rid:
        return f"{column} is blank"
    if rid in first_seen:
        return f"duplicate of row {first_seen[rid] + 1}"
    first_seen[rid] = i
    return None


def row_label(path: Path, i: int, report_id: str) -> str:
    """How a message names data row `i` (0-based): its number and its report id."""
    return f"{path}: row {i + 1} (report_id {one_line(report_id) or '<blank>'})"


def one_line(cell: str) -> str:
    """A cell as quoted in a message, line breaks escaped: every problem must stay one line."""
    return cell.translate(_LINE_BREAKS)


def decimal_comma(frame: pd.DataFrame) -> bool:
    """Whether this table writes decimals with a comma: only a semicolon-separated file can."""
    return frame.attrs.get("delimiter") == ";"


def number(cell: str, comma: bool) -> float | None | str:
    """A cell as a number: None when blank or NA, the float, or "invalid". With `comma` (a semicolon-
    separated file) "4,5" is 4.5."""
    text = cell.strip()
    if text == "" or text.lower() in MISSING_TOKENS:
        return None
    if comma and _COMMA_NUMBER.match(text):
        text = text.replace(",", ".")
    return float(text) if _NUMBER.match(text) else "invalid"


def numbers(path: Path, frame: pd.DataFrame, column: str, problems: list[str], rows=None) -> pd.Series:
    """A numeric column (blank or NA → NaN); every cell that is not a number adds one line to `problems`
    (a decimal comma outside a semicolon-separated file is named as such)."""
    comma = decimal_comma(frame)
    labels = frame["report_id"] if "report_id" in frame else pd.Series("", index=frame.index)
    values = []
    for i, cell in enumerate(frame[column]):
        value = number(cell, comma)
        if value == "invalid":
            hint = (" (a decimal comma is read only in a semicolon-separated file; write 4.5 here)"
                    if _COMMA_NUMBER.match(cell.strip()) else "")
            problems.append(f"{row_label(path, i if rows is None else rows[i], labels.iloc[i])}, column {column}: "
                            f"'{one_line(cell)}' is not a number{hint}")
            value = None
        values.append(float("nan") if value is None else value)
    return pd.Series(values, index=frame.index, dtype=float)
