"""`crmhub lead add`: a rep enters a lead; through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from crm_model import db
from crm_model.mapping.manual import touchpoint_channel
from crmhub.cli import main
from tests.conftest import rows

TABLES = ("lead", "source_person", "touchpoint", "raw_record", "rejected_record")


@pytest.fixture
def crmhub(write_config, warehouse_url, capsys):
    """Run `crmhub ...` against a crmhub.yml with ``sources``; returns (exit code, stdout, stderr)."""
    state = {"sources": {}}

    def run(*args: str):
        path = write_config(state["sources"]).path
        code = main([*args, "--config", str(path)])
        out, err = capsys.readouterr()
        return code, out, err

    run.sources = state
    return run


@pytest.fixture
def engine(warehouse_url):
    engine = db.connect(warehouse_url)
    yield engine
    engine.dispose()


def added_key(out: str) -> str:
    found = re.fullmatch(r"lead (\d{14}-[0-9a-f]{6}) added to manual\n", out)
    assert found, out
    return found.group(1)


def test_a_phone_call_becomes_lead_person_and_touchpoint(crmhub, engine):
    code, out, err = crmhub("lead", "add", "--email", " Ada.Lovelace@Example.com ", "--name", "Ada Lovelace",
                            "--phone", "+1 (212) 555-0147", "--company", "Analytical Engines",
                            "--source", "phone_call", "--note", "Called about pricing; wants a demo",
                            "--form", "hotline")
    assert (code, err) == (0, "")
    key = added_key(out)

    [lead] = rows(engine, "lead")
    assert (lead["source"], lead["external_id"], lead["form"], lead["note"]) == \
        ("manual", key, "hotline", "Called about pricing; wants a demo")
    assert lead["answers"]["channel"] == "phone_call"
    assert lead["submitted_at"].tzinfo is not None
    [person] = rows(engine, "source_person")
    assert (person["email"], person["phone"], person["display_name"], person["company"], person["lifecycle_stage"]) \
        == ("ada.lovelace@example.com", "+12125550147", "Ada Lovelace", "Analytical Engines", "lead")
    [touch] = rows(engine, "touchpoint")
    assert (touch["channel"], touch["person_ref"]) == ("phone_call", lead["person_ref"])
    [raw] = rows(engine, "raw_record")
    assert (raw["source"], raw["stream"], raw["record_key"]) == ("manual", "leads", key)
    assert raw["payload"]["email"] == "Ada.Lovelace@Example.com"  # as typed; the mapping normalises
    assert rows(engine, "rejected_record") == []


def test_walk_ins_are_site_visits_and_unknown_channels_are_kept_on_the_lead(crmhub, engine):
    assert crmhub("lead", "add", "--phone", "+44 20 7946 0958", "--source", "walk_in")[0] == 0
    assert crmhub("lead", "add", "--email", "kim@example.org", "--source", "Trade Fair")[0] == 0
    by_channel = {r["answers"]["channel"]: r for r in rows(engine, "lead")}
    assert set(by_channel) == {"walk_in", "trade_fair"}
    touch = {r["external_id"]: r["channel"] for r in rows(engine, "touchpoint")}
    assert touch[by_channel["walk_in"]["person_ref"]] == "site_visit"
    assert touch[by_channel["trade_fair"]["person_ref"]] == "form"


def test_touchpoint_channel_mapping():
    assert [touchpoint_channel(c) for c in ("phone_call", "email", "walk_in", "referral", "meeting", None)] == \
        ["phone_call", "email", "site_visit", "form", "meeting", "form"]


@pytest.mark.parametrize(("args", "message"), [
    (("--email", "ada@@example", "--name", "Ada"),
     r"crmhub: error: --email: 'ada@@example' is not a valid email address"),
    (("--phone", "030 1234567"),
     r"crmhub: error: --phone: '030 1234567' is not a phone number .*set default_region in sources\.manual\.config"),
    (("--name", "Nobody", "--company", "Acme"), r"crmhub: error: give --email or --phone.*"),
    (("--email", "a@example.com", "--into", "Not-A-Source"), r"crmhub: error: --into 'Not-A-Source'.*"),
])
def test_bad_input_fails_with_one_line_and_writes_nothing(crmhub, engine, args, message):
    code, out, err = crmhub("lead", "add", *args)
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert re.match(message, line), line
    for table in TABLES:
        assert rows(engine, table) == [], table


def test_the_same_email_twice_is_two_leads_and_one_person(crmhub, engine):
    first = added_key(crmhub("lead", "add", "--email", "grace@example.org", "--name", "Grace Hopper")[1])
    second = added_key(crmhub("lead", "add", "--email", "GRACE@example.org", "--source", "referral",
                              "--note", "Second call")[1])
    assert first != second
    assert crmhub("model")[0] == 0
    leads = rows(engine, "lead")
    assert len(leads) == 2
    [person] = rows(engine, "person")
    assert {lead["person_id"] for lead in leads} == {person["person_id"]}
    assert person["email"] == "grace@example.org"


def test_only_manual_sources_take_leads(crmhub, engine):
    crmhub.sources["sources"] = {"website": {"connector": "webhook", "config": {
        "forms": {"contact": {"secret": "${CONTACT_FORM_SECRET}"}}}}}
    code, _, err = crmhub("lead", "add", "--email", "a@example.com", "--into", "website")
    assert code == 1
    assert err == ("crmhub: error: source 'website' is a webhook source; leads are added to a source "
                   "of connector type manual\n")
    assert rows(engine, "raw_record") == []


def test_a_declared_manual_source_sets_the_phone_region(crmhub, engine):
    crmhub.sources["sources"] = {"front_desk": {"connector": "manual", "config": {"default_region": "DE"}}}
    code, out, _ = crmhub("lead", "add", "--phone", "030 1234567", "--name", "Jonas Weber",
                          "--source", "walk_in", "--into", "front_desk")
    assert code == 0 and out.endswith("added to front_desk\n")
    [person] = rows(engine, "source_person")
    assert (person["source"], person["phone"]) == ("front_desk", "+49301234567")


def test_status_shows_when_a_push_source_last_received(crmhub, engine):
    crmhub.sources["sources"] = {"front_desk": {"connector": "manual"}}
    code, out, _ = crmhub("status")
    assert code == 0 and "front_desk (manual, pushed)\n  last received: nothing yet" in out
    assert crmhub("lead", "add", "--email", "a@example.com", "--into", "front_desk")[0] == 0
    code, out, _ = crmhub("status")
    assert code == 0 and re.search(r"last received: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; raw records 1;", out), out
