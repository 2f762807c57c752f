"""Mail in local files: a Maildir (``maildir``) or mbox files (``mbox``), for the demo and for
users without a server. The same parser and mapping as the ``imap`` connector.

    sources:
      support_archive:
        connector: mbox
        config:
          path: mail/support-*.mbox        # a file or glob, relative to crmhub.yml
          support: true                     # every message is support mail
          company_domains: [acme.example]
      rep_mail:
        connector: maildir
        config:
          path: mail/ann                    # a Maildir (cur/new/tmp); Maildir++ subfolders (.Sent) or Sent/ too
          folders: [INBOX, Sent]            # default: INBOX and every subfolder present
          company_domains: [acme.example]

Incremental: a Maildir folder is re-read from the newest file modification time already
read (files at that time again: they are upserted by Message-ID, harmless); an mbox file
from the byte offset after the last message read, or from the start when the file was
rewritten (smaller, or its first bytes changed). Each file read is bounded: headers up
to 256 KiB, bodies (support mail only) up to ``body_max_bytes``.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import Field, field_validator

from connectors.sdk import ConfigError, Connector, ConnectorConfig, Page, StreamState, stream
from connectors.sdk.mail import (
    MAIL_OPTIONS,
    MAX_HEADER_BYTES,
    SENT_NAMES,
    FolderConfig,
    MailOptions,
    folder_configs,
    message_record,
    split_raw,
)
from connectors.sdk.streams import Record

PAGE_MESSAGES = 200


class MailFilesConfig(MailOptions, ConnectorConfig):
    path: str = Field(description="Maildir directory, or mbox file/glob; relative to crmhub.yml's folder.")
    support: bool = Field(False, description="Every message is support mail.")
    page_messages: int = Field(PAGE_MESSAGES, ge=1, le=10_000)


class MaildirConfig(MailFilesConfig):
    folders: list[str | FolderConfig] | None = Field(
        None, description="INBOX and Maildir++ subfolder names; default: INBOX and every subfolder.")

    @field_validator("folders")
    @classmethod
    def _folders(cls, value):
        return folder_configs(value)


class _MailFiles(Connector):
    config: MailFilesConfig
    mapping_options = MAIL_OPTIONS

    def _path(self) -> Path:
        path = Path(os.path.expanduser(self.config.path))
        return path if path.is_absolute() else self.base_dir / path

    def _record(self, raw: bytes, folder: str, support: bool, size: int, **extra: Any) -> Record:
        header, body = split_raw_safe(raw)
        want_body = support
        return message_record(header, body if want_body else None, size=size, folder=folder, support=support,
                              sent_folder=folder.strip(".").lower() in SENT_NAMES, **extra)


def split_raw_safe(raw: bytes) -> tuple[bytes, bytes]:
    try:
        return split_raw(raw)
    except ValueError:
        return raw[: MAX_HEADER_BYTES + 1], b""  # message_record quarantines the oversized header


class MaildirConnector(_MailFiles):
    Config = MaildirConfig
    config: MaildirConfig

    def _folders(self) -> list[tuple[FolderConfig, Path]]:
        root = self._path()
        if not (root / "cur").is_dir() and not (root / "new").is_dir():
            raise ConfigError(f"maildir: {root} is not a Maildir (no cur/ or new/ inside)")
        wanted = self.config.folders
        if wanted is None:
            wanted = [FolderConfig(name="INBOX")] + [
                FolderConfig(name=p.name[1:]) for p in sorted(root.iterdir())
                if p.is_dir() and p.name.startswith(".") and (p / "cur").is_dir()]
        out = []
        for folder in wanted:
            path = root if folder.name.upper() == "INBOX" else root / f".{folder.name}"
            if not path.is_dir() and folder.name.upper() != "INBOX":
                path = root / folder.name  # a plain sub-Maildir (Sent/cur, Sent/new), as some tools keep them
            if not path.is_dir():
                raise ConfigError(f"maildir: folder {folder.name!r} not found ({path})")
            out.append((folder, path))
        return out

    @stream(primary_key="message_key")
    def messages(self, state: StreamState) -> Iterator[Page]:
        marks: dict[str, int] = dict(state.saved.get("folders", {}))
        limit = MAX_HEADER_BYTES + self.config.body_max_bytes
        for folder, path in self._folders():
            since = marks.get(folder.name, 0)
            files = []
            for sub in ("new", "cur"):
                d = path / sub
                if d.is_dir():
                    for entry in os.scandir(d):
                        if entry.is_file():
                            mtime = entry.stat().st_mtime_ns
                            if mtime >= since:
                                files.append((mtime, entry.name, Path(entry.path)))
            files.sort()
            support = self.config.support or folder.support
            page: list[Record] = []
            for mtime, name, file in files:
                with file.open("rb") as handle:
                    raw = handle.read(limit)
                size = file.stat().st_size
                page.append(self._record(raw, folder.name, support, size, file=name.split(":")[0][:200]))
                marks[folder.name] = mtime
                if len(page) >= self.config.page_messages:
                    yield Page(page, {"folders": dict(marks), "cursor": _cursor(marks)})
                    page = []
            yield Page(page, {"folders": dict(marks), "cursor": _cursor(marks)})


def _cursor(marks: dict[str, Any]) -> str:
    return ", ".join(f"{k}@{v}" for k, v in marks.items())[:255]


class MboxConnector(_MailFiles):
    Config = MailFilesConfig

    def files(self) -> list[Path]:
        pattern = str(self._path())
        found = sorted(Path(p) for p in glob.glob(pattern) if os.path.isfile(p))
        if not found and not glob.has_magic(pattern):
            raise ConfigError(f"mbox: file {pattern} not found")
        return found

    @stream(primary_key="message_key")
    def messages(self, state: StreamState) -> Iterator[Page]:
        marks: dict[str, dict] = dict(state.saved.get("files", {}))
        for path in self.files():
            mark = marks.get(str(path), {})
            size = path.stat().st_size
            with path.open("rb") as handle:
                start = mark.get("offset", 0)
                head_len = min(start, 4096)  # the bytes already read: they stay the same when mail is appended
                head = hashlib.sha256(handle.read(head_len)).hexdigest()
                if mark.get("head") != head or size < start:
                    start = 0  # rewritten: read it again (messages are upserted by key)
                if start >= size:
                    continue
                handle.seek(start)
                page: list[Record] = []
                folder = path.stem
                for raw, msg_size, offset, end in _mbox_messages(handle, start, MAX_HEADER_BYTES + self.config.body_max_bytes):
                    page.append(self._record(raw, folder, self.config.support, msg_size,
                                             file=f"{path.name}@{offset}"))
                    handle_pos = handle.tell()
                    handle.seek(0)
                    marks[str(path)] = {"offset": end, "head": hashlib.sha256(handle.read(min(end, 4096))).hexdigest()}
                    handle.seek(handle_pos)
                    if len(page) >= self.config.page_messages:
                        yield Page(page, {"files": dict(marks)})
                        page = []
                yield Page(page, {"files": dict(marks)})


def _mbox_messages(handle: BinaryIO, start: int, limit: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(first ``limit`` bytes, size, start offset, end offset) of each message, streaming.

    A message starts at a line beginning with ``From `` (mboxo/mboxrd); ``>From`` quoting
    in bodies is left as it is (it does not change headers or the text's meaning).
    """
    buf = bytearray()
    size = 0
    msg_start = None
    offset = start
    previous_blank = True
    for line in iter(lambda: handle.readline(64 * 1024), b""):
        if line.startswith(b"From ") and previous_blank:
            if msg_start is not None:
                yield bytes(buf), size, msg_start, offset
            buf, size, msg_start = bytearray(), 0, offset
        elif msg_start is not None:
            size += len(line)
            if len(buf) < limit:
                buf += line[: limit - len(buf)]
        previous_blank = line in (b"\n", b"\r\n")
        offset += len(line)
    if msg_start is not None:
        yield bytes(buf), size, msg_start, offset
