"""crmhub's form webhooks inside Airflow 3's API server, at /crmhub/forms/{source}/{form}.

Put this folder on Airflow's plugins path (``AIRFLOW__CORE__PLUGINS_FOLDER``, or copy
the file into ``$AIRFLOW_HOME/plugins``) on the API server, with crmhub installed and
``CRMHUB_CONFIG`` pointing at crmhub.yml. The app reads the config on its first
request, so importing this file does no I/O. Airflow's login does not guard plugin
apps; each form's HMAC signature does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from crmhub.server import create_app

URL_PREFIX = "/crmhub"


class CrmhubWebhooksPlugin(AirflowPlugin):
    name = "crmhub_webhooks"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "crmhub webhooks"},
    ]
