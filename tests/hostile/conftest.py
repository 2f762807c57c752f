"""Fixtures the hostile suite borrows: a real `crmhub serve`, a real Airflow home."""

from tests.airflow.test_dags import airflow_env  # noqa: F401
from tests.connectors.test_webhook import served  # noqa: F401
