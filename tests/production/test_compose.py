"""docker-compose.yml, checked without Docker: against the Compose Specification's JSON
schema (as vendored by check-jsonschema), and for the topology crmhub documents."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from crmhub import config as config_mod

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_valid_against_the_compose_specification(compose):
    schema = json.loads(resources.files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text())
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


def test_every_service_of_the_topology_is_there_with_a_health_check(compose):
    services = compose["services"]
    expected = {*AIRFLOW, "airflow-init", "postgres", "redis", "mailpit", "crmhub-webhooks"}
    assert expected <= set(services)
    for name in expected:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
    assert services["airflow-worker"]["command"] == "celery worker"
    for name in AIRFLOW:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379")
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_airflow_metadata_and_warehouse_are_separate_databases(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    airflow_db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    cfg = config_mod.load(ROOT / "deploy" / "crmhub.yml")
    warehouse = cfg.settings.warehouse.url
    assert airflow_db.rsplit("/", 1)[1] == "airflow" and warehouse.rsplit("/", 1)[1] == "crmhub"
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE airflow" in init and "CREATE DATABASE crmhub" in init
    mounted = compose["services"]["postgres"]["volumes"]
    script = (ROOT / "deploy" / "postgres-init.sh").read_text()
    target = re.search(r"-f (\S+)", script).group(1)
    assert any(v.endswith(f":{target}:ro") for v in mounted)


def test_ports_are_distinct_and_documented(compose):
    published = [p.split(":")[0] for s in compose["services"].values() for p in s.get("ports", [])]
    assert sorted(published) == ["8025", "8080", "8090"]
    readme = (ROOT / "README.md").read_text()
    for port in published:
        assert f":{port}" in readme


def test_crmhub_config_is_mounted_where_crmhub_config_points_and_its_vars_are_provided(compose):
    services = compose["services"]
    for name in (*AIRFLOW, "crmhub-webhooks", "airflow-init"):
        service = services[name]
        env = service["environment"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert env["CRMHUB_CONFIG"] in mounts, name
        assert (ROOT / mounts[env["CRMHUB_CONFIG"]]).resolve() == (ROOT / "deploy" / "crmhub.yml").resolve()
        lines = (ROOT / "deploy" / "crmhub.yml").read_text().splitlines()
        used = set(re.findall(r"\$\{([A-Z0-9_]+)", "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))))
        assert used <= set(env), f"{name} lacks {used - set(env)}"
    # the sync DAGs are built from the same file; the DAG folder is the image's
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/airflow/dags"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in dockerfile


def test_no_secret_is_baked_in(compose):
    env_example = (ROOT / "deploy" / "env.example").read_text()
    secrets = [line.split("=")[0] for line in env_example.splitlines()
               if line and not line.startswith("#") and line.endswith("=")]
    assert "AIRFLOW_FERNET_KEY" in secrets and "CRMHUB_DB_PASSWORD" in secrets
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / "Dockerfile").read_text()
    for name in secrets:  # only ever referenced, never given a value
        assert not re.search(rf"{name}\s*[:=]\s*[\"']?[A-Za-z0-9+/]{{8,}}", text), name
    assert "ARG" not in "".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                               if "PASSWORD" in line or "TOKEN" in line or "SECRET" in line)


def test_the_image_installs_crmhub_as_a_wheel_on_the_official_airflow_image():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}", dockerfile, re.M)
    assert "pip wheel" in dockerfile and "/tmp/crmhub-*.whl" in dockerfile
    pinned = re.search(r"ARG AIRFLOW_VERSION=(\S+)", dockerfile).group(1)
    assert pinned.startswith("3.")
