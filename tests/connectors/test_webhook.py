"""Form webhooks: a real `crmhub serve` on 127.0.0.1, posted to with requests.

Each server test runs on SQLite and PostgreSQL (the ``warehouse_url`` fixture) and
checks what landed in lead/source_person/touchpoint/raw_record/rejected_record.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
import yaml
from sqlalchemy import Engine

from connectors.webhook import BadSubmission, WebhookConfig, WebhookConnector
from crm_model import db
from crm_model.mapping import MapContext, Reject
from crm_model.mapping.webhook import map_submission
from tests.conftest import load_json, rows

ROOT = Path(__file__).resolve().parents[2]
CRMHUB = Path(sys.executable).parent / "crmhub"
CONTACT_SECRET = "contact-form-secret-4f9a1c7e2b"
TYPEFORM_SECRET = "typeform-webhook-secret-8d3e6b0a"
# Requests wait for the server however loaded the machine is; this only stops a hung
# server from hanging the suite (it is no start-up budget: the socket listens already).
REQUEST_BOUND = 600
UTC = dt.UTC
TABLES = ("lead", "source_person", "touchpoint", "raw_record", "rejected_record")


def hex_signature(body: bytes, secret: str = CONTACT_SECRET, at: int | None = None) -> dict[str, str]:
    """X-Crmhub-Signature: t=<unix time>,v1=HMAC-SHA256(secret, "<t>." + body) in hex."""
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Crmhub-Signature": f"t={stamp},v1={digest}"}


def typeform_signature(body: bytes, secret: str = TYPEFORM_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"Typeform-Signature": "sha256=" + base64.b64encode(digest).decode()}


def as_json(fields: dict) -> bytes:
    return json.dumps(fields).encode()


def config_doc(warehouse_url: str) -> dict:
    return {
        "warehouse": {"url": warehouse_url},
        "sources": {"website": {"connector": "webhook", "config": {
            "forms": {"contact": {"secret": "${CONTACT_FORM_SECRET}", "honeypot": "website"},
                      "demo": {"secret": "${TYPEFORM_SECRET}"}},
            "max_body_bytes": 4096,
            "read_timeout_seconds": 2,
            "default_region": "US",
        }}},
    }


SECRETS_ENV = {"CONTACT_FORM_SECRET": CONTACT_SECRET, "TYPEFORM_SECRET": TYPEFORM_SECRET}


@dataclass
class Served:
    url: str
    engine: Engine
    log: Path | None = None  # what `crmhub serve` wrote (stdout and stderr)

    def post(self, path: str, body: bytes, content_type: str = "application/json", **headers: str):
        return requests.post(self.url + path, data=body, timeout=REQUEST_BOUND,
                             headers={"Content-Type": content_type, **headers})

    def count(self, table: str) -> int:
        return len(rows(self.engine, table))


@pytest.fixture
def served(tmp_path, warehouse_url):
    """`crmhub serve --port 0` against the test's warehouse; its port comes from its first line.

    Readiness, not a clock: the server listens before it prints that line, so once the
    line is read a request waits in the socket's backlog for however long start-up takes.
    """
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump(config_doc(warehouse_url), sort_keys=False))
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([str(CRMHUB), "serve", "--port", "0", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **SECRETS_ENV})
    try:
        url = _wait_until_up(proc, log)
        engine = db.connect(warehouse_url)
        yield Served(url, engine, log)
        engine.dispose()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen, log: Path) -> str:
    """Block on the server's output until it says where it listens (or exits)."""
    seen = []
    for raw in proc.stdout:  # blocks until a line or the end of the output, however long that takes
        line = raw.decode(errors="replace")
        seen.append(line)
        found = re.search(r"crmhub serve: (http://127\.0\.0\.1:\d+)", line)
        if found:
            threading.Thread(target=_copy, args=(proc.stdout, log), daemon=True).start()
            url = found.group(1)
            assert requests.get(url + "/healthz", timeout=REQUEST_BOUND).status_code == 200
            return url
    proc.wait()
    pytest.fail(f"crmhub serve exited with {proc.returncode} before listening: {''.join(seen)}")


def _copy(stream, log: Path) -> None:
    """Keep draining the server's log so it never blocks on a full pipe."""
    with log.open("ab", buffering=0) as out:  # each line on disk as the server writes it
        for line in stream:
            out.write(line)


# ------------------------------------------------------------------ the real server


def test_signed_json_and_form_posts_become_leads(served):
    contact = as_json({
        "submission_id": "site-1001", "email": "Ada.Lovelace@Example.com", "name": "Ada Lovelace",
        "phone": "(212) 555-0147", "company": "Analytical Engines",
        "page_url": "https://www.example.com/pricing?utm_source=google&utm_medium=cpc&utm_campaign=brand"
                    "&gclid=Cj0KCQiA_Test",
        "message": "Please call me back", "website": "",
    })
    answer = served.post("/forms/website/contact", contact, **hex_signature(contact))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "received", "submission_id": "site-1001"}

    form = urlencode([("E-Mail", "grace@example.org"), ("first_name", "Grace"), ("last_name", "Hopper"),
                      ("interest", "audit log"), ("interest", "sso"), ("website", "")]).encode()
    answer = served.post("/forms/website/contact", form, "application/x-www-form-urlencoded",
                         Referer="https://www.example.com/contact?utm_source=newsletter&utm_medium=email",
                         **hex_signature(form))
    assert answer.status_code == 202, answer.text
    generated_id = answer.json()["submission_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated_id)

    leads = {r["external_id"]: r for r in rows(served.engine, "lead")}
    assert set(leads) == {"contact:site-1001", f"contact:{generated_id}"}
    ada = leads["contact:site-1001"]
    assert (ada["form"], ada["utm_source"], ada["utm_medium"], ada["utm_campaign"], ada["gclid"]) == \
        ("contact", "google", "cpc", "brand", "Cj0KCQiA_Test")
    assert ada["answers"] == {"message": "Please call me back"}
    assert ada["person_ref"] == "lead:contact:site-1001" and ada["source"] == "website"
    assert ada["submitted_at"].tzinfo is not None
    grace = leads[f"contact:{generated_id}"]
    assert grace["landing_page"].startswith("https://www.example.com/contact?")  # from the Referer
    assert (grace["utm_source"], grace["utm_medium"]) == ("newsletter", "email")
    assert grace["answers"] == {"interest": ["audit log", "sso"]}

    people = {r["email"]: r for r in rows(served.engine, "source_person")}
    assert people["ada.lovelace@example.com"]["phone"] == "+12125550147"
    assert people["ada.lovelace@example.com"]["company"] == "Analytical Engines"
    assert (people["grace@example.org"]["first_name"], people["grace@example.org"]["display_name"]) == \
        ("Grace", "Grace Hopper")
    touchpoints = rows(served.engine, "touchpoint")
    assert {t["channel"] for t in touchpoints} == {"form"} and len(touchpoints) == 2
    raw = {r["record_key"]: r for r in rows(served.engine, "raw_record")}
    assert raw["contact|site-1001"]["payload"]["body"]["message"] == "Please call me back"
    assert raw["contact|site-1001"]["stream"] == "submissions"
    assert served.count("rejected_record") == 0

    # the client retries the same body (it carries an id): nothing new, nothing changed
    before = {t: rows(served.engine, t) for t in ("lead", "raw_record")}
    again = served.post("/forms/website/contact", contact, **hex_signature(contact))
    assert again.status_code == 202
    assert {t: rows(served.engine, t) for t in ("lead", "raw_record")} == before


def test_bad_signatures_oversized_and_unknown_forms_write_nothing(served):
    body = as_json({"email": "mallory@example.com", "name": "Mallory"})
    signed = hex_signature(body)
    assert served.post("/forms/website/contact", body).status_code == 401  # unsigned
    tampered = as_json({"email": "mallory@example.com", "name": "Mallory", "note": "x"})
    assert served.post("/forms/website/contact", tampered, **signed).status_code == 401
    assert served.post("/forms/website/contact", body, **hex_signature(body, "another-secret-of-20")
                       ).status_code == 401
    assert served.post("/forms/website/contact", body, **{"X-Crmhub-Signature": "sha1=" + "0" * 40}
                       ).status_code == 401
    # the demo form's secret does not open the contact form
    assert served.post("/forms/website/contact", body, **typeform_signature(body)).status_code == 401
    assert served.post("/forms/website/nope", body, **signed).status_code == 404
    assert served.post("/forms/elsewhere/contact", body, **signed).status_code == 404

    big = as_json({"email": "big@example.com", "message": "x" * 5000})  # max_body_bytes is 4096
    assert served.post("/forms/website/contact", big, **hex_signature(big)).status_code == 413
    chunked = requests.post(served.url + "/forms/website/contact", data=iter([big[:3000], big[3000:]]),
                            headers={"Content-Type": "application/json", **hex_signature(big)}, timeout=REQUEST_BOUND)
    assert chunked.status_code == 413  # no Content-Length: counted while reading

    for table in TABLES:
        assert served.count(table) == 0, table
    health = requests.get(served.url + "/healthz", timeout=REQUEST_BOUND)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


def test_spam_and_invalid_submissions_are_quarantined_with_reasons(served):
    spam = as_json({"submission_id": "bot-1", "email": "bot@example.net", "website": "http://spam.example"})
    answer = served.post("/forms/website/contact", spam, **hex_signature(spam))
    assert answer.status_code == 202  # the bot cannot tell
    bad_email = urlencode({"email": "not an address", "name": "Typo"}).encode()
    assert served.post("/forms/website/contact", bad_email, "application/x-www-form-urlencoded",
                       **hex_signature(bad_email)).status_code == 202
    not_json = b'{"email": '
    answer = served.post("/forms/website/contact", not_json, **hex_signature(not_json))
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    xml = b"<lead/>"
    assert served.post("/forms/website/contact", xml, "text/xml", **hex_signature(xml)).status_code == 415

    assert served.count("lead") == 0 and served.count("source_person") == 0
    reasons = sorted(r["reason"] for r in rows(served.engine, "rejected_record"))
    assert len(reasons) == 2
    # each reason names the submission; a lead whose only contact is bad is rejected
    assert any("email: 'not an address' is not a valid email address" in r and "the lead's only contact" in r
               and r.startswith("submission contact:") for r in reasons), reasons
    assert any(r.startswith("submission contact:")
               and r.endswith(": honeypot: the hidden field 'website' was filled in (spam)") for r in reasons), reasons
    assert served.count("raw_record") == 2  # both kept as sent: nothing is lost


def test_typeform_posts_its_webhook_directly(served):
    body = as_json(typeform_webhook())
    answer = served.post("/forms/website/demo", body, **typeform_signature(body))
    assert answer.status_code == 202, answer.text
    assert answer.json()["submission_id"] == "s5d4f3g2h1j0k9l8z7x6c5v4b3n2m1q0"
    # Typeform's base64 format, but hex: not a valid signature
    hex_encoded = {"Typeform-Signature": "sha256=" + hmac.new(TYPEFORM_SECRET.encode(), body,
                                                              hashlib.sha256).hexdigest()}
    assert served.post("/forms/website/demo", body, **hex_encoded).status_code == 401

    [lead] = rows(served.engine, "lead")
    assert lead["external_id"] == "Xk9Lm2Qp:s5d4f3g2h1j0k9l8z7x6c5v4b3n2m1q0"
    assert lead["submitted_at"] == dt.datetime(2026, 3, 11, 13, 20, 5, tzinfo=UTC)
    assert (lead["utm_source"], lead["utm_campaign"], lead["gclid"]) == ("google", "brand", "Cj0KCQiA_ExampleGclid4Rt8")
    assert lead["answers"]["Company size"] == "201-1000"
    [person] = rows(served.engine, "source_person")
    assert (person["email"], person["phone"], person["display_name"]) == \
        ("sofia.alvarez@example.com", "+12125550192", "Sofia Alvarez")
    assert [r["record_key"] for r in rows(served.engine, "raw_record")] == ["demo|s5d4f3g2h1j0k9l8z7x6c5v4b3n2m1q0"]


def typeform_webhook() -> dict:
    """A Typeform webhook body: the recorded response plus its form's definition."""
    item = load_json("typeform", "responses_new.json")["items"][0]
    form = load_json("typeform", "form.json")
    return {"event_id": "01JPB6Z1Q7W3E5R8T0Y2U4I6O8", "event_type": "form_response", "form_response": {
        "form_id": form["id"], "token": item["token"], "landed_at": item["landed_at"],
        "submitted_at": item["submitted_at"], "hidden": item["hidden"], "calculated": item["calculated"],
        "definition": {"id": form["id"], "title": form["title"], "fields": form["fields"]},
        "answers": item["answers"]}}


# ------------------------------------------------------------------ startup errors


def test_serve_fails_with_one_line(tmp_path):
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump(config_doc(f"sqlite:///{tmp_path / 'w.db'}")))
    env = {k: v for k, v in os.environ.items() if k not in SECRETS_ENV}
    done = subprocess.run([str(CRMHUB), "serve", "--port", "0", "--config", str(config)],
                          check=False, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert re.fullmatch(r"crmhub: error: crmhub\.yml line \d+: sources\.website\.config\.forms\.contact\.secret: "
                        r"environment variable CONTACT_FORM_SECRET is not set", line), line

    config.write_text(yaml.safe_dump({"warehouse": {"url": f"sqlite:///{tmp_path / 'w.db'}"}, "sources": {}}))
    done = subprocess.run([str(CRMHUB), "init", "--config", str(config)], check=False, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([str(CRMHUB), "serve", "--config", str(config)], check=False, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "no enabled source with `connector: webhook`" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------ pure parts


def connector(**forms) -> WebhookConnector:
    forms = forms or {"contact": {"secret": CONTACT_SECRET, "honeypot": "website"}}
    return WebhookConnector(WebhookConfig(forms=forms), source="website")


def test_config_refuses_short_secrets_and_odd_form_names():
    with pytest.raises(ValueError, match="at least 16 characters"):
        WebhookConfig(forms={"contact": {"secret": "short"}})
    with pytest.raises(ValueError, match="part of the URL"):
        WebhookConfig(forms={"con/tact": {"secret": CONTACT_SECRET}})


def test_submission_ids_make_retries_idempotent():
    hook = connector()
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    body = as_json({"email": "a@example.com"})
    first = hook.submission("contact", body, "application/json", {}, at)
    second = hook.submission("contact", body, "application/json", {}, at + dt.timedelta(seconds=1))
    assert first["submission_id"] != second["submission_id"]  # no id: every post is new
    keyed = hook.submission("contact", body, "application/json", {"Idempotency-Key": "k-7"}, at)
    assert keyed["submission_id"] == "k-7"
    with pytest.raises(BadSubmission, match="longer than 180"):
        hook.submission("contact", as_json({"id": "x" * 181}), "application/json", {}, at)
    assert not hook.verify("contact", body, {"x-crmhub-signature": "sha256=" + "0" * 64})
    upper_hex = hmac.new(CONTACT_SECRET.encode(), body, hashlib.sha256).hexdigest().upper()
    legacy = connector(contact={"secret": CONTACT_SECRET, "legacy_body_signature": True})
    assert legacy.verify("contact", body, {"X-CRMHUB-SIGNATURE": f"SHA256={upper_hex}"})  # a plain dict
    # without legacy_body_signature a body-only signature is refused: it would allow replays
    verdict = hook.verify("contact", body, {"X-CRMHUB-SIGNATURE": f"SHA256={upper_hex}"})
    assert not verdict and "body-only" in verdict.problem


def test_mapping_finds_people_by_common_field_names():
    ctx = MapContext("website", "submissions", "webhook", {"default_region": "DE"})
    raw = {"form": "contact", "submission_id": "7", "received_at": "2026-03-01T12:00:00+00:00", "format": "json",
           "body": {"id": "7", "Vorname": "Jonas", "First Name": "Jonas", "Last-Name": "Weber",
                    "E-Mail": "jonas@example.de", "email": "jonas.weber@example.de", "Tel": "030 1234567",
                    "utm_source": "linkedin", "submitted_at": "2026-03-01T11:59:30Z", "empty": " "}}
    person, lead, touch = map_submission(raw, ctx)
    assert person.values["email"] == "jonas.weber@example.de"  # "email" comes before "e_mail"
    assert person.values["phone"] == "+49301234567"
    assert (person.values["first_name"], person.values["last_name"]) == ("Jonas", "Weber")
    assert lead.values["answers"] == {"Vorname": "Jonas", "E-Mail": "jonas@example.de"}
    assert lead.values["submitted_at"] == dt.datetime(2026, 3, 1, 11, 59, 30, tzinfo=UTC)
    assert touch.values["utm_source"] == "linkedin"
    raw["body"]["email"] = ["a@example.com", "b@example.com"]
    with pytest.raises(Reject, match="several values"):
        map_submission(raw, ctx)


# ------------------------------------------------------------------ Airflow plugin


PLUGIN = ROOT / "airflow_plugins" / "crmhub_webhooks.py"


def test_plugin_exposes_the_app_without_io_at_import(tmp_path, monkeypatch):
    from airflow.plugins_manager import is_valid_plugin
    from fastapi import FastAPI

    monkeypatch.setenv("CRMHUB_CONFIG", str(tmp_path / "missing.yml"))  # read on the first request only
    spec = importlib.util.spec_from_file_location("crmhub_webhooks_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert is_valid_plugin(module.CrmhubWebhooksPlugin)
    [entry] = module.CrmhubWebhooksPlugin.fastapi_apps
    assert entry["url_prefix"] == "/crmhub" and entry["name"] == "crmhub webhooks"
    assert isinstance(entry["app"], FastAPI)
    assert {"/healthz", "/forms/{source}/{form}"} <= {r.path for r in entry["app"].routes}


@pytest.mark.airflow
def test_airflow_mounts_the_plugin_and_it_lands_leads(tmp_path, warehouse_url):
    """Airflow's own plugin loading and API-server mounting, in a fresh process."""
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump(config_doc(warehouse_url)))
    body = as_json({"submission_id": "af-1", "email": "lin@example.com", "name": "Lin Chen"})
    script = textwrap.dedent(f"""
        import json
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        from airflow.api_fastapi.app import init_plugins
        app = FastAPI()
        init_plugins(app)
        client = TestClient(app)
        health = client.get("/crmhub/healthz")
        answer = client.post("/crmhub/forms/website/contact", content={body!r},
                             headers={{"Content-Type": "application/json", **{hex_signature(body)!r}}})
        print(json.dumps([health.status_code, answer.status_code, answer.json()]))
    """)
    env = {**os.environ, **SECRETS_ENV, "CRMHUB_CONFIG": str(config), "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGIN.parent), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    health, status, answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (health, status, answer) == (200, 202, {"status": "received", "submission_id": "af-1"})
    engine = db.connect(warehouse_url)
    try:
        assert [r["email"] for r in rows(engine, "source_person")] == ["lin@example.com"]
        assert [r["external_id"] for r in rows(engine, "lead")] == ["contact:af-1"]
    finally:
        engine.dispose()


def test_custom_identifier_from_form_fields_hidden_fields_and_csv_columns(served, tmp_path, warehouse_url,
                                                                          monkeypatch):
    """A `crm_id` custom identifier: a contact form's field, a Typeform hidden field and a
    csv column name one person across two sources, though names and emails differ."""
    from crmhub import config as config_mod
    from crmhub import jobs

    contact = as_json({"submission_id": "site-2001", "email": "ada@analytical.example", "name": "Ada Lovelace",
                       "crm_id": "CRM-4711", "message": "call me"})
    assert served.post("/forms/website/contact", contact, **hex_signature(contact)).status_code == 202
    other = as_json({"submission_id": "site-2002", "email": "grace@example.org", "name": "Grace Hopper",
                     "crm_id": "CRM-0815"})
    assert served.post("/forms/website/contact", other, **hex_signature(other)).status_code == 202
    webhook = typeform_webhook()
    webhook["form_response"]["hidden"]["crm_id"] = "crm-4711 "
    body = as_json(webhook)
    assert served.post("/forms/website/demo", body, **typeform_signature(body)).status_code == 202
    (tmp_path / "crm.csv").write_text("id,name,email,crm_id\nA1,Augusta King,countess@lovelace.example,CRM-4711\n"
                                      "A2,Charles Babbage,charles@engines.example,CRM-9999\n")
    doc = config_doc(warehouse_url)
    doc["sources"]["crm"] = {"connector": "csv", "config": {"path": "crm.csv", "entity": "person", "key": "id"}}
    doc["identity"] = {"identifiers": {"crm_id": {"website": "crm_id", "crm": "crm_id"}}}
    (tmp_path / "crmhub.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for name, value in SECRETS_ENV.items():
        monkeypatch.setenv(name, value)
    cfg = config_mod.load(tmp_path / "crmhub.yml")
    jobs.sync(cfg, ["crm"])
    jobs.model(cfg)

    by = {(r["source"], r["external_id"]): r["person_id"] for r in rows(served.engine, "source_person")}
    typeform_ref = next(k for k in by if k[0] == "website" and "Xk9Lm2Qp" in k[1])
    ada = by[("website", "lead:contact:site-2001")]
    assert by[typeform_ref] == ada and by[("crm", "A1")] == ada  # field, hidden field, csv column
    assert len({by[("website", "lead:contact:site-2002")], by[("crm", "A2")], ada}) == 3
    why = {r["external_id"]: r["evidence"] for r in rows(served.engine, "person_merge")}
    assert "crm_id:crm-4711" in why.values()
