"""Mail messages (imap, gmail, maildir, mbox) -> persons, email_message, touchpoint, case signals.

One record is one message, as ``connectors.sdk.mail`` reads it. It becomes:

- a ``source_person`` ``email:<address>`` for every address in From, To, Cc and Reply-To
  that is a person: not the company's own (``company_addresses``/``company_domains``),
  not a machine (``noreply_pattern``), and not in bulk or automatic mail (List-Id,
  List-Unsubscribe, Precedence, RFC 3834 Auto-Submitted);
- an ``email_message`` (thread: Gmail's threadId, else the first References id, else
  In-Reply-To, else its own id; direction: outbound when the sender is the company's,
  or when the company is unknown and it was read from the Sent folder/label);
- a ``touchpoint`` of channel ``email`` for the person the message was with;
- for support mail, the message's case signals on its ``email_message`` row (the case
  it belongs to, a tracking number from its subject, complaint keywords, a closing
  phrase or label); ``sql/model/05_mail_service_cases.sql`` folds each thread's
  messages into one ``service_case`` when `crmhub model` runs.

A record the connector could not read within its bounds carries ``_error``: it is
quarantined with that reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from functools import lru_cache
from typing import Any

from connectors.sdk.mail import (
    assigned_case_number,
    case_number_from,
    contains_any,
    split_display_name,
    unquoted,
)
from crm_model.mapping import MapContext, Reject, Row, mapping
from crm_model.mapping.common import person_row

VERSION = 1
BODY_EXCERPT_CHARS = 4000


@lru_cache(maxsize=64)
def _noreply(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def is_company(address: str, options: dict[str, Any]) -> bool:
    domain = address.rpartition("@")[2]
    if address in (options.get("company_addresses") or ()):
        return True
    return any(domain == d or domain.endswith("." + d) for d in options.get("company_domains") or ())


def is_machine(address: str, options: dict[str, Any]) -> bool:
    local = address.rpartition("@")[0]
    pattern = options.get("noreply_pattern")
    return bool(pattern) and _noreply(pattern).match(local) is not None


def _timestamp(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _short(value: str, prefix: str, limit: int = 255) -> str:
    """An id that fits a column: long ones become a digest (still stable)."""
    full = prefix + value
    if len(full) <= limit:
        return full
    return prefix + "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def thread_of(raw: dict[str, Any]) -> str:
    if raw.get("thread"):
        return f"gmail:{raw['thread']}"
    refs = raw.get("references") or []
    return refs[0] if refs else raw.get("in_reply_to") or raw["message_key"]


def map_message(raw: dict[str, Any], ctx: MapContext) -> list[Row]:
    if raw.get("_error"):
        raise Reject(str(raw["_error"]))
    options = dict(ctx.options)
    for name in ("company_domains", "company_addresses"):  # re-mapping reads them straight from crmhub.yml
        options[name] = [str(x).strip().lower().lstrip("@") for x in options.get(name) or ()]
    key = raw.get("message_key")
    if not key:
        raise Reject("message has no key")
    sender = (raw.get("from") or [None])[0]
    sender_address = sender["email"] if sender else None
    sent_at = _timestamp(raw.get("date"))
    labels = [str(x) for x in raw.get("labels") or []]

    if sender_address and (options.get("company_domains") or options.get("company_addresses")):
        outbound = is_company(sender_address, options)
    else:
        outbound = bool(raw.get("sent_folder"))
    bulk = raw.get("bulk")

    rows: list[Row] = []
    people: dict[str, str] = {}  # address -> person_ref
    if not bulk:
        for header in ("from", "to", "cc", "reply_to"):
            for entry in raw.get(header) or []:
                address = entry.get("email")
                if not address or address in people:
                    continue
                if is_company(address, options) or is_machine(address, options):
                    continue
                if outbound and header == "reply_to":
                    continue
                ref = _short(address, "email:")
                people[address] = ref
                name = entry.get("name")
                first, last = split_display_name(name)
                if name and "," in name and first and last:  # "Last, First" reads "First Last"
                    name = f"{first} {last}"
                rows.append(person_row(ref, seen_at=sent_at, email=address, display_name=name,
                                       first_name=first, last_name=last))

    # the person the conversation is with: the sender when it came in, the first recipient when it went out
    counterpart = None
    if outbound:
        for header in ("to", "cc"):
            for entry in raw.get(header) or []:
                if entry.get("email") in people:
                    counterpart = people[entry["email"]]
                    break
            if counterpart:
                break
    else:
        for header in ("reply_to", "from"):
            for entry in raw.get(header) or []:
                if entry.get("email") in people:
                    counterpart = people[entry["email"]]
                    break
            if counterpart:
                break

    thread = thread_of(raw)
    message = {
        "message_id": key,
        "thread_id": thread,
        "direction": "outbound" if outbound else "inbound",
        "from_address": sender_address,
        "to_addresses": [e["email"] for e in raw.get("to") or []],
        "cc_addresses": [e["email"] for e in raw.get("cc") or []],
        "subject": raw.get("subject"),
        "sent_at": sent_at,
        "person_ref": counterpart,
        "folder": (raw.get("folder") or None) and str(raw["folder"])[:255],
        "bulk": bool(bulk),
    }
    if raw.get("support") and not bulk:
        message.update(_case_signals(raw, thread, labels, options))
    rows.append(Row("email_message", message))
    if counterpart and sent_at is not None:
        rows.append(Row("touchpoint", {
            "external_id": _short(key, "email:"), "person_ref": counterpart, "occurred_at": sent_at,
            "channel": "email", "utm_source": None, "campaign_id": None, "url": None,
        }))
    return rows


def _case_signals(raw: dict[str, Any], thread: str, labels: list[str], options: dict[str, Any]) -> dict[str, Any]:
    subject = raw.get("subject") or ""
    own_words = unquoted(raw.get("body"))
    text = f"{subject}\n{own_words}"
    closing_labels = {x.casefold() for x in options.get("closing_labels") or ()}
    return {
        "case_id": assigned_case_number(thread, options.get("case_number_prefix") or "MAIL-"),
        "tracking_number": case_number_from(subject, options.get("case_number_pattern") or r"$^"),
        "complaint": contains_any(text, options.get("complaint_keywords") or ()),
        "closes_case": contains_any(own_words, options.get("closing_phrases") or ())
        or any(label.casefold() in closing_labels for label in labels + [raw.get("folder") or ""]),
        "body_excerpt": own_words.strip()[:BODY_EXCERPT_CHARS] or None,
    }


def register(connector: str) -> None:
    mapping(connector, "*", version=VERSION)(map_message)
