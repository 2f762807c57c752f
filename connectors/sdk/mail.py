"""Mail as hostile input: one bounded parser shared by the imap, gmail, maildir and mbox connectors.

A message becomes a plain record (headers decoded, addresses split, a capped text body
where a support mailbox needs it), or a record carrying ``_error`` with the reason the
mapping quarantines it for. Nothing here raises on bad mail and nothing logs content.

Bounds, so a hostile message costs at most a known amount of time and memory:
- the header block is read up to ``MAX_HEADER_BYTES`` (a larger one is quarantined),
  at most ``MAX_HEADER_FIELDS`` fields, each address header up to ``MAX_ADDRESS_HEADER``
  characters and ``MAX_ADDRESSES`` addresses;
- a body is read up to the configured ``body_max_bytes`` (connectors fetch no more), with
  at most ``MAX_MULTIPARTS`` multipart containers (which also bounds the nesting depth)
  and ``MAX_PARTS`` parts; its text is cut to ``BODY_TEXT_CHARS``;
- every decoder runs with ``errors="replace"``; an unknown charset is read as UTF-8 with
  replacement, a lying one simply yields replacement characters.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email
import email.header
import email.utils
import functools
import hashlib
import html
import re
from collections.abc import Iterable
from email.message import Message
from email.policy import compat32
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_HEADER_BYTES = 256 * 1024
MAX_HEADER_FIELDS = 1000
MAX_ADDRESS_HEADER = 16 * 1024
MAX_ADDRESSES = 300
MAX_MULTIPARTS = 50
MAX_PARTS = 200
BODY_TEXT_CHARS = 20_000
MAX_REFERENCES = 100
BODY_MAX_BYTES = 256 * 1024

ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
# The headers a record keeps (everything else is dropped before it lands anywhere).
KEPT_HEADERS = frozenset({
    "message-id", "in-reply-to", "references", "subject", "date", *ADDRESS_HEADERS,
    "list-id", "list-unsubscribe", "precedence", "auto-submitted", "x-autoreply", "x-autorespond",
    "x-auto-response-suppress", "content-type", "content-transfer-encoding",
})

DEFAULT_NOREPLY = (r"^(no-?reply|do-?not-?reply|donotreply|noreply-\w+|mailer-daemon|postmaster|"
                   r"bounces?|notifications?)([+._-].*)?$")
DEFAULT_COMPLAINT_KEYWORDS = (
    # en
    "complaint", "complain", "broken", "defective", "damaged", "not working", "doesn't work",
    "refund", "unacceptable", "not acceptable", "disappointed", "faulty",
    # de
    "beschwerde", "reklamation", "defekt", "kaputt", "beschädigt", "funktioniert nicht", "enttäuscht",
    # fr
    "réclamation", "plainte", "cassé", "défectueux", "ne fonctionne pas", "remboursement",
    # es
    "queja", "reclamación", "roto", "defectuoso", "no funciona", "reembolso",
)
DEFAULT_CLOSING_PHRASES = (
    "this case is now closed", "we have closed this case", "case closed", "ticket closed",
    "dieser fall ist abgeschlossen", "fall abgeschlossen", "ce dossier est clos", "caso cerrado",
)


class MailError(ValueError):
    """A message that cannot be read within the bounds; the text is the quarantine reason."""


class MailOptions(BaseModel):
    """How mail becomes persons, conversations and service cases (shared by every mail connector)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    company_domains: list[str] = Field(default_factory=list,
                                       description="The company's own domains (subdomains included).")
    company_addresses: list[str] = Field(default_factory=list, description="The company's own addresses.")
    noreply_pattern: str = Field(DEFAULT_NOREPLY, description="Local parts that are machines, not people.")
    case_number_pattern: str = Field(r"\[Case #(\d+)\]",
                                     description="Regex finding a tracking number in a subject (group 1, or the match).")
    case_number_prefix: str = Field("MAIL-", max_length=32, description="Prefix of assigned tracking numbers.")
    complaint_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_COMPLAINT_KEYWORDS))
    closing_phrases: list[str] = Field(default_factory=lambda: list(DEFAULT_CLOSING_PHRASES))
    closing_labels: list[str] = Field(default_factory=lambda: ["Closed", "Solved", "$Closed"],
                                      description="Folder names, IMAP keywords or Gmail labels that close a case.")
    body_max_bytes: int = Field(64 * 1024, ge=1024, le=BODY_MAX_BYTES,
                                description="Body bytes read from support mail (others: headers only).")

    @field_validator("company_domains", "company_addresses")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower().lstrip("@") for v in value if v.strip()]

    @field_validator("noreply_pattern", "case_number_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


MAIL_OPTIONS = tuple(MailOptions.model_fields)


# --------------------------------------------------------------------------- text


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


def clean(text: str, limit: int = 998) -> str:
    """One line: control characters (CR/LF injected through encoded words too) become spaces."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _charset(name: str | None) -> str:
    try:
        return codecs.lookup(name or "utf-8").name
    except (LookupError, TypeError, ValueError):
        return "utf-8"  # unknown or made-up charsets: read as UTF-8 with replacement


def raw_header_text(value: Any) -> str:
    """A header value as text: 8-bit bytes without a declared charset are UTF-8, else Latin-1."""
    if isinstance(value, email.header.Header):
        value = str(value)
    if not isinstance(value, str):
        value = str(value)
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded, each with its own charset, never raising."""
    if "=?" not in value:
        return value
    try:
        parts = email.header.decode_header(value)
    except (ValueError, LookupError, IndexError, AssertionError):
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            out.append(chunk.decode(_charset(charset), "replace"))
        else:
            out.append(chunk)
    return "".join(out)


# --------------------------------------------------------------------------- addresses


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2]


_ANGLE_ADDR = re.compile(r"<([^<>@\s]{1,64}@[^<>@\s]{1,255})>")


def parse_addresses(value: str | None) -> list[dict[str, str | None]]:
    """[{email, name}] from an address header; names decoded, cleaned, 'Last, First' kept as is."""
    if not value:
        return []
    if len(value) > MAX_ADDRESS_HEADER:
        raise MailError(f"an address header is longer than {MAX_ADDRESS_HEADER} characters")
    text = clean(raw_header_text(value), MAX_ADDRESS_HEADER)
    found = []
    pairs = email.utils.getaddresses([text])
    if not any("@" in a for _, a in pairs):  # broken syntax (an unclosed comment, ...): take <addr> as written
        pairs = [("", a) for a in _ANGLE_ADDR.findall(text)]
    for name, address in pairs:
        address = address.strip().strip("<>").lower()
        if "@" not in address or " " in address or len(address) > 320:
            continue
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain:
            continue
        name = clean(decode_words(name), 255).strip(" \"'")
        # a display name carrying an address (or header syntax) is a spoof, not a name
        if "@" in name or "<" in name or ">" in name or ":" in name:
            name = ""
        found.append({"email": address, "name": name or None})
        if len(found) >= MAX_ADDRESSES:
            break
    return found


def split_display_name(name: str | None) -> tuple[str | None, str | None]:
    """'Doe, Jane' -> (Jane, Doe); 'Jane Doe' -> (Jane, Doe); one word -> (it, None)."""
    if not name:
        return None, None
    if name.count(",") == 1:
        last, first = (p.strip() for p in name.split(","))
        if first and last and " " not in last.strip():
            return first, last
    parts = name.split()
    if len(parts) == 1:
        return parts[0], None
    return " ".join(parts[:-1]), parts[-1]


# --------------------------------------------------------------------------- messages


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) of a raw message; the header block ends at the first empty line."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(sep, 0, MAX_HEADER_BYTES + 4)
        if at >= 0:
            return raw[: at + len(sep)], raw[at + len(sep):]
    if len(raw) > MAX_HEADER_BYTES:
        raise MailError(f"header block larger than {MAX_HEADER_BYTES // 1024} KiB")
    return raw, b""


def header_pairs(header_bytes: bytes) -> list[tuple[str, str]]:
    """(name, value) for each header field, 8-bit text preserved for later decoding."""
    return _pairs(parse_header_block(header_bytes))


def parse_header_block(header_bytes: bytes) -> Message:
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise MailError(f"header block larger than {MAX_HEADER_BYTES // 1024} KiB")
    return email.message_from_bytes(header_bytes, policy=compat32)


def _pairs(message: Message) -> list[tuple[str, str]]:
    items = list(message.raw_items())  # as sent: 8-bit text is decoded later, not replaced here
    if len(items) > MAX_HEADER_FIELDS:
        raise MailError(f"more than {MAX_HEADER_FIELDS} header fields")
    if not items:
        raise MailError("no header fields")
    return [(str(k), v if isinstance(v, str) else str(v)) for k, v in items]


def header_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """A stable key for a message without a Message-ID: a digest of its identifying headers."""
    wanted = ("from", "to", "cc", "date", "subject")
    h = hashlib.sha256()
    for name, value in pairs:
        if name.lower() in wanted:
            h.update(name.lower().encode() + b":" + value.encode("utf-8", "surrogateescape") + b"\n")
    return "digest:" + h.hexdigest()[:40]


_MSGID = re.compile(r"<([^<>\s]{1,900})>")


def message_ids(value: str | None, limit: int = MAX_REFERENCES) -> list[str]:
    if not value:
        return []
    return [f"<{m}>" for m in _MSGID.findall(raw_header_text(value))[:limit]]


def parse_date(value: str | None) -> str | None:
    """A Date header as ISO 8601 UTC, or None when it is missing or not a date."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(clean(raw_header_text(value), 200))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322)
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC).isoformat()
    except (OverflowError, ValueError):
        return None


def bulk_reason(headers: dict[str, str]) -> str | None:
    """Why a message is bulk or automatic (RFC 2369/2919 lists, Precedence, RFC 3834), or None."""
    if headers.get("list-id"):
        return "List-Id"
    if headers.get("list-unsubscribe"):
        return "List-Unsubscribe"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto.split(';')[0][:40]}"
    if headers.get("x-autoreply") or headers.get("x-autorespond"):
        return "auto-reply"
    return None


def headers_record(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The record fields every mail connector fills from a message's header fields."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        lname = name.strip().lower()
        if lname in KEPT_HEADERS and lname not in headers:  # the first occurrence counts
            headers[lname] = value
    own_id = message_ids(headers.get("message-id"), 1)
    record: dict[str, Any] = {
        "message_id": own_id[0] if own_id else None,
        "message_key": own_id[0] if own_id else header_digest(pairs),
        "in_reply_to": (message_ids(headers.get("in-reply-to"), 1) or [None])[0],
        "references": message_ids(headers.get("references")),
        "subject": clean(decode_words(raw_header_text(headers.get("subject", ""))), 2000) or None,
        "date": parse_date(headers.get("date")),
        "bulk": bulk_reason({k: raw_header_text(v) for k, v in headers.items()}),
    }
    for name in ADDRESS_HEADERS:
        record[name.replace("-", "_")] = parse_addresses(headers.get(name))
    return record


def message_record(header_bytes: bytes, body_bytes: bytes | None = None, *, size: int | None = None,
                   **extra: Any) -> dict[str, Any]:
    """A record for one message from its raw header block (and, when wanted, its first body bytes).

    Never raises: a message that cannot be read within the bounds comes back with
    ``_error`` (the reason) and a key derived from what could be read.
    """
    record: dict[str, Any] = {**extra, "size": size}
    try:
        head = parse_header_block(header_bytes)
        record.update(headers_record(_pairs(head)))
        if body_bytes is not None:
            record["body"] = body_text(header_bytes, body_bytes, head)
    except MailError as exc:
        record.setdefault("message_key", "raw:" + hashlib.sha256(header_bytes[:MAX_HEADER_BYTES]).hexdigest()[:40])
        record["_error"] = str(exc)
    except (ValueError, LookupError, TypeError, RecursionError, UnicodeError, AttributeError) as exc:
        # the stdlib parser met something it could not handle: quarantine, say what (no content)
        record.setdefault("message_key", "raw:" + hashlib.sha256(header_bytes[:MAX_HEADER_BYTES]).hexdigest()[:40])
        record["_error"] = f"unreadable message ({type(exc).__name__})"
    return record


def body_text(header_bytes: bytes, body_bytes: bytes, head: Message | None = None) -> str | None:
    """The first text/plain part (or text/html without markup), decoded, cut to BODY_TEXT_CHARS."""
    body_bytes = body_bytes[:BODY_MAX_BYTES]
    if body_bytes.lower().count(b"boundary=") + header_bytes.lower().count(b"boundary=") > MAX_MULTIPARTS:
        raise MailError(f"more than {MAX_MULTIPARTS} nested or sibling multipart containers")
    # every part starts with a "--boundary" line: counting them first spares parsing thousands
    if body_bytes.count(b"\n--") > 2 * MAX_PARTS:
        raise MailError(f"more than {MAX_PARTS} MIME parts")
    if head is not None and head.get_content_maintype() != "multipart":
        message = head  # a single part: its body needs no MIME parsing, only its transfer decoding
        message.set_payload(body_bytes.decode("ascii", "surrogateescape"))
    else:
        message = email.message_from_bytes(header_bytes + body_bytes, policy=compat32)
    parts = 0
    plain: Message | None = None
    html_part: Message | None = None
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        parts += 1
        if parts > MAX_PARTS:
            raise MailError(f"more than {MAX_PARTS} MIME parts")
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend(reversed(payload))
            continue
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html_part is None:
            html_part = part
    chosen = plain or html_part
    if chosen is None:
        return None
    data = chosen.get_payload(decode=True) or b""
    text = data.decode(_charset(chosen.get_content_charset()), "replace")
    if chosen is html_part and plain is None:
        return body_text_from_html(text)[:BODY_TEXT_CHARS] or None
    return clean_body(text)[:BODY_TEXT_CHARS] or None


def body_text_from_html(text: str) -> str:
    text = html.unescape(re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<br\s*/?>|</p>|<[^>]{0,2000}>",
                                lambda m: "\n" if m.group(0)[:3].lower() in ("<br", "</p") else " ",
                                text[: BODY_TEXT_CHARS * 4]))
    return clean_body(text)


def clean_body(text: str) -> str:
    """Line breaks kept, every other control character a space."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: "\n" if "\n" in m.group(0) else " ", text).strip()


def gmail_record(headers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A record from the Gmail API's ``payload.headers`` ([{name, value}]); same bounds."""
    record: dict[str, Any] = {**extra}
    try:
        if len(headers) > MAX_HEADER_FIELDS:
            raise MailError(f"more than {MAX_HEADER_FIELDS} header fields")
        pairs = [(str(h.get("name", "")), str(h.get("value", ""))[:MAX_ADDRESS_HEADER + 1])
                 for h in headers if isinstance(h, dict)]
        record.update(headers_record(pairs))
    except MailError as exc:
        record["_error"] = str(exc)
    return record


def case_number_from(subject: str | None, pattern: str) -> str | None:
    if not subject:
        return None
    match = re.search(pattern, subject, re.IGNORECASE)
    if not match:
        return None
    number = match.group(1) if match.groups() else match.group(0)
    return clean(number, 255) or None


def assigned_case_number(thread_id: str, prefix: str) -> str:
    """A short tracking number derived from the thread: the same thread always gets the same one."""
    digest = hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).digest()
    return prefix + "".join("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[b % 32] for b in digest[:10])


def unquoted(text: str | None) -> str:
    """A reply's own words: quoted lines ('> ...') and everything after 'On ... wrote:' left out."""
    if not text:
        return ""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        if re.match(r"^(On|Am|Le|El) .{0,200}(wrote|schrieb|a écrit|escribió)\s*:$", stripped):
            break
        if stripped.startswith("-----Original Message-----"):
            break
        kept.append(line)
    return "\n".join(kept)


def contains_any(text: str, phrases: Iterable[str]) -> bool:
    """Whether any phrase appears as whole words (case and spacing ignored)."""
    pattern = _phrases(tuple(phrases))
    return pattern is not None and pattern.search(" ".join(text.casefold().split())) is not None


@functools.lru_cache(maxsize=64)
def _phrases(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    words = [re.escape(" ".join(p.casefold().split())) for p in phrases if p.strip()]
    return re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)") if words else None


class FolderConfig(BaseModel):
    """A folder (IMAP mailbox, Maildir++ folder) or Gmail label, and whether it is a support queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=255)
    support: bool = False


def folder_configs(value: list[str | FolderConfig] | None) -> list[FolderConfig] | None:
    if value is None:
        return None
    out = [FolderConfig(name=v) if isinstance(v, str) else v for v in value]
    names = [f.name for f in out]
    if len(set(names)) != len(names):
        raise ValueError("a folder is listed twice")
    return out


SENT_NAMES = frozenset({"sent", "sent items", "sent messages", "sent mail", "gesendet", "gesendete objekte"})
