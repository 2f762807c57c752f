"""Manual entry: leads a rep types in with `crmhub lead add` (a call, a walk-in, a referral).

A push source: nothing to pull; `crmhub.leads.add_lead` lands each lead through
``crm_model.sync.ingest``. Declaring a source of this type in crmhub.yml is optional
(the default source ``manual`` works without it) and sets its options:

    sources:
      manual:
        connector: manual
        config: {default_region: DE}     # phone numbers typed without +49
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from connectors.sdk import Connector, ConnectorConfig, Record, StreamState, stream

#: `crmhub lead add` writes here unless told otherwise; crmhub.yml need not declare it
DEFAULT_SOURCE = "manual"


class ManualConfig(ConnectorConfig):
    default_region: str | None = Field(None, description="Country for phone numbers without +code, e.g. DE.")


class ManualConnector(Connector):
    Config = ManualConfig
    config: ManualConfig
    push = True
    mapping_options = ("default_region",)

    @stream(primary_key="lead_id")  # the key of pushed leads; there is nothing to pull
    def leads(self, state: StreamState) -> Iterator[list[Record]]:
        yield from ()

    @stream(primary_key="touchpoint_id")  # calls, visits, meetings logged with `crmhub touchpoint add`
    def touchpoints(self, state: StreamState) -> Iterator[list[Record]]:
        yield from ()

    def check(self) -> str:
        return "push source: leads and touchpoints are entered with `crmhub lead add` / `crmhub touchpoint add`"
