"""meta_leads: pulled from a real HTTP server, and pushed through a real `crmhub serve`: one lead either way."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from connectors.meta.leads import LEAD_FIELDS, MetaLeadsConfig, MetaLeadsConnector
from crm_model import db, identity
from crm_model.sync import load_state, sync
from tests.conftest import FIXTURES, rows

TOKEN = "EAAG-page-SECRET-token"
APP_SECRET = "meta-app-secret-0f1e2d"
VERIFY = "verify-me-7c6b"
FORM = "987654321012345"
CRMHUB = Path(sys.executable).parent / "crmhub"


def fixture(server, name: str) -> dict:
    return json.loads((FIXTURES / "meta" / name).read_text().replace("{base}", server.url_for("/").rstrip("/")))


def connector(server) -> MetaLeadsConnector:
    cfg = MetaLeadsConfig(base_url=server.url_for("/"), access_token=TOKEN, forms=[FORM], page_size=1,
                          default_region="GB", max_retries=1)
    return MetaLeadsConnector(cfg, source="fb_leads", start_date=dt.date(2026, 3, 1))


def expect_pull(server, since: int):
    first = {"fields": LEAD_FIELDS, "limit": "1",
             "filtering": json.dumps([{"field": "time_created", "operator": "GREATER_THAN", "value": since - 1}],
                                     separators=(",", ":"))}
    server.expect_ordered_request(f"/v24.0/{FORM}/leads", query_string=first).respond_with_json(
        fixture(server, "leads_page1.json"))
    server.expect_ordered_request(f"/v24.0/{FORM}/leads", query_string={"limit": "1", "after": "QVFIUjI"}
                                  ).respond_with_json(fixture(server, "leads_page2.json"))


def test_leads_are_pulled_with_their_ad_and_person(warehouse, httpserver):
    httpserver.no_handler_status_code = 418
    expect_pull(httpserver, int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()))

    result = sync(warehouse, "fb_leads", connector(httpserver), "meta_leads")

    httpserver.check_assertions()
    assert result.status == "success", result.errors
    leads = {lead["external_id"]: lead for lead in rows(warehouse, "lead")}
    paid = leads["1111222233334444"]
    assert (paid["ad_platform"], paid["campaign_id"], paid["ad_id"], paid["attribution_rule"]) == (
        "meta_ads", "120200000000000001", "120210000000000011", "lead_ad")
    assert paid["answers"]["how_many_vehicles_do_you_run?"] == "10-50"
    assert paid["submitted_at"] == dt.datetime(2026, 3, 1, 14, 5, 9, tzinfo=dt.UTC)
    organic = leads["5555666677778888"]
    assert (organic["ad_id"], organic["attribution_rule"], organic["utm_source"]) == (None, None, "instagram")
    people = {p["email"]: p for p in rows(warehouse, "source_person")}
    assert people["priya.raman@example.co.uk"]["phone"] == "+447700900123"
    assert people["priya.raman@example.co.uk"]["company"] == "Raman Logistics"
    with warehouse.connect() as conn:
        state = load_state(conn, "fb_leads", "leads")
    assert state["forms"] == {FORM: int(dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC).timestamp())}
    with warehouse.begin() as conn:
        identity.resolve(conn)  # the model keeps the ad the platform named
    assert rows(warehouse, "lead")[0]["attribution_rule"] == "lead_ad"


# ------------------------------------------------------------------ the webhook, through `crmhub serve`


@pytest.fixture
def served(tmp_path, warehouse_url, httpserver):
    doc = {"warehouse": {"url": warehouse_url},
           "sources": {"fb_leads": {"connector": "meta_leads", "start_date": "2026-03-01", "config": {
               "base_url": httpserver.url_for("/"), "access_token": "${META_TOKEN}", "forms": [FORM],
               "app_secret": "${META_APP_SECRET}", "verify_token": "${META_VERIFY}", "page_size": 1,
               "default_region": "GB", "max_retries": 1}}}}
    config = tmp_path / "crmhub.yml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    log = tmp_path / "serve.log"
    env = {**os.environ, "META_TOKEN": TOKEN, "META_APP_SECRET": APP_SECRET, "META_VERIFY": VERIFY}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(CRMHUB), "serve", "--port", "0", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield _wait_until_up(proc, log), config
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + 120  # a loaded 2-core CI machine imports slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"crmhub serve exited with {proc.returncode}: {log.read_text()}")
        found = re.search(r"crmhub serve: (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            try:
                if requests.get(found.group(1) + "/healthz", timeout=5).status_code == 200:
                    return found.group(1)
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    pytest.fail(f"crmhub serve did not come up: {log.read_text()}")


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def test_webhook_handshake_signature_and_one_lead_when_pulled_and_pushed(served, warehouse, httpserver):
    url, config = served
    ok = requests.get(f"{url}/meta/fb_leads", params={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                                       "hub.verify_token": VERIFY}, timeout=10)
    assert (ok.status_code, ok.text) == (200, "1158201444")
    wrong = requests.get(f"{url}/meta/fb_leads", params={"hub.mode": "subscribe", "hub.challenge": "1",
                                                          "hub.verify_token": "guess"}, timeout=10)
    assert wrong.status_code == 403

    body = json.dumps(fixture(httpserver, "webhook_leadgen.json")).encode()
    forged = requests.post(f"{url}/meta/fb_leads", data=body, headers=signed(body, "not-the-secret"), timeout=10)
    assert forged.status_code == 401 and rows(warehouse, "raw_record") == []

    lead = fixture(httpserver, "leads_page1.json")["data"][0]
    httpserver.expect_oneshot_request("/v24.0/1111222233334444", query_string={"fields": LEAD_FIELDS}
                                      ).respond_with_json(lead)
    pushed = requests.post(f"{url}/meta/fb_leads", data=body, headers=signed(body), timeout=10)
    assert pushed.status_code == 200, pushed.text
    assert pushed.json() == {"status": "received", "leads": 1}  # the other form's lead is not ours
    assert all(req.headers["Authorization"] == f"Bearer {TOKEN}" for req, _ in httpserver.log)

    # the nightly pull reads the same lead again: still one lead
    expect_pull(httpserver, int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()))
    result = sync(warehouse, "fb_leads", connector(httpserver), "meta_leads")
    assert result.status == "success", result.errors
    assert sorted(lead["external_id"] for lead in rows(warehouse, "lead")) == ["1111222233334444", "5555666677778888"]
    assert len([r for r in rows(warehouse, "raw_record") if r["record_key"] == "1111222233334444"]) == 1
    assert db.current_revision(warehouse) is not None
