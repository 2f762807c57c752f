"""The mail parser and mapping on hand-made messages (pure: no server, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.sdk.mail import (
    MailOptions,
    bulk_reason,
    case_number_from,
    contains_any,
    message_record,
    parse_addresses,
    split_display_name,
    unquoted,
)
from crm_model.mapping import MapContext, Reject
from crm_model.mapping.mail import map_message
from tests.connectors.mailmaker import hostile_messages, mail

OPTIONS = MailOptions(company_domains=["acme.example"]).model_dump()


def ctx(**options) -> MapContext:
    return MapContext("mail", "INBOX", "imap", {**OPTIONS, **options})


def record(raw: bytes, **extra):
    head, _, body = raw.partition(b"\r\n\r\n")
    return message_record(head + b"\r\n\r\n", body if extra.get("support") else None, **extra)


def tables(rows):
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row.table, []).append(row.values)
    return out


@pytest.mark.parametrize(("header", "expected"), [
    ('"Doe, Jane" <Jane@Example.com>', [("jane@example.com", "Doe, Jane")]),
    ("=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@example.de>", [("jm@example.de", "Jörg Müller")]),
    ("=?iso-8859-1?q?Ren=E9e?= =?utf-8?b?RHVwb250?= <r@example.fr>", [("r@example.fr", "RenéeDupont")]),
    ("a@example.com, B <b@example.com>", [("a@example.com", None), ("b@example.com", "B")]),
    ('"ceo@bank.example" <mallory@evil.example>', [("mallory@evil.example", None)]),
    ("=?utf-8?q?x=0D=0ABcc=3A_y=40z=2Ecom?= <m@example.com>", [("m@example.com", None)]),
    ("undisclosed-recipients:;", []),
    ("not an address", []),
])
def test_addresses_are_decoded_and_cleaned(header, expected):
    assert [(a["email"], a["name"]) for a in parse_addresses(header)] == expected


def test_names_split_last_comma_first():
    assert split_display_name("Doe, Jane") == ("Jane", "Doe")
    assert split_display_name("Jane Doe") == ("Jane", "Doe")
    assert split_display_name("Cher") == ("Cher", None)
    assert split_display_name(None) == (None, None)


@pytest.mark.parametrize(("headers", "reason"), [
    ({"list-id": "<x.example>"}, "List-Id"),
    ({"list-unsubscribe": "<mailto:u@x>"}, "List-Unsubscribe"),
    ({"precedence": "bulk"}, "Precedence: bulk"),
    ({"auto-submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
    ({"auto-submitted": "no"}, None),
    ({"x-autoreply": "yes"}, "auto-reply"),
    ({}, None),
])
def test_bulk_and_automatic_mail(headers, reason):
    assert bulk_reason(headers) == reason


def test_inbound_message_rows():
    raw = mail("ada@example.com", '"Lovelace, Ada"', subject="=?utf-8?q?Angebot_f=C3=BCr_40?=", msgid="m1@example.com",
               to="ann@acme.example", cc="grace@example.org, noreply@example.com",
               date="Mon, 02 Nov 2026 09:00:00 +0100", reply_to="ada.private@example.net")
    out = tables(map_message(record(raw, folder="INBOX"), ctx()))
    (msg,) = out["email_message"]
    assert msg["direction"] == "inbound" and msg["subject"] == "Angebot für 40"
    assert msg["sent_at"] == dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC)
    assert msg["thread_id"] == "<m1@example.com>" and msg["cc_addresses"] == ["grace@example.org", "noreply@example.com"]
    people = {p["external_id"]: p for p in out["source_person"]}
    assert set(people) == {"email:ada@example.com", "email:grace@example.org", "email:ada.private@example.net"}
    assert (people["email:ada@example.com"]["first_name"], people["email:ada@example.com"]["last_name"]) == ("Ada", "Lovelace")
    # the conversation is with whom replies go to
    assert msg["person_ref"] == "email:ada.private@example.net"
    (touch,) = out["touchpoint"]
    assert touch["channel"] == "email" and touch["person_ref"] == msg["person_ref"]


def test_outbound_by_company_address_and_thread_from_references():
    raw = mail("ann@acme.example", "Ann", to="ada@example.com", msgid="r@acme.example",
               references="<root@example.com> <m1@example.com>")
    (msg,) = tables(map_message(record(raw), ctx()))["email_message"]
    assert msg["direction"] == "outbound" and msg["thread_id"] == "<root@example.com>"
    assert msg["person_ref"] == "email:ada@example.com"


def test_without_company_config_the_sent_folder_decides_direction():
    raw = mail("ann@acme.example", to="ada@example.com", msgid="r@acme.example")
    (msg,) = tables(map_message(record(raw, sent_folder=True), ctx(company_domains=[])))["email_message"]
    assert msg["direction"] == "outbound"


def test_auto_reply_makes_no_person():
    raw = mail("ada@example.com", to="support@acme.example", msgid="ooo@example.com",
               extra="Auto-Submitted: auto-replied\r\n")
    out = tables(map_message(record(raw), ctx()))
    assert "source_person" not in out and "touchpoint" not in out
    assert out["email_message"][0]["bulk"] is True


def test_message_without_message_id_is_keyed_by_a_header_digest():
    raw = mail("ada@example.com", msgid=None)
    a, b = record(raw), record(raw)
    assert a["message_key"].startswith("digest:") and a["message_key"] == b["message_key"]


def test_support_signals():
    raw = mail("kunde@example.de", "Kunde", subject="Re: [Case #123] Reklamation", msgid="s1@example.de",
               body="Der Wasserkocher ist kaputt.\r\n\r\nAm 1. Nov schrieb Support:\r\n> case closed\r\n")
    (msg,) = tables(map_message(record(raw, support=True), ctx()))["email_message"]
    assert msg["tracking_number"] == "123" and msg["complaint"] is True
    assert msg["closes_case"] is False  # the closing phrase is only in the quote
    assert msg["case_id"].startswith("MAIL-") and len(msg["case_id"]) == 15
    assert "kaputt" in msg["body_excerpt"] and "case closed" not in msg["body_excerpt"]
    # the same thread always gets the same assigned number
    (again,) = tables(map_message(record(raw, support=True), ctx()))["email_message"]
    assert again["case_id"] == msg["case_id"]


def test_case_patterns_keywords_and_quotes():
    assert case_number_from("Re: [Ticket #A-77] help", r"\[Ticket #([A-Z0-9-]+)\]") == "A-77"
    assert case_number_from("no number", r"\[Case #(\d+)\]") is None
    assert contains_any("Mon colis est arrivé CASSÉ", ["cassé"])
    assert not contains_any("unbroken record", ["broken"])
    assert unquoted("thanks\n> old text\nOn Mon, Ann wrote:\nolder") == "thanks"


def test_hostile_messages_load_cleaned_or_reject_with_a_reason():
    results = {}
    for name, raw in hostile_messages().items():
        head_end = raw.find(b"\r\n\r\n")
        head, body = (raw[: head_end + 4], raw[head_end + 4:]) if head_end >= 0 else (raw, b"")
        rec = message_record(head[: 256 * 1024 + 1], body[: 64 * 1024], support=True)
        try:
            results[name] = tables(map_message(rec, ctx()))
        except Reject as exc:
            results[name] = str(exc)
    assert "multipart containers" in results["deep"]
    assert "header block larger" in results["long_header"]
    assert "more than 200 MIME parts" in results["many_parts"]
    lying = results["lying"]["email_message"][0]
    assert lying["sent_at"] is None and "\n" not in lying["subject"]
    assert results["bytes"]["email_message"][0]["from_address"] == "bytes@example.com"
    (injected,) = results["injection"]["source_person"]
    assert injected.get("display_name") is None and injected["email"] == "mallory@example.com"
