"""How the reports were found: the search log (`data/search.md`) and the records read and excluded
(`data/excluded_on_reading.csv`), read and validated for the report's methods and PRISMA flow."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from analysis.errors import InputError
from analysis.inputs.tables import id_problem, one_line, parse_csv, read_bytes, require_columns

EXCLUDED_REQUIRED_COLUMNS = ("record_id", "reason")


def load_excluded(path: str | Path) -> pd.DataFrame:
    """Read and validate the records read and excluded (`excluded_on_reading.csv`): columns `record_id`
    and `reason` required (others kept as read), record ids unique and not blank, a reason on every row."""
    path = Path(path)
    frame = parse_csv(path, read_bytes(path))
    require_columns(path, frame, EXCLUDED_REQUIRED_COLUMNS)
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    for i, (rid, reason) in enumerate(zip(frame["record_id"], frame["reason"])):
        where = f"{path}: row {i + 1} (record_id {one_line(rid) or '<blank>'}), column"
        if problem := id_problem(rid, i, first_seen, "record_id"):
            problems.append(f"{where} record_id: {problem}")
        if not reason:
            problems.append(f"{where} reason: the reason for exclusion is blank")
    if problems:
        raise InputError(problems)
    return frame


_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def search_methods(search_md_text: str) -> dict:
    """The sections of a search description in markdown, split into blocks a template can render.

    Returns {"title": the `#` heading (or ""), "sections": {`##` heading: [block, ...]}} in file order;
    a block is {"type": "paragraph", "text": str}, {"type": "bullets", "items": [str, ...]} or
    {"type": "table", "header": [str, ...], "rows": [[str, ...], ...]}. Lines wrapped inside a paragraph
    or a bullet are joined with one space; inline markup (`**bold**`, `code`) is left as written. Text
    before the first `##` heading goes under the key "".
    """
    title = ""
    sections: dict[str, list[dict]] = {}
    current: list[dict] = sections.setdefault("", [])
    block: dict | None = None
    for line in search_md_text.splitlines():
        heading = _HEADING.match(line)
        stripped = line.strip()
        if heading:
            block = None
            if len(heading.group(1)) == 1 and not title:
                title = heading.group(2)
            else:
                current = sections.setdefault(heading.group(2), [])
        elif not stripped:
            block = None
        elif stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if block is None or block["type"] != "table":
                block = {"type": "table", "header": cells, "rows": []}
                current.append(block)
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                block["rows"].append(cells)
        elif bullet := _BULLET.match(line):
            if block is None or block["type"] != "bullets":
                block = {"type": "bullets", "items": []}
                current.append(block)
            block["items"].append(bullet.group(1).strip())
        elif block is not None and block["type"] == "bullets" and line[:1].isspace():
            block["items"][-1] += " " + stripped
        elif block is not None and block["type"] == "paragraph":
            block["text"] += " " + stripped
        else:
            block = {"type": "paragraph", "text": stripped}
            current.append(block)
    if not sections[""]:
        del sections[""]
    return {"title": title, "sections": sections}
