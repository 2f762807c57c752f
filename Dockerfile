# crmhub on the official Apache Airflow 3 image, installed as a package (a wheel), the
# way Airflow deployments install their dependencies. No secret is baked in: config is
# mounted (CRMHUB_CONFIG), secrets come from the environment or Airflow connections.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY crmhub crmhub
COPY connectors connectors
COPY crm_model crm_model
COPY sql sql
RUN pip wheel --no-deps --wheel-dir /dist .

FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
COPY --from=wheel /dist/*.whl /tmp/
# Pinning apache-airflow keeps pip from moving the image's own Airflow.
RUN pip install --no-cache-dir "apache-airflow[celery]==${AIRFLOW_VERSION}" /tmp/crmhub-*.whl \
    && rm /tmp/crmhub-*.whl
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
ENV CRMHUB_CONFIG=/opt/crmhub/crmhub.yml
