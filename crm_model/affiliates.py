"""Affiliate rules from crmhub.yml -> the ``affiliate_rule`` table that sql/model/16_affiliates.sql reads.

    affiliates:
      url_params: [aff_id]                 # parameters an affiliate link puts on the landing page
      sites:
        bestdeals.example:
          param_values: ["4711"]           # ?aff_id=4711
          utm_sources: [bestdeals]         # utm_source=bestdeals
          referrer_domains: [bestdeals.example]   # and its subdomains

`crmhub model` rewrites the table from the config, then the SQL names the affiliate site
of every lead, order, touchpoint and web-traffic row (precedence in docs/attribution.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from crm_model.derive import mark_all_pending
from crm_model.load import Upserter
from crm_model.schema import AffiliateRule


def rules(settings: Any) -> list[dict[str, str]]:
    """The rule rows for crmhub.yml's ``affiliates`` (an AffiliateSettings); values lower-cased."""
    out: dict[tuple[str, str], str] = {}
    for site, how in settings.sites.items():
        for param in settings.url_params:
            for value in how.param_values:
                out[("url_param", f"{param}={value}".lower())] = site
        for value in how.utm_sources:
            out[("utm_source", value.strip().lower())] = site
        for value in how.referrer_domains:
            out[("referrer_domain", value.strip().lower().removeprefix("www."))] = site
    return [{"kind": k, "value": v, "affiliate_site": s} for (k, v), s in sorted(out.items())]


def store_rules(conn: Connection, settings: Any) -> int:
    """Replace the stored rules with the configured ones; how many there are. When they
    differ from the stored ones, every lead, order, touchpoint and web-traffic row is
    marked for the next model run to name its affiliate site again."""
    wanted = rules(settings)
    stored = set(conn.execute(select(AffiliateRule.kind, AffiliateRule.value, AffiliateRule.affiliate_site)).all())
    if stored != {(r["kind"], r["value"], r["affiliate_site"]) for r in wanted}:  # (not by the database's collation)
        conn.execute(delete(AffiliateRule))
        Upserter(conn).upsert("affiliate_rule", wanted)
        mark_all_pending(conn, ("lead", "customer_order", "touchpoint", "web_traffic_daily"))
    return len(wanted)
