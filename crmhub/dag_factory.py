"""Builds crmhub's Airflow DAGs from crmhub.yml, without touching any source or database.

- ``crmhub_sync_<source>``: one per pulled source, on the source's schedule, one task
  that runs ``crmhub.tasks.sync_source``; it declares the asset
  ``crmhub://warehouse/raw/<source>`` as its outlet.
- ``crmhub_model``: scheduled on any of those assets, so it runs after every sync.
- ``crmhub_report_<name>``: one per ``reports:`` entry, on its schedule: ``model`` (re-map and
  resolve what the latest syncs landed) then ``report`` (build and mail it; a report_run row).

Parsing reads only the config file (no secrets are resolved, nothing is connected),
so the scheduler can re-parse every few seconds at no cost.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from crmhub import config as config_mod
from crmhub.alerts import airflow_failure_callback

DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TAGS = ["crmhub"]
MODEL_TIMEOUT = dt.timedelta(hours=2)


def asset_uri(source: str) -> str:
    return f"crmhub://warehouse/raw/{source}"


PUSH_GROUP = "crmhub.push_connectors"  # = connectors.sdk.registry.PUSH_GROUP, read without its imports


def _push_types() -> frozenset[str]:
    """Push connectors (webhooks) get no sync DAG: known from entry points, nothing imported."""
    from importlib.metadata import entry_points

    return frozenset(ep.name for ep in entry_points(group=PUSH_GROUP))


def build_dags(config_path: str | Path | None = None) -> dict[str, Any]:
    from airflow.sdk import DAG, Asset, AssetAny, task

    cfg = config_mod.load(config_path)
    path = str(cfg.path)
    dags: dict[str, Any] = {}
    assets = []
    push = _push_types()
    alert = airflow_failure_callback(path)  # after the last retry: email/webhook from `alerts:`
    for name, source in cfg.settings.sources.items():
        if not source.enabled or source.connector in push:
            continue
        asset = Asset(asset_uri(name))
        assets.append(asset)
        start = (dt.datetime.combine(source.start_date, dt.time(), dt.UTC)
                 if source.start_date else DEFAULT_START)
        with DAG(
            dag_id=f"crmhub_sync_{name}",
            description=f"Sync {name} ({source.connector}) into the crmhub warehouse",
            schedule=source.schedule,
            start_date=start,
            catchup=False,  # a sync reads from its stored cursor: one run catches up
            max_active_runs=1,  # never two syncs of one source at once
            tags=[*TAGS, "sync", source.connector],
            default_args={"retries": source.retries, "retry_delay": dt.timedelta(minutes=2),
                          "retry_exponential_backoff": True, "owner": "crmhub",
                          "on_failure_callback": alert,
                          # a hung source must not hold the DAG's only active run forever
                          "execution_timeout": dt.timedelta(minutes=source.execution_timeout_minutes)},
            doc_md=f"Runs `crmhub sync {name}`. Cursor and counts: `crmhub status`.",
        ) as dag:
            task(task_id="sync", outlets=[asset])(_sync_task)(name, path)
        dags[dag.dag_id] = dag

    with DAG(
        dag_id="crmhub_model",
        description="Re-map raw records, resolve identities, rebuild persons",
        schedule=AssetAny(*assets) if assets else None,
        start_date=DEFAULT_START,
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, "model"],
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2), "owner": "crmhub",
                      "on_failure_callback": alert, "execution_timeout": MODEL_TIMEOUT},
        doc_md="Runs `crmhub model` after any sync landed data.",
    ) as dag:
        task(task_id="model")(_model_task)(path)
    dags[dag.dag_id] = dag

    for name, rep in cfg.settings.reports.items():
        with DAG(
            dag_id=f"crmhub_report_{name}",
            description=f"Build the {rep.report} report {name} ({rep.period}) and mail it",
            schedule=rep.schedule,
            start_date=DEFAULT_START,
            catchup=False,  # a missed report is not worth sending late
            max_active_runs=1,
            tags=[*TAGS, "report", rep.report],
            default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5), "owner": "crmhub",
                          "on_failure_callback": alert},
            doc_md=f"Runs `crmhub model`, then `crmhub report {name} --send`. History: table report_run.",
        ) as dag:
            modelled = task(task_id="model")(_model_task)(path)
            reported = task(task_id="report")(_report_task)(name, path)
            modelled >> reported
        dags[dag.dag_id] = dag
    return dags


# Task callables: thin wrappers that run the same code as the CLI.


def _sync_task(source: str, config_path: str) -> dict[str, Any]:
    from crmhub import tasks

    return tasks.sync_source(source, config_path)


def _model_task(config_path: str) -> dict[str, Any]:
    from crmhub import tasks

    return tasks.run_model(config_path)


def _report_task(name: str, config_path: str) -> dict[str, Any]:
    from crmhub import tasks

    return tasks.send_report(name, config_path)
