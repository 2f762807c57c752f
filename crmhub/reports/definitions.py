"""The registered reports: ``marketing``, ``sales`` and ``service``, section by section.

A section names its query (sql/reports/<sql>.sql), the tables whose emptiness means "not
synced yet" (with the one-line reason the report shows instead), and its chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SectionKind = Literal["kpi", "table", "forecast"]
ChartKind = Literal["barh", "bar", "line"]

NO_ADS = "No ad platform data has been synced yet (ad_stat_daily is empty): add an ad source."
NO_LEADS = "No leads have been synced yet (lead is empty)."
NO_ORDERS = "No orders have been synced yet (customer_order is empty): add a shop or payment source."
NO_ORDER_LINES = "No order lines have been synced yet (order_line is empty)."
NO_TOUCHPOINTS = "No touchpoints have been synced yet (touchpoint is empty)."
NO_CASES = "No service cases have been synced yet (service_case is empty)."
NO_MAIL = "No mailbox has been synced yet (email_message is empty), so answer times are unknown."
NO_CONTRACTS = "No service contracts have been synced yet (service_contract is empty)."
NO_FEEDBACK = "No feedback has been synced yet (feedback is empty)."


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    x: str  # column of labels (barh/bar) or days (line)
    y: tuple[str, ...]  # value columns (one series each)
    title: str
    unit: str  # value axis label, with its unit
    xlabel: str = ""
    limit: int = 10  # bars shown


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    sql: str
    kind: SectionKind = "table"
    needs: tuple[tuple[str, str], ...] = ()
    chart: Chart | None = None
    note: str = ""


@dataclass(frozen=True)
class ReportDefinition:
    name: str
    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    # sql/reports files run before the sections (same connection): temporary tables that
    # several sections read, so the period's rows are read once
    prepare: tuple[str, ...] = ()


MARKETING = ReportDefinition("marketing", "Marketing report", (
    Section("summary", "At a glance", "marketing_summary", "kpi",
            note="Cost per lead and per customer: ad cost over warehouse-counted leads and new customers."),
    Section("campaigns", "Campaigns by conversion rate", "marketing_campaigns", needs=(("ad_stat_daily", NO_ADS),),
            chart=Chart("barh", "campaign", ("cost",), "Ad cost by campaign", "cost (account currency)"),
            note="CTR = clicks / impressions; conversion rate = platform conversions / clicks. Leads and "
                 "customers are counted in the warehouse: people who clicked in the period and left a lead "
                 "or bought in it."),
    Section("ads", "Ads by click-through rate", "marketing_ads", needs=(("ad_stat_daily", NO_ADS),),
            chart=Chart("barh", "ad", ("ctr",), "Click-through rate of the best ads", "CTR (%)")),
    Section("affiliates", "Affiliate sites", "marketing_affiliates", needs=(("touchpoint", NO_TOUCHPOINTS),),
            note="Prospect clicks are touchpoints with an affiliate site; leads and customers are the "
                 "people among them who left a lead or bought."),
    Section("funnel", "Lead-source funnel", "marketing_funnel", needs=(("lead", NO_LEADS),),
            chart=Chart("bar", "lead_source", ("leads", "prospects", "customers"),
                        "Leads, prospects and customers by lead source", "people", "lead source")),
    Section("places", "Customers by place", "marketing_places", needs=(("customer_order", NO_ORDERS),)),
    Section("ages", "Customers by age band", "marketing_ages", needs=(("customer_order", NO_ORDERS),),
            note="Age at the end of the period, where a birth date is known."),
    Section("products", "Products sold, by price point", "marketing_products",
            needs=(("order_line", NO_ORDER_LINES),),
            chart=Chart("barh", "product", ("revenue",), "Revenue by product and price", "revenue (order currency)")),
), prepare=("_marketing_ad_period",))

SALES = ReportDefinition("sales", "Sales report", (
    Section("summary", "At a glance", "sales_summary", "kpi", needs=(("customer_order", NO_ORDERS),),
            note="Revenue is net of refunds. Gross margin covers lines whose product has a unit cost. "
                 "Marketing cost per new customer: ad cost over customers whose first order fell in the period."),
    Section("daily", "Revenue per day", "sales_daily", needs=(("customer_order", NO_ORDERS),),
            chart=Chart("line", "day", ("revenue",), "Revenue per day", "revenue (order currency)", "day (UTC)")),
    Section("forecast", "Revenue forecast", "sales_history", "forecast", needs=(("customer_order", NO_ORDERS),),
            chart=Chart("line", "period", ("revenue",), "Revenue per period and forecast",
                        "revenue (order currency)", "period starting")),
    Section("top_customers", "Top customers", "sales_top_customers", needs=(("customer_order", NO_ORDERS),)),
    Section("by_rep", "Sales by rep", "sales_by_rep", needs=(("customer_order", NO_ORDERS),)),
    Section("by_product", "Sales by product", "sales_by_product", needs=(("order_line", NO_ORDER_LINES),),
            chart=Chart("barh", "product", ("revenue",), "Revenue by product", "revenue (order currency)")),
    Section("by_channel", "Sales by channel", "sales_by_channel", needs=(("customer_order", NO_ORDERS),)),
    Section("rfm", "RFM segments", "sales_rfm", needs=(("customer_order", NO_ORDERS),),
            chart=Chart("bar", "_label", ("customers",), "Customers per RFM segment", "customers", "segment"),
            note="Recency, frequency and monetary value over the last 16 periods, each ranked into thirds "
                 "among the buyers in the same currency."),
))

SERVICE = ReportDefinition("service", "Service report", (
    Section("summary", "At a glance", "service_summary", "kpi", needs=(("service_case", NO_CASES),),
            note="Open backlog: cases open at the end of the period (previous: at its start)."),
    Section("complaints", "Cases by product and kind", "service_complaints", needs=(("service_case", NO_CASES),),
            chart=Chart("barh", "product", ("cases",), "Cases opened by product", "cases")),
    Section("close_time", "Time to close", "service_close_time", "kpi", needs=(("service_case", NO_CASES),)),
    Section("first_answer", "Time to first answer", "service_first_answer", "kpi",
            needs=(("service_case", NO_CASES), ("email_message", NO_MAIL)),
            note="From a case's opening to the first email sent to that customer."),
    Section("open_cases", "Open cases", "service_open_cases", needs=(("service_case", NO_CASES),)),
    Section("contracts", "Service contracts ending within 90 days", "service_contracts",
            needs=(("service_contract", NO_CONTRACTS),)),
    Section("feedback", "Feedback ratings by product", "service_feedback", needs=(("feedback", NO_FEEDBACK),),
            chart=Chart("barh", "product", ("average_rating",), "Average rating by product", "rating (1-5)")),
))

REPORTS: dict[str, ReportDefinition] = {r.name: r for r in (MARKETING, SALES, SERVICE)}
