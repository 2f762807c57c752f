"""IMAP mailboxes (imaplib2): reps' conversations and support queues.

    sources:
      ann_mail:
        connector: imap
        config:
          host: imap.example.com
          username: ann@acme.example
          password: ${ANN_IMAP_PASSWORD}       # or access_token: ${ANN_OAUTH_TOKEN} (XOAUTH2)
          folders: [INBOX, Sent, {name: Support, support: true}]   # default: INBOX + the \\Sent folder
          company_domains: [acme.example]

One stream per folder (named like the folder), so progress, cursors and `crmhub status`
are per folder. A folder's state is its UIDVALIDITY and the highest UID committed; the
next sync fetches UIDs above it. When UIDVALIDITY changes (the server rebuilt the folder)
the folder is read again from the start; messages are keyed by Message-ID (or a digest
of their headers), so nothing is duplicated.

Only ``BODY.PEEK`` is used (nothing is marked as read) and the folder is opened with
EXAMINE (read-only). Headers are fetched always, at most 256 KiB of them; bodies only in
support folders, at most ``body_max_bytes`` (a partial fetch: a huge message is never
downloaded whole).

Security: ``ssl`` (implicit TLS, port 993, the default), ``starttls`` (port 143, the
login waits until TLS is up), or ``none`` (only to a loopback address). Certificates and
host names are verified against the system's CAs, or ``ca_file``; imaplib2 itself would
accept any certificate, so the connection's TLS context is crmhub's own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import imaplib2
from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorConfig,
    Page,
    SourceError,
    StreamSpec,
    StreamState,
    stream,
)
from connectors.sdk.mail import (
    MAIL_OPTIONS,
    MAX_HEADER_BYTES,
    FolderConfig,
    MailOptions,
    folder_configs,
    message_record,
)
from connectors.sdk.streams import Record

log = logging.getLogger("crmhub.imap")
PAGE_MESSAGES = 100
MAX_STREAM_NAME = 64


class ImapConfig(MailOptions, ConnectorConfig):
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="Default: 993 for ssl, 143 otherwise.")
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    access_token: SecretStr | None = Field(None, description="OAuth2 access token (XOAUTH2).")
    security: Literal["ssl", "starttls", "none"] = "ssl"
    ca_file: str | None = Field(None, description="PEM file of CAs to trust instead of the system's.")
    folders: list[str | FolderConfig] | None = Field(None, description="Default: INBOX and the \\Sent folder.")
    support: bool = Field(False, description="Every folder is a support queue.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for a server response.")
    page_messages: int = Field(PAGE_MESSAGES, ge=1, le=5000, description="Messages per committed page.")

    @field_validator("folders")
    @classmethod
    def _folders(cls, value):
        return folder_configs(value)

    @model_validator(mode="after")
    def _checks(self) -> ImapConfig:
        if (self.password is None) == (self.access_token is None):
            raise ValueError("set exactly one of password and access_token")
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"security: none sends the credentials in clear text; it is allowed only to a "
                             f"loopback address, not to {self.host!r} (use ssl or starttls)")
        return self


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _VerifiedTls:
    """imaplib2's TLS wrapping replaced by a verifying context (CA and host name)."""

    tls_context: ssl.SSLContext

    def ssl_wrap_socket(self) -> None:
        self.sock = self.tls_context.wrap_socket(self.sock, server_hostname=self.host)
        self.read_fd = self.sock.fileno()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def read(self, size: int) -> bytes:
        # imaplib2's reader thread polls the socket's fd; bytes TLS already decrypted and
        # holds in its buffer never wake that poll, so a response that arrived together
        # with the previous one would wait forever. Hand over everything decrypted.
        data = super().read(size)
        pending = getattr(self.sock, "pending", None)
        while data and pending is not None and getattr(self, "decompressor", None) is None:
            waiting = pending()
            if waiting <= 0:
                break
            more = self.sock.recv(waiting)
            if not more:
                break
            data += more
        return data


class _Imap(_VerifiedTls, imaplib2.IMAP4):
    def __init__(self, context: ssl.SSLContext, **kw: Any):
        self.tls_context = context
        super().__init__(**kw)


class _ImapSsl(_VerifiedTls, imaplib2.IMAP4_SSL):
    def __init__(self, context: ssl.SSLContext, **kw: Any):
        self.tls_context = context
        super().__init__(**kw)


_FETCH_HEAD = re.compile(rb"^\d+ \((.*)$", re.S)
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.+)$')


def quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stream_name(folder: str) -> str:
    if len(folder) <= MAX_STREAM_NAME:
        return folder
    return folder[: MAX_STREAM_NAME - 9] + "~" + hashlib.sha1(folder.encode()).hexdigest()[:8]


class ImapConnector(Connector):
    Config = ImapConfig
    config: ImapConfig
    mapping_options = MAIL_OPTIONS

    def __init__(self, config: ImapConfig, **kw: Any):
        super().__init__(config, **kw)
        self._conn: Any = None
        self._folders: list[FolderConfig] | None = None
        self._sent: set[str] = set()

    # ------------------------------------------------------------------ connection

    @property
    def where(self) -> str:
        cfg = self.config
        return f"imap {cfg.username}@{cfg.host}:{self.port}"

    @property
    def port(self) -> int:
        return self.config.port or (993 if self.config.security == "ssl" else 143)

    def tls_context(self) -> ssl.SSLContext:
        context = self._tls_context()
        # imaplib2 reads through a poll() on the socket: TLS 1.3's post-handshake records
        # (session tickets) wake that poll with nothing for the reader, which then blocks
        # while the server's answer waits (a hang seen against Dovecot). TLS 1.2 has none.
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _tls_context(self) -> ssl.SSLContext:
        ca = self.config.ca_file
        if ca:
            path = Path(ca).expanduser()
            if not path.is_absolute():
                path = self.base_dir / path
            if not path.is_file():
                raise ConfigError(f"imap: ca_file {path} not found")
            try:
                return ssl.create_default_context(cafile=str(path))
            except ssl.SSLError as exc:
                raise ConfigError(f"imap: ca_file {path} holds no usable certificate ({exc.reason})") from None
        return ssl.create_default_context()

    def connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        cfg = self.config
        context = self.tls_context()
        args = {"host": cfg.host, "port": self.port, "timeout": cfg.timeout}
        try:
            if cfg.security == "ssl":
                conn = _ImapSsl(context, **args)
            else:
                conn = _Imap(context, **args)
                if cfg.security == "starttls":
                    if "STARTTLS" not in conn.capabilities:
                        _quiet_logout(conn)
                        raise SourceError(f"{self.where}: the server offers no STARTTLS; "
                                          "refusing to send credentials in clear text")
                    conn.starttls()
        except ssl.SSLCertVerificationError as exc:
            raise SourceError(f"{self.where}: the server's certificate is not trusted "
                              f"({exc.verify_message}); set ca_file to the CA that signed it") from None
        except ssl.SSLError as exc:
            raise SourceError(f"{self.where}: TLS failed ({exc.reason or exc})") from None
        except (OSError, imaplib2.IMAP4.error) as exc:
            raise SourceError(f"{self.where}: cannot connect: {_first_line(exc)}") from None
        try:
            if cfg.access_token is not None:
                token = cfg.access_token.get_secret_value()
                conn.authenticate("XOAUTH2", _xoauth2(cfg.username, token))
            else:
                conn.login(cfg.username, cfg.password.get_secret_value())
        except imaplib2.IMAP4.error as exc:
            _quiet_logout(conn)
            how = "XOAUTH2 token" if cfg.access_token is not None else "password"
            raise SourceError(f"{self.where}: login refused ({_server_text(exc)}); check the username and "
                              f"{how}") from None
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            _quiet_logout(self._conn)
            self._conn = None

    # ------------------------------------------------------------------ folders = streams

    def folders(self) -> list[FolderConfig]:
        if self._folders is None and self.config.folders is not None and not self._conn:
            return list(self.config.folders)  # stream names without a connection; LIST runs on the first read
        if self._folders is None:
            listed = self._list()
            self._sent = {name for name, flags in listed if "\\sent" in flags}
            if self.config.folders is not None:
                self._folders = list(self.config.folders)
                known = {name for name, _ in listed}
                missing = [f.name for f in self._folders if f.name not in known and f.name.upper() != "INBOX"]
                if missing:
                    raise SourceError(f"{self.where}: no folder {', '.join(map(repr, missing))} "
                                      f"(folders: {', '.join(sorted(known))})")
            else:  # RFC 6154: the Sent folder is the one flagged \Sent, whatever its name
                self._folders = [FolderConfig(name="INBOX")] + [FolderConfig(name=n) for n in sorted(self._sent)]
        return self._folders

    def _list(self) -> list[tuple[str, set[str]]]:
        conn = self.connect()
        try:
            typ, data = conn.list('""', "*")
        except imaplib2.IMAP4.error as exc:
            raise SourceError(f"{self.where}: LIST failed: {_server_text(exc)}") from None
        out = []
        for line in data or []:
            if isinstance(line, tuple):  # a name sent as a literal
                head, name = line[0], line[1]
                m = _LIST.match(head.rstrip() + b" x")
                flags = m.group("flags") if m else b""
                out.append((name.decode("utf-8", "replace"), _flag_set(flags)))
                continue
            if not isinstance(line, bytes):
                continue
            m = _LIST.match(line)
            if m:
                name = m.group("name").strip()
                if name.startswith(b'"') and name.endswith(b'"'):
                    name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
                out.append((name.decode("utf-8", "replace"), _flag_set(m.group("flags"))))
        return out

    @stream(primary_key="message_key", name="INBOX")
    def inbox(self, state: StreamState) -> Iterator[Page]:
        """INBOX, which every IMAP server has (RFC 3501); other folders get a stream each below."""
        return self.read_folder(FolderConfig(name="INBOX"), state)

    def stream_specs(self) -> dict[str, StreamSpec]:
        specs = {}
        for folder in self.folders():
            if folder.name == "INBOX" and not folder.support:
                specs["INBOX"] = self.declared_streams()["INBOX"]
                continue
            def read(_self: ImapConnector, state: StreamState, _folder: FolderConfig = folder) -> Iterator[Page]:
                return _self.read_folder(_folder, state)
            name = stream_name(folder.name)
            specs[name] = StreamSpec(name, ("message_key",), None, False, read)
        return specs

    def check(self) -> str:
        self.connect()
        names = ", ".join(f.name for f in self.folders())
        return f"ok: logged in as {self.config.username}; folders: {names}"

    # ------------------------------------------------------------------ reading

    def read_folder(self, folder: FolderConfig, state: StreamState) -> Iterator[Page]:
        conn = self.connect()
        self._folders = None
        self.folders()  # checks the configured names and finds the \\Sent folder
        try:
            typ, data = conn.select(quote(folder.name), readonly=True)
        except imaplib2.IMAP4.error as exc:
            raise SourceError(f"{self.where}: cannot open folder {folder.name!r}: {_server_text(exc)}") from None
        if typ != "OK":
            raise SourceError(f"{self.where}: cannot open folder {folder.name!r}: {_text(data)}")
        uidvalidity = _int(conn.response("UIDVALIDITY")[1])
        if uidvalidity is None:
            raise SourceError(f"{self.where}: folder {folder.name!r}: the server sent no UIDVALIDITY")
        saved = state.saved
        last = saved.get("uid", 0) if saved.get("uidvalidity") == uidvalidity else 0
        if saved.get("uidvalidity") not in (None, uidvalidity):
            log.warning("%s: folder %s: UIDVALIDITY changed (%s -> %s): reading it again",
                        self.where, folder.name, saved.get("uidvalidity"), uidvalidity)
        criteria = [f"{last + 1}:*"]
        if last == 0 and state.start_date is not None:
            criteria += ["SINCE", state.start_date.strftime("%d-%b-%Y")]
        typ, data = conn.uid("SEARCH", "UID", *criteria)
        if typ != "OK":
            raise SourceError(f"{self.where}: folder {folder.name!r}: SEARCH failed: {_text(data)}")
        uids = sorted(int(u) for u in b" ".join(d for d in data if isinstance(d, bytes)).split() if int(u) > last)
        total = len(uids)
        support = self.config.support or folder.support
        sent = folder.name in self._sent
        size = self.config.page_messages
        for n in range(0, total, size):
            chunk = uids[n:n + size]
            records = self._fetch(conn, folder, chunk, support, sent, uidvalidity)
            done = min(n + size, total)
            if total > size:
                log.info("%s: folder %s: %d of %d messages", self.where, folder.name, done, total)
            yield Page(records, {"uidvalidity": uidvalidity, "uid": chunk[-1],
                                 "cursor": f"{uidvalidity}/{chunk[-1]}"})
        if not uids and saved.get("uidvalidity") != uidvalidity:
            yield Page([], {"uidvalidity": uidvalidity, "uid": last, "cursor": f"{uidvalidity}/{last}"})

    def _fetch(self, conn: Any, folder: FolderConfig, uids: list[int], support: bool, sent: bool,
               uidvalidity: int) -> list[Record]:
        uid_set = ",".join(map(str, uids))
        heads = self._fetch_items(conn, folder, uid_set, f"(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER]<0.{MAX_HEADER_BYTES + 1}>)")
        bodies: dict[int, bytes] = {}
        if support:
            for uid, (_, _, body) in self._fetch_items(
                    conn, folder, uid_set, f"(UID BODY.PEEK[TEXT]<0.{self.config.body_max_bytes}>)").items():
                bodies[uid] = body
        records = []
        for uid in uids:
            if uid not in heads:
                continue  # expunged between SEARCH and FETCH: nothing was read
            size, flags, header = heads[uid]
            keywords = [f for f in flags if not f.startswith("\\")]
            records.append(message_record(
                header, bodies.get(uid, b"") if support else None, size=size,
                folder=folder.name, uid=uid, uidvalidity=uidvalidity, support=support, sent_folder=sent,
                labels=keywords))
        return records

    def _fetch_items(self, conn: Any, folder: FolderConfig, uid_set: str, items: str) -> dict[int, tuple]:
        try:
            typ, data = conn.uid("FETCH", uid_set, items)
        except imaplib2.IMAP4.error as exc:
            raise SourceError(f"{self.where}: folder {folder.name!r}: FETCH failed: {_server_text(exc)}") from None
        if typ != "OK":
            raise SourceError(f"{self.where}: folder {folder.name!r}: FETCH failed: {_text(data)}")
        out: dict[int, tuple] = {}
        last: int | None = None
        for item in data or []:
            if isinstance(item, bytes) and last is not None:
                # the rest of the previous response, after its literal: FLAGS may come here too
                flags = _FLAGS.search(item)
                if flags and not out[last][1]:
                    out[last] = (out[last][0], flags.group(1).decode("utf-8", "replace").split(), out[last][2])
                last = None
                continue
            if not isinstance(item, tuple) or len(item) < 2:
                continue
            head, literal = item[0], item[1]
            uid = _UID.search(head)
            if not uid:
                continue
            size = _SIZE.search(head)
            flags = _FLAGS.search(head)
            last = int(uid.group(1))
            out[last] = (
                int(size.group(1)) if size else None,
                flags.group(1).decode("utf-8", "replace").split() if flags else [],
                literal if isinstance(literal, bytes) else b"",
            )
        return out


def _xoauth2(username: str, token: str):
    """The XOAUTH2 answer; to the server's error challenge (JSON) the answer is empty (RFC 7628)."""
    sent = []

    def answer(_challenge: bytes) -> bytes:
        if sent:
            return b""
        sent.append(True)
        return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()

    return answer


def _flag_set(flags: bytes) -> set[str]:
    return {f.lower() for f in flags.decode("ascii", "replace").split()}


def _int(data: Any) -> int | None:
    for item in data or []:
        try:
            return int(item)
        except (TypeError, ValueError):
            continue
    return None


def _text(data: Any) -> str:
    parts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data or []]
    return " ".join(parts)[:200] or "no details"


def _server_text(exc: Exception) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:200] or type(exc).__name__


def _first_line(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def _quiet_logout(conn: Any) -> None:
    try:
        conn.logout()
    except (imaplib2.IMAP4.error, OSError, AttributeError, RuntimeError):
        pass  # the connection is going away; a failed goodbye changes nothing
