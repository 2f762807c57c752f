"""CSV files: sales reps' manual entries and exports from any system.

    sources:
      rep_leads:
        connector: csv
        config:
          path: imports/leads-*.csv     # a file or a glob, relative to crmhub.yml
          entity: lead                  # which warehouse table the rows are
          key: lead_id                  # the column that identifies a row
          columns: {E-Mail: email, Firma: company}   # optional renames
          delimiter: ";"                # default ","
          encoding: utf-8-sig           # default; handles Excel's BOM
          defaults: {channel: affiliate_click}   # a field's value where the file has none

``defaults`` give warehouse fields a value where the file has no column for them or a row
leaves the cell empty; a row's own value wins. An affiliate network's click or transaction
export (Awin, CJ, Impact: no ``channel`` column) loads as touchpoints with
``entity: touchpoint`` and ``defaults: {channel: affiliate_click, affiliate_site: <site>}``.

Files are read in name order, `page_rows` (10,000) rows a page at most, each page
committed with the file marks that cover it. A page also ends once its cells hold
about 3 MiB (their characters plus 64 per cell, a string's own overhead): a page is
mapped while the previous one is written, so this keeps memory flat whatever the
width of the rows (about 3,900 rows a page for a lead export of 11 short columns). A
file is read again only when its size or modification time changed; a run killed
half-way through a file resumes at the first row not yet committed.

A bad row is quarantined with its file, line and reason and the file goes on: an
unclosed quote (the row where the quote opened; the rows after it are read as rows),
bytes that are not text in the configured encoding, a field over csv's field limit,
a row longer than `max_row_chars` or wider than `max_columns`, an empty or repeated
key. A file that cannot be read as a table at all (a repeated column name, a header
that is not text, a link out of the configured folder) is quarantined as one record
and the other files are read. Memory stays flat whatever the width or length of a
line: nothing longer than `max_row_chars` is held, and errors quote no file content.
"""

from __future__ import annotations

import csv
import glob
import os
import re
from array import array
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorConfig,
    Page,
    StreamSpec,
    StreamState,
    stream,
)
from connectors.sdk.streams import UNREADABLE, Record

Entity = Literal[
    "lead", "person", "customer_order", "order_line", "product", "touchpoint",
    "service_case", "service_contract", "feedback",
]
PAGE_ROWS = 10_000
PAGE_TEXT = 3 * 2**20  # a page also ends after this much text (see above), however few rows
CELL_COST = 64  # what a cell costs beyond its characters, counted towards PAGE_TEXT
MAX_ROW_CHARS = 2**20
MAX_COLUMNS = 2_000


class CsvConfig(ConnectorConfig):
    path: str = Field(description="File or glob pattern; relative paths start at crmhub.yml's folder.")
    entity: Entity
    key: str = Field(description="Column holding each row's id.")
    columns: dict[str, str] = Field(default_factory=dict, description="Source column -> warehouse field.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. DE.")
    page_rows: int = Field(PAGE_ROWS, ge=1, le=1_000_000, description="Rows per committed page.")
    max_row_chars: int = Field(MAX_ROW_CHARS, ge=1024, le=2**28,
                               description="A longer row (or header) is quarantined unread.")
    max_columns: int = Field(MAX_COLUMNS, ge=1, le=1_000_000,
                             description="A row or header with more fields is quarantined.")
    allow_no_files: bool = Field(False, description="A pattern matching no file is not an error.")
    defaults: dict[str, str] = Field(
        default_factory=dict,
        description="Warehouse field -> value where the file has no such column or a row leaves it empty "
                    "(e.g. channel: affiliate_click); a row's own value wins.")

    @field_validator("defaults", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: object) -> object:
        """YAML reads `rating: 5` or a date as numbers and dates: they are cells' text here."""
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v))
                    if v is not None and not isinstance(v, (dict, list)) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _defaults_fit_the_entity(self) -> CsvConfig:
        if self.defaults:
            from crm_model.mapping.csv import check_defaults  # the mapping knows the entity's fields

            check_defaults(self.entity, self.defaults, self.default_region)
        return self

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class CsvConnector(Connector):
    Config = CsvConfig
    config: CsvConfig
    mapping_options = ("entity", "key", "columns", "default_region", "defaults")

    def stream_specs(self) -> dict[str, StreamSpec]:  # the key column comes from the config
        spec = self.declared_streams()["rows"]
        return {"rows": StreamSpec(spec.name, (self.config.key,), None, False, spec.method)}

    def _pattern(self) -> str:
        pattern = os.path.expanduser(self.config.path)
        if not os.path.isabs(pattern):
            pattern = str(self.base_dir / pattern)
        return pattern

    def files(self) -> list[Path]:
        pattern = self._pattern()
        found = sorted(Path(p) for p in glob.glob(pattern) if os.path.isfile(p))
        if not found and not self.config.allow_no_files:
            if glob.has_magic(pattern):
                raise ConfigError(f"csv: no file matches {self.config.path} (looked in {_folder(pattern)}; "
                                  f"set allow_no_files: true if an empty folder is normal)")
            raise ConfigError(f"csv: file {pattern} not found")
        return found

    @stream(primary_key="key")  # replaced by the configured key column
    def rows(self, state: StreamState) -> Iterator[Page]:
        marks: dict[str, dict] = dict(state.saved.get("files", {}))
        folder = _folder(self._pattern()).resolve()
        config_problems = []
        for path in self.files():
            st = path.stat()
            fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            mark = marks.get(str(path), {})
            same_file = {k: mark.get(k) for k in fingerprint} == fingerprint
            if same_file and mark.get("done"):
                continue
            skip = mark.get("rows", 0) if same_file else 0
            if not path.resolve().is_relative_to(folder):
                # never opened: a link out of the folder may point at secrets (/proc/self/environ)
                marks[str(path)] = {**fingerprint, "rows": 0, "done": True}
                yield Page([_unreadable(path, 0, f"is a link to a file outside {folder}; refused")],
                           {"files": dict(marks)})
                continue
            reader = CsvFile(path, self.config)
            try:
                for records, rows_done, done in reader.pages(skip):
                    marks[str(path)] = {**fingerprint, "rows": rows_done, "done": done}
                    yield Page(records, {"files": dict(marks)})
            except CsvConfigProblem as exc:  # the config does not fit this file: say so, read the others
                config_problems.append(str(exc))
        if config_problems:
            raise ConfigError("; ".join(config_problems))


class CsvConfigProblem(Exception):
    """The source's config does not fit a file (its key column is missing)."""


def _folder(pattern: str) -> Path:
    """The folder a pattern reads from: its path up to the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _unreadable(path: Path, line: int, reason: str) -> Record:
    return {"_file": path.name, "_line": line, UNREADABLE: reason}


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # surrogateescape's stand-ins for bytes


class _Feed:
    """One CSV record at a time for a single csv.reader (which keeps no state between records);
    given a text, an iterator over that one string (a strict reader's input)."""

    def __init__(self, text: str | None = None) -> None:
        self.text = text

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        text, self.text = self.text, None
        if text is None:
            raise StopIteration
        return text


class _KeyHashes:
    """A set of keys held as their 64-bit hashes in one flat array (open addressing).

    A Python set of the same hashes costs about 70 bytes a key (an int object and
    its slots), 70 MB for a file of a million rows; this costs 16-32. Two different
    keys with the same 64-bit hash would read as a repeat (odds about 1 in 10^7 for
    a file of a million rows), as with the set it replaces.
    """

    def __init__(self) -> None:
        self.slots = array("q", bytes(8 * 1024))  # 0: empty
        self.mask = 1023
        self.count = 0

    def add(self, key: str) -> bool:
        """Add ``key``; False if it was there already."""
        h = hash(key) or 1
        slots, mask = self.slots, self.mask
        i = h & mask
        while (found := slots[i]) != 0:
            if found == h:
                return False
            i = (i + 1) & mask
        slots[i] = h
        self.count += 1
        if self.count * 2 > mask:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self.slots
        self.mask = mask = len(old) * 2 - 1
        self.slots = slots = array("q", bytes(8 * (mask + 1)))
        for h in old:
            if h:
                i = h & mask
                while slots[i] != 0:
                    i = (i + 1) & mask
                slots[i] = h


class CsvFile:
    """One CSV file as records: each a row's cells, or the reason it cannot be read.

    Records are found before they are parsed: a record is the physical lines up to the
    one where its quotes balance. A quote that never balances, or balances into
    something that is not a row, was an unclosed quote: the line it opened on is
    quarantined and the lines after it are read again as rows. Lines are read with
    a length limit, so an endless line costs no memory; undecodable bytes are kept
    as stand-ins (surrogateescape) and reject just their row.
    """

    def __init__(self, path: Path, config: CsvConfig):
        self.path, self.config = path, config
        self.limit = config.max_row_chars
        self.feed = _Feed()
        self.parser = csv.reader(self.feed, delimiter=config.delimiter)
        self.pushed: deque[tuple[int, str | None]] = deque()
        self.width: int | None = None  # fields in the header

    # -------------------------------------------------------------- records

    def pages(self, skip: int) -> Iterator[tuple[list[Record], int, bool]]:
        cfg = self.config
        try:
            handle = self.path.open(newline="", encoding=cfg.encoding, errors="surrogateescape")
        except OSError as exc:
            raise ConfigError(f"csv: cannot open {self.path}: {exc.strerror}") from None
        with handle:
            self.lines = self._physical_lines(handle)
            try:
                yield from self._pages(skip)
            except UnicodeDecodeError as exc:  # codecs that cannot stand in for a byte (utf-16)
                yield [_unreadable(self.path, 0, f"is not {cfg.encoding} text ({exc.reason}); "
                                   f"set `encoding:` in the source's config")], 0, True

    def _pages(self, skip: int) -> Iterator[tuple[list[Record], int, bool]]:
        cfg = self.config
        first = next(self._records(), None)
        if first is None:
            yield [], 0, True
            return
        line, cells, problem = first
        header, problem = self._header(cells, problem)
        if problem is not None:
            yield [_unreadable(self.path, line, f"cannot be read as a table: {problem}")], 0, True
            return
        if cfg.key not in header:
            raise CsvConfigProblem(f"csv: {self.path.name} has no key column {cfg.key!r} "
                                   f"(its {len(header)} columns: {_names(header)})")
        key_at = header.index(cfg.key)
        self.width = len(header)
        seen = _KeyHashes()  # the keys of this file so far, as 64-bit hashes
        page: list[Record] = []
        chars = n = 0
        for line, cells, problem in self._records():
            n += 1
            if cells is not None and problem is None:
                if not any(map(str.strip, cells)):
                    continue  # a blank line is not a record
                key = cells[key_at].strip() if key_at < len(cells) else ""
                if not key:
                    problem = f"the key column {cfg.key!r} is empty"
                elif not seen.add(key):
                    problem = f"key {key[:64]!r} is repeated: an earlier row of this file has it (keys must be unique)"
            if n <= skip:
                continue
            if problem is not None:
                page.append(_unreadable(self.path, line, problem))
            else:
                page.append(self._record(line, header, cells))
                chars += sum(map(len, cells)) + CELL_COST * len(cells)
            if len(page) >= cfg.page_rows or chars >= PAGE_TEXT:
                yield page, n, False
                page, chars = [], 0
        yield page, n, True

    def _header(self, cells: list[str] | None, problem: str | None) -> tuple[list[str], str | None]:
        if problem is not None:
            return [], problem
        assert cells is not None
        if any("\x00" in c for c in cells):
            return [], "its first line holds NUL characters (not a text file?)"
        header = [c.strip() or f"column_{i}" for i, c in enumerate(cells, 1)]
        first_at: dict[str, int] = {}
        for i, name in enumerate(header, 1):
            if name in first_at:
                return [], (f"column name {name[:40]!r} appears twice (columns {first_at[name]} and {i}); "
                            f"rename one in the file")
            first_at[name] = i
        return header, None

    def _record(self, line: int, header: list[str], cells: list[str]) -> Record:
        record: Record = dict(zip(header, cells, strict=False))  # uneven rows are flagged below
        if len(cells) != len(header):
            # kept whole (nothing dropped); the mapping rejects it with this reason
            record["_error"] = f"has {len(cells)} fields, the header has {len(header)}"
            record["_cells"] = cells
        record["_file"] = self.path.name
        record["_line"] = line
        return record

    def _records(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        """(first line, cells, None) per record, or (first line, None, why it is unreadable)."""
        while (item := self._next_line()) is not None:
            line, text = item
            if text is None:
                yield line, None, f"row is longer than {self.limit:,} characters (max_row_chars)"
                continue
            if text.count('"') % 2 == 0:
                yield line, *self._parse(text, strict=False)
                continue
            # a quoted field goes on past this line: gather lines until its quote closes
            lines = [item]
            size, closed = len(text), False
            while (more := self._next_line()) is not None:
                lines.append(more)
                if more[1] is None:
                    break
                size += len(more[1])
                if size > self.limit:
                    break
                if more[1].count('"') % 2:
                    closed = True
                    break
            if closed:
                cells, problem = self._parse("".join(t for _, t in lines), strict=True)
                if problem is None and (self.width is None or len(cells) == self.width):
                    yield line, cells, None
                    continue
            # It never closed cleanly: the quote on this line was not meant to open a field.
            self.pushed.extendleft(reversed(lines[1:]))
            yield line, None, "unclosed quote: a quoted field opens on this line and does not end"

    def _parse(self, text: str, strict: bool) -> tuple[list[str] | None, str | None]:
        if (bad := _UNDECODABLE.search(text)) is not None:
            byte = ord(bad.group()) - 0xDC00
            column = text.count(self.config.delimiter, 0, bad.start()) + 1
            return None, (f"byte 0x{byte:02x} in field {column} is not {self.config.encoding} text "
                          f"(set `encoding:` in the source's config, e.g. cp1252 or latin-1)")
        parser = self.parser if not strict else csv.reader(_Feed(text), delimiter=self.config.delimiter,
                                                            strict=True)
        self.feed.text = text
        try:
            cells = next(parser, [])
        except csv.Error as exc:
            message = str(exc)
            if "field limit" in message:
                return None, f"a field is longer than {csv.field_size_limit():,} characters (csv's field limit)"
            return None, f"not a CSV row ({message})"
        finally:
            self.feed.text = None
        if len(cells) > self.config.max_columns:
            return None, f"has {len(cells):,} fields; at most {self.config.max_columns:,} are read (max_columns)"
        return cells, None

    # ---------------------------------------------------------------- lines

    def _next_line(self) -> tuple[int, str | None] | None:
        if self.pushed:
            return self.pushed.popleft()
        return next(self.lines, None)

    def _physical_lines(self, handle) -> Iterator[tuple[int, str | None]]:
        """(line number, text) per physical line; text None for a line over the limit (skipped)."""
        n = 0
        limit = self.limit
        while line := handle.readline(limit + 1):
            n += 1
            if len(line) <= limit or line.endswith(("\n", "\r")):
                yield n, line
                continue
            while (rest := handle.readline(65536)) and not rest.endswith(("\n", "\r")):
                pass  # read past the end of the line, keeping none of it
            yield n, None


def _names(header: list[str], shown: int = 8) -> str:
    """A few column names, cut short: enough to spot a wrong delimiter, never a whole line."""
    names = [(n[:24] + "...") if len(n) > 24 else n for n in header[:shown]]
    more = f", ... ({len(header) - shown} more)" if len(header) > shown else ""
    return ", ".join(repr(n) for n in names) + more


__all__ = ["CsvConfig", "CsvConnector"]
