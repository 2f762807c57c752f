"""maildir and mbox sources: local files through the same parser and mapping; support threads as cases."""

from __future__ import annotations

import os

from connectors.mailfiles import MaildirConfig, MaildirConnector, MailFilesConfig, MboxConnector
from crm_model import identity
from crm_model.load import Upserter
from crm_model.sync import sync
from tests.conftest import rows
from tests.connectors.mailmaker import mail

COMPANY = {"company_domains": ["acme.example"]}


def mbox_entry(raw: bytes) -> bytes:
    return b"From sender@example.com Mon Nov  2 09:00:00 2026\n" + raw.replace(b"\r\n", b"\n") + b"\n"


def model(warehouse):
    with warehouse.begin() as c:
        identity.resolve(c)


def run_mbox(warehouse, path, **config):
    conn = MboxConnector(MailFilesConfig(path=str(path), **COMPANY, **config), source="support")
    return sync(warehouse, "support", conn, "mbox")


def test_support_thread_is_one_case_new_then_answered_then_closed(warehouse, tmp_path):
    box = tmp_path / "support.mbox"
    with warehouse.begin() as c:
        Upserter(c).upsert("product", [{"source": "shop", "external_id": "77", "sku": "WK-300",
                                        "title": "Wasserkocher 300"}])
    box.write_bytes(mbox_entry(mail("kunde@example.de", '"Müller, Karl"', subject="Wasserkocher WK-300 defekt",
                                    msgid="k1@example.de", date="Mon, 02 Nov 2026 09:00:00 +0100",
                                    body="Guten Tag,\nmein Wasserkocher ist kaputt.\n")))
    first = run_mbox(warehouse, box, support=True)
    assert (first.read, first.loaded) == (1, 1)
    model(warehouse)
    (case,) = rows(warehouse, "service_case")
    assert case["status"] == "new" and case["kind"] == "complaint"
    assert case["tracking_number"] == case["external_id"] and case["tracking_number"].startswith("MAIL-")
    assert (case["product_source"], case["product_id"]) == ("shop", "77")
    person = rows(warehouse, "person")[0]
    assert case["person_id"] == person["person_id"] and person["display_name"] == "Karl Müller"
    assigned = case["tracking_number"]

    with box.open("ab") as f:  # the company answers, in the same thread
        f.write(mbox_entry(mail("support@acme.example", "Acme Support", to="kunde@example.de",
                                subject="Re: Wasserkocher WK-300 defekt", msgid="a1@acme.example",
                                references="<k1@example.de>", date="Mon, 02 Nov 2026 11:00:00 +0100",
                                body="Wir senden Ersatz.\n")))
    assert run_mbox(warehouse, box, support=True).read == 1  # only the new message
    model(warehouse)
    (case,) = rows(warehouse, "service_case")
    assert case["status"] == "answered" and case["tracking_number"] == assigned

    with box.open("ab") as f:
        f.write(mbox_entry(mail("support@acme.example", to="kunde@example.de", subject="Re: Wasserkocher",
                                msgid="a2@acme.example", references="<k1@example.de> <a1@acme.example>",
                                date="Tue, 03 Nov 2026 11:00:00 +0100",
                                body="Ersatz ist da. Dieser Fall ist abgeschlossen.\n")))
    run_mbox(warehouse, box, support=True)
    model(warehouse)
    (case,) = rows(warehouse, "service_case")
    assert case["status"] == "closed" and case["closed_at"].isoformat() == "2026-11-03T10:00:00+00:00"
    assert case["tracking_number"] == assigned  # stable: the thread did not change

    # a full re-read changes nothing
    before = {t: rows(warehouse, t) for t in ("service_case", "email_message", "source_person")}
    conn = MboxConnector(MailFilesConfig(path=str(box), support=True, **COMPANY), source="support")
    again = sync(warehouse, "support", conn, "mbox", full_refresh=True)
    assert again.read == 3 and again.loaded == 3
    model(warehouse)
    assert {t: rows(warehouse, t) for t in before} == before


def test_tracking_number_from_the_subject_pattern(warehouse, tmp_path):
    box = tmp_path / "support.mbox"
    box.write_bytes(mbox_entry(mail("a@example.com", subject="Question", msgid="q@example.com"))
                    + mbox_entry(mail("support@acme.example", to="a@example.com", subject="Re: Question [Ticket 42-X]",
                                      msgid="r@acme.example", references="<q@example.com>",
                                      date="Mon, 02 Nov 2026 10:00:00 +0000")))
    run_mbox(warehouse, box, support=True, case_number_pattern=r"\[Ticket ([0-9A-Z-]+)\]")
    model(warehouse)
    (case,) = rows(warehouse, "service_case")
    assert case["tracking_number"] == "42-X" and case["kind"] == "question" and case["status"] == "answered"


def test_mbox_rewritten_is_read_again_and_not_support_has_no_cases(warehouse, tmp_path):
    box = tmp_path / "rep.mbox"
    box.write_bytes(mbox_entry(mail("a@example.com", msgid="1@example.com")))
    assert run_mbox(warehouse, box).read == 1
    assert run_mbox(warehouse, box).read == 0
    box.write_bytes(mbox_entry(mail("b@example.com", msgid="2@example.com")))  # rewritten, not appended
    assert run_mbox(warehouse, box).read == 1
    model(warehouse)
    assert rows(warehouse, "service_case") == []
    assert len(rows(warehouse, "email_message")) == 2


def test_maildir_folders_and_incremental_by_modification_time(warehouse, tmp_path):
    root = tmp_path / "ann"
    for sub in ("cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1.host").write_bytes(mail("ada@example.com", msgid="in1@example.com", to="ann@acme.example"))
    (root / ".Sent" / "cur" / "2.host:2,S").write_bytes(
        mail("ann@acme.example", to="ada@example.com", msgid="out1@acme.example", references="<in1@example.com>"))
    os.utime(root / "new" / "1.host", ns=(1_000_000_000, 1_000_000_000))

    def run():
        conn = MaildirConnector(MaildirConfig(path=str(root), company_domains=[]), source="rep")
        return sync(warehouse, "rep", conn, "maildir")

    first = run()
    assert first.read == 2 and first.loaded == 2
    messages = {m["message_id"]: m for m in rows(warehouse, "email_message")}
    # no company configured: the Sent folder tells what went out
    assert messages["<out1@acme.example>"]["direction"] == "outbound"
    assert messages["<out1@acme.example>"]["folder"] == "Sent"
    (root / "new" / "3.host").write_bytes(mail("bob@example.com", msgid="in2@example.com"))
    second = run()
    assert second.read >= 1 and len(rows(warehouse, "email_message")) == 3
