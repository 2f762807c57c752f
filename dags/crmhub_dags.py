"""crmhub's Airflow DAGs: one sync DAG per source in crmhub.yml, and the model DAG.

Wiring only: the DAGs are built from the config file ($CRMHUB_CONFIG or ./crmhub.yml)
by crmhub.dag_factory; every step is a plain function that `crmhub` runs as well.
(Airflow's safe mode only parses files that mention both "airflow" and "dag".)
"""

from crmhub.dag_factory import build_dags

globals().update(build_dags())
