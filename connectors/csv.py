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

Files are read in name order, `page_rows` (10,000) rows a page, each page committed
with the file marks that cover it. A file is read again only when
its size or modification time changed; a run killed half-way through a file resumes
at the first row not yet committed.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorConfig,
    Page,
    StreamSpec,
    StreamState,
    stream,
)
from connectors.sdk.streams import Record

Entity = Literal[
    "lead", "person", "customer_order", "order_line", "product", "touchpoint",
    "service_case", "service_contract", "feedback",
]
PAGE_ROWS = 10_000


class CsvConfig(ConnectorConfig):
    path: str = Field(description="File or glob pattern; relative paths start at crmhub.yml's folder.")
    entity: Entity
    key: str = Field(description="Column holding each row's id.")
    columns: dict[str, str] = Field(default_factory=dict, description="Source column -> warehouse field.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8-sig"
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. DE.")
    page_rows: int = Field(PAGE_ROWS, ge=1, le=1_000_000, description="Rows per committed page.")

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
    mapping_options = ("entity", "key", "columns", "default_region")

    def stream_specs(self) -> dict[str, StreamSpec]:  # the key column comes from the config
        spec = self.declared_streams()["rows"]
        return {"rows": StreamSpec(spec.name, (self.config.key,), None, False, spec.method)}

    def files(self) -> list[Path]:
        pattern = os.path.expanduser(self.config.path)
        if not os.path.isabs(pattern):
            pattern = str(self.base_dir / pattern)
        found = sorted(Path(p) for p in glob.glob(pattern) if os.path.isfile(p))
        if not found and not glob.has_magic(pattern):
            raise ConfigError(f"csv: file {pattern} not found")
        return found

    @stream(primary_key="key")  # replaced by the configured key column
    def rows(self, state: StreamState) -> Iterator[Page]:
        marks: dict[str, dict] = dict(state.saved.get("files", {}))
        for path in self.files():
            st = path.stat()
            fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            mark = marks.get(str(path), {})
            same_file = {k: mark.get(k) for k in fingerprint} == fingerprint
            if same_file and mark.get("done"):
                continue
            skip = mark.get("rows", 0) if same_file else 0
            for records, rows_done, done in self._read(path, skip):
                marks[str(path)] = {**fingerprint, "rows": rows_done, "done": done}
                yield Page(records, {"files": dict(marks)})

    def _read(self, path: Path, skip: int) -> Iterator[tuple[list[Record], int, bool]]:
        cfg = self.config
        try:
            handle = path.open(newline="", encoding=cfg.encoding)
        except OSError as exc:
            raise ConfigError(f"csv: cannot open {path}: {exc.strerror}") from None
        with handle:
            reader = csv.reader(handle, delimiter=cfg.delimiter)
            try:
                header = next(reader)
            except StopIteration:
                yield [], 0, True
                return
            except UnicodeDecodeError as exc:
                raise ConfigError(f"csv: {path.name} is not {cfg.encoding} text ({exc.reason})") from None
            header = [h.strip() for h in header]
            if cfg.key not in header:
                raise ConfigError(f"csv: {path.name} has no key column {cfg.key!r} (columns: {', '.join(header)})")
            page: list[Record] = []
            n = 0
            try:
                for cells in reader:
                    n += 1
                    if n <= skip:
                        continue
                    if not any(c.strip() for c in cells):
                        continue  # a blank line is not a record
                    page.append(self._record(path, reader.line_num, header, cells))
                    if len(page) >= cfg.page_rows:
                        yield page, n, False
                        page = []
            except UnicodeDecodeError as exc:
                raise ConfigError(f"csv: {path.name} near row {n + 1} is not {cfg.encoding} text ({exc.reason})") from None
            except csv.Error as exc:
                raise ConfigError(f"csv: {path.name} line {reader.line_num}: {exc}") from None
            yield page, n, True

    @staticmethod
    def _record(path: Path, line: int, header: list[str], cells: list[str]) -> Record:
        record: Record = dict(zip(header, cells, strict=False))  # uneven rows are flagged below
        if len(cells) != len(header):
            # kept whole (nothing dropped); the key check or mapping rejects it with this reason
            record["_error"] = f"has {len(cells)} fields, the header has {len(header)}"
            record["_cells"] = cells
        record["_file"] = path.name
        record["_line"] = line
        return record
