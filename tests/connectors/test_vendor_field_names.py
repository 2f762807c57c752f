"""Field names the connectors ask for, checked against the vendors' own SDKs (test-only dependencies).

google-ads ships the API's protos: every GAQL field the connector selects must exist there, and
every searchStream fixture must parse strictly as a SearchGoogleAdsStreamResponse. The
facebook_business SDK lists the Marketing API's fields; mailchimp-marketing names the query
parameters each endpoint takes.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re

import pytest

from connectors import google_ads, mailchimp
from connectors.meta import ads as meta_ads
from connectors.meta import leads as meta_leads
from tests.conftest import FIXTURES

VERSION = google_ads.API_VERSION
GADS = f"google.ads.googleads.{VERSION}"
RESOURCES = {  # GAQL resource -> (module, message) in the protos
    "customer": ("resources.types.customer", "Customer"),
    "customer_client": ("resources.types.customer_client", "CustomerClient"),
    "campaign": ("resources.types.campaign", "Campaign"),
    "ad_group": ("resources.types.ad_group", "AdGroup"),
    "ad_group_ad": ("resources.types.ad_group_ad", "AdGroupAd"),
    "click_view": ("resources.types.click_view", "ClickView"),
    "metrics": ("common.types.metrics", "Metrics"),
    "segments": ("common.types.segments", "Segments"),
}


def message(resource: str):
    module, name = RESOURCES[resource]
    return getattr(importlib.import_module(f"{GADS}.{module}"), name)


def has_field(cls, path: list[str]) -> bool:
    """proto-plus messages: follow a dotted field path (ad_group_ad.ad.id)."""
    for n, part in enumerate(path):
        fields = cls.meta.fields
        field = fields.get(part) or fields.get(f"{part}_")  # proto-plus renames 'type' to 'type_'
        if field is None:
            return False
        if n < len(path) - 1:
            cls = field.message
    return True


@pytest.mark.parametrize("query", [google_ads.CAMPAIGNS, google_ads.ADS, google_ads.AD_STATS, google_ads.CLICKS,
                                   google_ads.CLIENTS])
def test_every_gaql_field_exists_in_the_api_protos(query):
    selected = re.search(r"SELECT (.*?) FROM", query).group(1)
    for name in [f.strip() for f in selected.split(",")]:
        resource, *path = name.split(".")
        assert has_field(message(resource), path), f"{name} is not a field of {VERSION}"


@pytest.mark.parametrize("fixture", sorted(p.name for p in (FIXTURES / "google_ads").glob("*.json")
                                           if not p.name.startswith("quota")))
def test_search_stream_fixtures_parse_as_the_api_responses(fixture):
    from importlib import import_module

    response = import_module(f"{GADS}.services.types.google_ads_service").SearchGoogleAdsStreamResponse
    for batch in json.loads((FIXTURES / "google_ads" / fixture).read_text()):
        response.from_json(json.dumps(batch))  # raises on an unknown field or a wrong type


def test_quota_error_fixtures_parse_as_google_ads_failures():
    failure_cls = importlib.import_module(f"{GADS}.errors.types.errors").GoogleAdsFailure
    quota_enum = importlib.import_module(f"{GADS}.errors.types.quota_error").QuotaErrorEnum.QuotaError
    codes = set()
    for name in ("quota_daily.json", "quota_temporary.json"):
        detail = json.loads((FIXTURES / "google_ads" / name).read_text())["error"]["details"][0]
        failure = failure_cls.from_json(json.dumps({k: v for k, v in detail.items() if k != "@type"}))
        codes.add(failure.errors[0].error_code.quota_error)
        assert failure.errors[0].details.quota_error_details.retry_delay
    assert codes == {quota_enum.RESOURCE_EXHAUSTED, quota_enum.RESOURCE_TEMPORARILY_EXHAUSTED}


def test_meta_fields_are_marketing_api_fields():
    from facebook_business.adobjects.ad import Ad
    from facebook_business.adobjects.adset import AdSet
    from facebook_business.adobjects.adsinsights import AdsInsights
    from facebook_business.adobjects.campaign import Campaign
    from facebook_business.adobjects.lead import Lead

    for fields, cls in ((meta_ads.INSIGHT_FIELDS, AdsInsights), (meta_ads.CAMPAIGN_FIELDS, Campaign),
                        (meta_ads.AD_FIELDS, Ad), (meta_ads.ADSET_FIELDS, AdSet), (meta_leads.LEAD_FIELDS, Lead)):
        for name in fields.split(","):
            assert hasattr(cls.Field, name), f"{name} is not a {cls.__name__} field"
    from facebook_business.adobjects.adreportrun import AdReportRun

    for name in ("async_status", "async_percent_completion", "id"):  # what run_report polls
        assert hasattr(AdReportRun.Field, name)


def test_mailchimp_endpoints_take_the_parameters_used():
    from mailchimp_marketing.api.campaigns_api import CampaignsApi
    from mailchimp_marketing.api.reports_api import ReportsApi

    activity = inspect.getsource(ReportsApi.get_email_activity_for_campaign_with_http_info)
    for param in ("since", "count", "offset"):
        assert f"'{param}'" in activity
    listing = inspect.getsource(CampaignsApi.list_with_http_info)
    for param in ("status", "since_send_time", "sort_field", "sort_dir", "count", "offset", "fields"):
        assert f"'{param}'" in listing
    for name in mailchimp.CAMPAIGN_FIELDS.split(","):
        assert name.startswith("campaigns.") or name == "total_items"
