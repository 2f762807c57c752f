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
VERBS = [["init"], ["sync"], ["model"], ["status"], ["runs"], ["rejects"], ["demo"], ["serve"], ["connectors"],
         ["connectors", "list"], ["connectors", "new"], ["connectors", "check"], ["lead"], ["lead", "add"]]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help_without_python_types(verb, capsys):
    assert main([*verb, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: crmhub" in out
    for python_type in ("<str>", "<int>", "<path>", "<list", "<bool>", "[str]", "NoneType"):
        assert python_type not in out, out


def crmhub(*args: str, config: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if config:
        full_env["CRMHUB_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "crmhub", *args], capture_output=True, text=True,
                          env=full_env, timeout=900)  # a bound for a hung process, not a speed check


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


# ------------------------------------------------------------------ exit codes
# 0 success, 1 a run or data failure, 2 a usage error: through the real `crmhub` process.

LEAF_VERBS = [v for v in VERBS if v not in (["connectors"], ["lead"])]


def console(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """The installed console script, as cron and Airflow's BashOperator run it."""
    env = {**os.environ, **({"CRMHUB_CONFIG": str(config)} if config else {})}
    script = Path(sys.executable).with_name("crmhub")
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env, timeout=900)


def test_usage_errors_are_one_line_with_a_hint_and_exit_2():
    done = console("sync", "--ful-refresh")
    assert done.returncode == 2
    assert one_line_error(done) == ("crmhub: usage error: crmhub sync: no such option --ful-refresh "
                                    "(did you mean --full-refresh?); see `crmhub sync --help`")
    done = console("snyc")
    assert done.returncode == 2 and "no such command 'snyc' (did you mean 'sync'?)" in one_line_error(done)
    done = console("connectors", "check")
    assert done.returncode == 2 and "missing parameter" in one_line_error(done)
    done = console("rejects", "--since", "last tuesday")
    assert done.returncode == 2 and "'last tuesday' is not a date" in one_line_error(done)


@pytest.mark.parametrize("verb", LEAF_VERBS, ids=" ".join)
def test_every_verb_exits_2_on_an_unknown_option(verb):
    done = console(*verb, "--no-such-option")
    assert done.returncode == 2, done.stderr
    assert f"crmhub {' '.join(verb)}: no such option --no-such-option" in one_line_error(done)


def test_crmhub_alone_prints_help_and_version_prints_the_version():
    done = console()
    assert done.returncode == 0 and "Usage: crmhub" in done.stdout and "Exit codes: 0 success" in done.stdout
    done = console("--version")
    assert done.returncode == 0 and done.stdout.startswith("crmhub ")


@pytest.mark.parametrize("verb", [["init"], ["sync"], ["model"], ["status"], ["runs"], ["rejects"], ["serve"],
                                  ["connectors", "check", "reps"], ["lead", "add", "--email", "a@example.com"]],
                         ids=" ".join)
def test_every_verb_exits_1_when_its_config_is_missing(tmp_path, verb):
    done = console(*verb, "--config", str(tmp_path / "absent.yml"))
    assert done.returncode == 1
    assert "absent.yml" in one_line_error(done) and "not found" in one_line_error(done)


def test_sync_exit_codes_and_failures(tmp_path, warehouse_url):
    (tmp_path / "leads.csv").write_text("lead_id,email\n1,a@example.com\n")
    cfg = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {
        "reps": {"connector": "csv", "config": {"path": "leads.csv", "entity": "lead", "key": "lead_id"}}}})
    assert console("init", config=cfg).returncode == 0
    done = console("sync", config=cfg)
    assert done.returncode == 0 and "reps: success - read 1, loaded 1" in done.stdout, done.stderr
    for name, config in {
        "missing file": {"path": "nope.csv", "entity": "lead", "key": "lead_id"},
        "no file matches": {"path": "nope-*.csv", "entity": "lead", "key": "lead_id"},
        "wrong key column": {"path": "leads.csv", "entity": "lead", "key": "id"},
    }.items():
        bad = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {
            "reps": {"connector": "csv", "config": config}}})
        done = console("sync", "--full-refresh", config=bad)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        assert "reps: failed" in done.stdout, name
    refused = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {
        "shop": {"connector": "woocommerce", "config": {
            "base_url": "http://127.0.0.1:1", "consumer_key": "ck_x", "consumer_secret": "cs_x", "max_retries": 0}}}})
    done = console("sync", config=refused)
    assert done.returncode == 1 and "shop: failed" in done.stdout
    # one line per failing stream, the connection error written out once
    stream_lines = [line for line in done.stdout.splitlines() if line.startswith("  ")]
    assert len(stream_lines) >= 2 and sum("the same error as" in line for line in stream_lines) == len(stream_lines) - 1
    assert "Traceback" not in done.stderr and "failed" not in done.stderr


def test_a_busy_source_is_skipped_and_the_others_sync(tmp_path, warehouse_url):
    from crm_model import db
    from crm_model.locks import source_lock

    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text("lead_id,email\n1,a@example.com\n")
    cfg = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {
        name: {"connector": "csv", "config": {"path": f"{name}.csv", "entity": "lead", "key": "lead_id"}}
        for name in ("a", "b")}})
    assert console("init", config=cfg).returncode == 0
    engine = db.connect(warehouse_url)
    try:
        with source_lock(engine, "a"):  # another sync of "a" is running
            done = console("sync", config=cfg)
    finally:
        engine.dispose()
    assert done.returncode == 0, done.stderr
    assert "a: skipped - another sync of 'a' is running" in done.stdout
    assert "b: success - read 1, loaded 1" in done.stdout


def test_status_runs_rejects_report_what_happened(tmp_path, warehouse_url):
    import json

    (tmp_path / "leads.csv").write_text("lead_id,email,birth_date\n1,a@example.com,19450493\n2,not-mail,\n")
    cfg = write(tmp_path, {"warehouse": {"url": warehouse_url}, "sources": {
        "reps": {"connector": "csv", "config": {"path": "leads.csv", "entity": "lead", "key": "lead_id"}},
        "later": {"connector": "csv", "config": {"path": "later.csv", "entity": "lead", "key": "lead_id"}}}})
    assert console("init", config=cfg).returncode == 0
    done = console("status", config=cfg)
    assert done.stdout.count("never run") == 2
    done = console("sync", "reps", config=cfg)
    assert done.returncode == 0
    assert "reps: success - read 2, loaded 1, rejected 1, 1 with field warnings" in done.stdout
    status = console("status", config=cfg).stdout
    assert "file " in status and "leads.csv: 2 rows read (done)" in status
    assert "later (csv, schedule manual)\n  never run" in status
    data = json.loads(console("status", "--json", config=cfg).stdout)
    reps = next(s for s in data if s["source"] == "reps")
    assert (reps["read"], reps["loaded"], reps["rejected"], reps["warned"]) == (2, 1, 1, 1)
    history = console("runs", "reps", config=cfg)
    assert history.returncode == 0 and "reps: success" in history.stdout and "read 2, loaded 1, rejected 1" in history.stdout
    listed = console("rejects", "reps", "--since", "1d", config=cfg)
    assert listed.returncode == 0
    assert "leads.csv line 3: email: 'not-mail' is not a valid email address" in listed.stdout
    assert "field birth_date = '19450493': birth_date: '19450493' has no such day" in listed.stdout
    found = json.loads(console("rejects", "--json", config=cfg).stdout)
    assert {x["kind"] for x in found} == {"rejected", "warning"}
    assert console("runs", "nope", config=cfg).returncode == 1
