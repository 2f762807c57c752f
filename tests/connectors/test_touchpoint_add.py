"""`crmhub touchpoint add`: a rep logs a call, visit or meeting; through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from crm_model import db, identity
from crmhub.cli import main
from tests.conftest import rows


@pytest.fixture
def crmhub(write_config, capsys):
    def run(*args: str, sources: dict | None = None):
        path = write_config(sources or {}).path
        code = main([*args, "--config", str(path)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def engine(warehouse_url):
    engine = db.connect(warehouse_url)
    yield engine
    engine.dispose()


def test_a_logged_call_makes_the_lead_a_prospect(crmhub, engine):
    code, out, err = crmhub("lead", "add", "--email", "ada@example.com", "--source", "referral")
    assert code == 0, err
    code, out, err = crmhub("touchpoint", "add", "--email", "Ada@Example.com", "--channel", "phone_call",
                            "--at", "2026-03-04T15:30:00+01:00", "--note", "Asked for a quote")
    assert (code, err) == (0, "")
    key = re.fullmatch(r"touchpoint (\d{14}-[0-9a-f]{6}) added to manual\n", out).group(1)
    touch = next(t for t in rows(engine, "touchpoint") if t["external_id"] == key)
    assert (touch["channel"], touch["note"], touch["occurred_at"]) == (
        "phone_call", "Asked for a quote", dt.datetime(2026, 3, 4, 14, 30, tzinfo=dt.UTC))
    with engine.begin() as conn:
        identity.resolve(conn)
    (person,) = rows(engine, "person")
    assert person["lifecycle_stage"] == "prospect"
    assert person["last_touch_channel"] in ("phone_call", "form")


def test_a_meeting_by_phone_with_the_sources_region(crmhub, engine):
    code, out, err = crmhub("touchpoint", "add", "--phone", "030 1234567", "--channel", "meeting",
                            sources={"manual": {"connector": "manual", "config": {"default_region": "DE"}}})
    assert code == 0, err
    (person,) = rows(engine, "source_person")
    assert person["phone"] == "+49301234567"
    (touch,) = rows(engine, "touchpoint")
    assert touch["channel"] == "meeting"


def test_a_meeting_makes_the_lead_a_prospect(crmhub, engine):
    code, out, err = crmhub("lead", "add", "--email", "grace@example.org", "--source", "referral")
    assert code == 0, err
    with engine.begin() as conn:
        identity.resolve(conn)
    assert rows(engine, "person")[0]["lifecycle_stage"] == "lead"  # a form alone is no tracked interaction
    code, out, err = crmhub("touchpoint", "add", "--email", "grace@example.org", "--channel", "meeting",
                            "--note", "Demo at their office")
    assert code == 0, err
    with engine.begin() as conn:
        identity.resolve(conn)
    (person,) = rows(engine, "person")
    assert (person["lifecycle_stage"], person["last_touch_channel"]) == ("prospect", "meeting")


@pytest.mark.parametrize("args, message", [
    (("--channel", "phone_call"), "give --email or --phone"),
    (("--email", "ada@example.com", "--channel", "fax"), "--channel must be one of phone_call, site_visit, meeting"),
    (("--email", "not-an-email"), "--email"),
    (("--email", "ada@example.com", "--at", "yesterday"), "--at"),
])
def test_bad_input_is_one_line_and_stores_nothing(crmhub, engine, args, message):
    code, out, err = crmhub("touchpoint", "add", *args)
    assert code == 1 and message in err and err.count("\n") == 1
    assert rows(engine, "raw_record") == []
