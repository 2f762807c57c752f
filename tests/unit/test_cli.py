"""The `crmhub` command as a user meets it: help everywhere, one clear line on error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from crmhub.cli import main

ROOT = Path(__file__).resolve().parents[2]
VERBS = [["init"], ["sync"], ["model"], ["status"], ["demo"], ["connectors"], ["connectors", "list"],
         ["connectors", "new"], ["connectors", "check"]]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help(verb, capsys):
    assert main([*verb, "--help"]) == 0
    assert "Usage: crmhub" in capsys.readouterr().out


def crmhub(*args: str, config: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if config:
        full_env["CRMHUB_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "crmhub", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "crmhub.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_errors_are_one_clear_line(tmp_path):
    cfg = write(tmp_path, {"warehouse": {"url": f"sqlite:///{tmp_path}/w.db"},
                           "sources": {"reps": {"connector": "csv", "config": {
                               "path": "x.csv", "entity": "lead", "key": "id", "encoding": "${ENC}"}}}})
    assert crmhub("init", config=cfg).returncode == 0
    assert "unknown source 'nope'" in one_line_error(crmhub("sync", "nope", config=cfg))
    assert "crmhub.yml line 10: sources.reps.config.encoding: environment variable ENC is not set" in one_line_error(
        crmhub("sync", config=cfg))
    bad_key = write(tmp_path, {"warehouse": {"url": "sqlite:///w.db"}, "sourcez": {}})
    assert "crmhub.yml line 3: sourcez: unknown key" in one_line_error(crmhub("status", config=bad_key))
    unreachable = write(tmp_path, {"warehouse": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}})
    assert "cannot reach warehouse postgresql+psycopg://nobody@127.0.0.1:1/none" in one_line_error(
        crmhub("status", config=unreachable))
    fresh = write(tmp_path, {"warehouse": {"url": f"sqlite:///{tmp_path}/fresh.db"}})
    assert "not initialised: run `crmhub init`" in one_line_error(crmhub("status", config=fresh))
    assert "not found" in one_line_error(crmhub("status", config=tmp_path / "absent.yml"))


def test_init_sync_status_model_through_the_cli(tmp_path, warehouse_url):
    (tmp_path / "leads.csv").write_text("id,email,name\n1,ada@example.com,Ada\n2,nope,Bad\n")
    cfg = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {"reps": {
        "connector": "csv", "schedule": "@hourly", "config": {"path": "leads.csv", "entity": "lead", "key": "id"}}}})
    assert crmhub("init", config=cfg).returncode == 0
    done = crmhub("sync", config=cfg)
    assert done.returncode == 0, done.stderr
    assert "reps: success - read 2, loaded 1, rejected 1" in done.stdout
    done = crmhub("model", config=cfg)
    assert done.returncode == 0 and "1 persons" in done.stdout, done.stderr
    done = crmhub("status", config=cfg)
    assert done.returncode == 0, done.stderr
    assert "reps (csv, schedule @hourly)" in done.stdout and "read 2, loaded 1, rejected 1" in done.stdout


def test_connectors_list_shows_csv(capsys):
    assert main(["connectors", "list"]) == 0
    assert "csv" in capsys.readouterr().out


def test_connectors_new_scaffolds_a_working_connector(tmp_path):
    name = f"zz_probe_{os.getpid()}"
    created = [ROOT / "connectors" / f"{name}.py", ROOT / "crm_model" / "mapping" / f"{name}.py",
               ROOT / "tests" / "connectors" / f"test_{name}.py"]
    try:
        done = crmhub("connectors", "new", name, "--root", str(ROOT))
        assert done.returncode == 0, done.stderr
        assert all(p.exists() for p in created)
        assert f'{name} = "connectors.{name}:' in done.stdout
        again = crmhub("connectors", "new", name, "--root", str(ROOT))
        assert "not overwriting" in one_line_error(again)
        # the generated test passes as generated, on both warehouses
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(created[2])],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:]
        assert "3 passed" in run.stdout  # the mapping test, the sync test on SQLite and on PostgreSQL
    finally:
        for path in created:
            path.unlink(missing_ok=True)


def test_connectors_check_reads_one_page_and_writes_nothing(tmp_path, httpserver, capsys):
    (tmp_path / "leads.csv").write_text("id,email\n1,a@example.com\n2,b@example.com\n")
    httpserver.expect_request("/forms/abc").respond_with_json({"code": "AUTHENTICATION_FAILED",
                                                               "description": "Authentication credentials not found"},
                                                              status=401)
    cfg = write(tmp_path, {"warehouse": {"url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, "sources": {
        "reps": {"connector": "csv", "config": {"path": "leads.csv", "entity": "lead", "key": "id"}},
        "forms": {"connector": "typeform", "config": {"base_url": httpserver.url_for("/"),
                                                      "token": "tfp_wrong_token_value", "forms": ["abc"]}}}})
    assert main(["connectors", "check", "reps", "--config", str(cfg)]) == 0  # no warehouse needed
    assert capsys.readouterr().out == "reps: ok: read 2 record(s) from stream 'rows'\n"
    assert main(["connectors", "check", "forms", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "401" in err and "check the credentials" in err and "tfp_wrong_token_value" not in err
    assert len(err.strip().splitlines()) == 1
