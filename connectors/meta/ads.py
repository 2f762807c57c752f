"""Meta ads: campaigns, ad sets, ads and daily ad-level insights through the Marketing API.

    sources:
      meta:
        connector: meta_ads
        schedule: "@daily"
        start_date: 2026-01-01
        config:
          access_token: ${META_ACCESS_TOKEN}
          ad_accounts: ["1234567890"]          # with or without act_
          conversion_action_types: [lead, offsite_conversion.fb_pixel_purchase]
          lookback_days: 28                    # re-read every sync: Meta restates attribution

Streams (keys in brackets):
- ``campaigns`` [id], ``adsets`` [id], ``ads`` [id]: ``/act_{id}/campaigns``, ``/act_{id}/adsets``
  and ``/act_{id}/ads`` with names and status, read whole every sync. The ad set is Meta's
  ad group level: ``ad_group`` rows, and the ``ad_group_id`` of ads and their daily stats.
- ``insights`` [ad_id, date_start]: ``/act_{id}/insights`` with ``level=ad``,
  ``time_increment=1``, for the days from (last day read - ``lookback_days``) to today, pages
  followed through ``paging.next``. ``actions`` / ``action_values`` of the configured action
  types become conversions and conversion value (in the mapping, so changing the list and
  running `crmhub model` recounts without the API). Windows longer than ``async_after_days``
  run as an async report (``POST /act_{id}/insights``, poll ``async_status``, read
  ``/{report_run_id}/insights``), because the synchronous call times out on large ranges.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import Field, field_validator

from connectors.meta.graph import Graph, MetaConfig
from connectors.sdk import Connector, Record, SourceError, StreamState, stream
from connectors.sdk.streams import lookback_window

CAMPAIGN_FIELDS = "id,name,status,effective_status,objective,created_time,updated_time"
ADSET_FIELDS = "id,name,status,effective_status,campaign_id,created_time,updated_time"
AD_FIELDS = "id,name,status,effective_status,campaign_id,adset_id,created_time,updated_time"
INSIGHT_FIELDS = ("account_id,account_currency,campaign_id,campaign_name,adset_id,ad_id,ad_name,"
                  "impressions,clicks,spend,actions,action_values,date_start,date_stop")
DONE, FAILED = "Job Completed", ("Job Failed", "Job Skipped")


class MetaAdsConfig(MetaConfig):
    ad_accounts: list[str] = Field(min_length=1, description="Ad account ids (act_ prefix optional).")
    conversion_action_types: list[str] = Field(
        default_factory=lambda: ["lead", "offsite_conversion.fb_pixel_purchase"],
        description="actions[].action_type values counted as conversions.")
    lookback_days: int = Field(28, ge=0, le=365, description="Days re-read on every sync.")
    async_after_days: int = Field(31, ge=1, description="Longer windows run as async report jobs.")
    poll_interval: float = Field(10.0, gt=0, description="Seconds between async job polls.")
    max_polls: int = Field(360, ge=1, description="Polls before an async job counts as stuck.")

    @field_validator("ad_accounts")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        ids = [v.removeprefix("act_").strip() for v in value]
        for account in ids:
            if not account.isdigit():
                raise ValueError(f"{account!r} is not an ad account id (digits, optionally act_<digits>)")
        if len(set(ids)) != len(ids):
            raise ValueError("an ad account is listed twice")
        return ids


class MetaAdsConnector(Connector):
    Config = MetaAdsConfig
    config: MetaAdsConfig
    mapping_options = ("conversion_action_types",)

    def __init__(self, config: MetaAdsConfig, *, sleep: Callable[[float], None] = time.sleep, **kw: Any):
        super().__init__(config, **kw)
        self.sleep = sleep
        self.graph = Graph(config, "meta_ads", sleep=sleep)

    def today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()

    @stream(primary_key="id")
    def campaigns(self, state: StreamState) -> Iterator[list[Record]]:
        return self._listing("campaigns", CAMPAIGN_FIELDS, "campaigns")

    @stream(primary_key="id")
    def adsets(self, state: StreamState) -> Iterator[list[Record]]:
        return self._listing("adsets", ADSET_FIELDS, "ad sets")

    @stream(primary_key="id")
    def ads(self, state: StreamState) -> Iterator[list[Record]]:
        return self._listing("ads", AD_FIELDS, "ads")

    def _listing(self, edge: str, fields: str, what: str) -> Iterator[list[Record]]:
        """Every page of one edge (campaigns, adsets, ads) of each configured ad account."""
        for account in self.config.ad_accounts:
            yield from self.graph.pages(f"act_{account}/{edge}", {"fields": fields, "limit": self.config.page_size},
                                        f"{what} of act_{account}")

    @stream(primary_key=("ad_id", "date_start"))
    def insights(self, state: StreamState) -> Iterator[list[Record]]:
        first, last = self.window(state)
        params = {"level": "ad", "time_increment": 1, "fields": INSIGHT_FIELDS, "limit": self.config.page_size,
                  "time_range": json.dumps({"since": first.isoformat(), "until": last.isoformat()},
                                           separators=(",", ":"))}
        for account in self.config.ad_accounts:
            what = f"insights of act_{account} {first}..{last}"
            if (last - first).days + 1 > self.config.async_after_days:
                run_id = self.run_report(account, params, what)
                yield from self.graph.pages(f"{run_id}/insights", {"limit": self.config.page_size}, what)
            else:
                yield from self.graph.pages(f"act_{account}/insights", params, what)
        return {"cursor": last.isoformat()}

    def window(self, state: StreamState) -> tuple[dt.date, dt.date]:
        return lookback_window(state, self.today(), self.config.lookback_days)

    def run_report(self, account: str, params: dict[str, Any], what: str) -> str:
        """Start an async insights job and wait until it completes; its report_run_id."""
        started = self.graph.post(f"act_{account}/insights", {k: str(v) for k, v in params.items()})
        run_id = started.get("report_run_id") if isinstance(started, dict) else None
        if not run_id:
            raise SourceError(f"meta_ads: {what}: the async report answer has no report_run_id")
        for _ in range(self.config.max_polls):
            job = self.graph.get(str(run_id), {"fields": "id,async_status,async_percent_completion"})
            status = job.get("async_status") if isinstance(job, dict) else None
            if status == DONE:
                return str(run_id)
            if status in FAILED:
                raise SourceError(f"meta_ads: {what}: async report {run_id} ended with {status!r}; "
                                  "try a shorter async_after_days window")
            self.sleep(self.config.poll_interval)
        raise SourceError(f"meta_ads: {what}: async report {run_id} not done after {self.config.max_polls} polls")

    def check(self) -> str:
        account = self.config.ad_accounts[0]
        page = next(self.graph.pages(f"act_{account}/campaigns", {"fields": "id", "limit": 25}, "campaigns"), [])
        return f"ok: act_{account} answers ({len(page)} campaign(s) on the first page)"

    def close(self) -> None:
        self.graph.close()
