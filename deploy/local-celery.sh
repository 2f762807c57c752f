#!/usr/bin/env bash
# The docker-compose topology with plain processes, for a machine without Docker (and
# for tests/production/test_local_celery.py): Airflow 3 with the CeleryExecutor, a
# Celery worker on Redis, Airflow's metadata and the crmhub warehouse in two databases
# of a local PostgreSQL.
#
#   CRMHUB_CONFIG=crmhub.yml deploy/local-celery.sh start   # migrate, then start everything
#   deploy/local-celery.sh status                           # which processes run
#   deploy/local-celery.sh stop                             # stop what start started
#
# Settings (environment): AIRFLOW_HOME (var/airflow-local), AIRFLOW_DB_URL (metadata DB,
# created if missing), CELERY_BROKER_URL (redis://127.0.0.1:6379/0), AIRFLOW_API_PORT
# (8080), CRMHUB_CONFIG (required for start), CRMHUB_BIN (folder with airflow and crmhub).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${CRMHUB_BIN:-$ROOT/.venv/bin}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow-local}"
RUN_DIR="$AIRFLOW_HOME/run"
PROCESSES=(api-server scheduler dag-processor celery-worker)

export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW_DB_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/crmhub_airflow}"
# Airflow 3 also opens the metadata DB asynchronously: psycopg 3 serves both (no asyncpg needed)
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN/+psycopg:/+psycopg_async:}"
export AIRFLOW__CELERY__BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
export AIRFLOW__CELERY__RESULT_BACKEND="db+${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN}"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="${AIRFLOW_WORKER_CONCURRENCY:-2}"
# the worker serves its task logs on this port (another Airflow on the machine may hold 8793)
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="${AIRFLOW_WORKER_LOG_PORT:-8793}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW_DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW_PARALLELISM:-4}"
export AIRFLOW__API__PORT="${AIRFLOW_API_PORT:-8080}"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__WORKERS=1
# The API listens on 127.0.0.1 only; for this local topology every local client is admin
# (set LOCAL_CELERY_AUTH=1 to get Airflow's generated admin password instead).
if [[ -z "${LOCAL_CELERY_AUTH:-}" ]]; then export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True; fi
export AIRFLOW__API__BASE_URL="http://127.0.0.1:${AIRFLOW__API__PORT}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:${AIRFLOW__API__PORT}/execution/"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW_DAG_REFRESH:-10}"
export AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2
# task runners talk to the api-server's execution API: be patient with a busy machine
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="${AIRFLOW_EXECUTION_API_TIMEOUT:-60}"
export AIRFLOW__WORKERS__EXECUTION_API_RETRIES="${AIRFLOW_EXECUTION_API_RETRIES:-10}"

say() { echo "local-celery: $*" >&2; }

jwt_secret() {
    # one secret shared by every component (they sign and check each other's tokens)
    local file="$AIRFLOW_HOME/jwt_secret"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$AIRFLOW_HOME"
        (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$file")
    fi
    AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$file")"
    export AIRFLOW__API_AUTH__JWT_SECRET
}

running() { [[ -f "$RUN_DIR/$1.pid" ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

launch() {
    local name="$1"; shift
    if running "$name"; then say "$name already running"; return; fi
    setsid "$@" >"$RUN_DIR/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/$name.pid"
    say "$name started (pid $!, log $RUN_DIR/$name.log)"
}

start() {
    : "${CRMHUB_CONFIG:?set CRMHUB_CONFIG to the crmhub.yml the DAGs are built from}"
    export CRMHUB_CONFIG
    redis_ping || { say "Redis is not answering at $AIRFLOW__CELERY__BROKER_URL"; exit 1; }
    mkdir -p "$RUN_DIR"
    jwt_secret
    "$BIN/python" - <<'PY'
import os
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
url = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
with admin.connect() as conn:
    if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}).first():
        conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
admin.dispose()
PY
    "$BIN/airflow" db migrate >"$RUN_DIR/migrate.log" 2>&1 || { say "airflow db migrate failed: $RUN_DIR/migrate.log"; exit 1; }
    "$BIN/crmhub" init
    launch api-server "$BIN/airflow" api-server --port "$AIRFLOW__API__PORT"
    launch scheduler "$BIN/airflow" scheduler
    launch dag-processor "$BIN/airflow" dag-processor
    launch celery-worker "$BIN/airflow" celery worker --concurrency "$AIRFLOW__CELERY__WORKER_CONCURRENCY"
    for _ in $(seq 1 "${LOCAL_CELERY_START_TIMEOUT:-600}"); do
        if curl -fsS "http://127.0.0.1:${AIRFLOW__API__PORT}/api/v2/monitor/health" >/dev/null 2>&1; then
            say "ready: Airflow on http://127.0.0.1:${AIRFLOW__API__PORT}"
            return 0
        fi
        for name in "${PROCESSES[@]}"; do
            running "$name" || { say "$name exited: see $RUN_DIR/$name.log"; tail -n 20 "$RUN_DIR/$name.log" >&2; stop; exit 1; }
        done
        sleep 1
    done
    say "the api-server did not answer in time: see $RUN_DIR/api-server.log"
    exit 1
}

redis_ping() {
    "$BIN/python" -c 'import os, redis; redis.Redis.from_url(os.environ["AIRFLOW__CELERY__BROKER_URL"], socket_timeout=3).ping()' 2>/dev/null
}

stop() {
    for name in "${PROCESSES[@]}"; do
        if running "$name"; then
            local pid; pid="$(cat "$RUN_DIR/$name.pid")"
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -KILL -- "-$pid" 2>/dev/null || true
            say "$name stopped"
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
}

status() {
    local all=0
    for name in "${PROCESSES[@]}"; do
        if running "$name"; then echo "$name: running (pid $(cat "$RUN_DIR/$name.pid"))"; else echo "$name: stopped"; all=1; fi
    done
    return $all
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
