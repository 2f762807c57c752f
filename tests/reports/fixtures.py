"""Hand-made warehouse rows for the report tests, with the figures they must produce.

Report period: March 2026 (``2026-03-01..2026-03-31``); previous period: the 31 days
before it (29 January - 28 February 2026). Every expected figure in the tests is worked
out by hand from these rows; the comments show the arithmetic.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy import Engine, insert

from crm_model.load import TABLES

PERIOD = "2026-03-01..2026-03-31"
XSS_NAME = "<script>alert(1)</script>"
FORMULA_NAME = '=HYPERLINK("http://evil.example/","click me")'


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def stat(ad: str, date: str, impressions: int, clicks: int, cost: str, conversions: str, group: str = "G1") -> dict:
    return {"platform": "google_ads", "campaign_id": "C1", "ad_group_id": group, "ad_id": ad, "date": day(date),
            "source": "ads",
            "impressions": impressions, "clicks": clicks, "cost": D(cost), "currency": "EUR",
            "conversions": D(conversions), "conversion_value": D(conversions) * 50}


ROWS: dict[str, list[dict]] = {
    "person": [
        {"person_id": 1, "display_name": "Ada Lovelace", "email": "ada@example.com", "country": "GB",
         "region": "England", "city": "London", "birth_date": day("1990-06-01"), "lifecycle_stage": "customer"},
        {"person_id": 2, "display_name": XSS_NAME, "email": "x@example.com", "country": "US", "city": "Boston",
         "lifecycle_stage": "customer"},
        {"person_id": 3, "display_name": FORMULA_NAME, "email": "f@example.com", "country": "US", "city": "Boston",
         "birth_date": day("2001-04-02"), "lifecycle_stage": "customer"},
        {"person_id": 4, "display_name": "Pat Prospect", "lifecycle_stage": "prospect"},
        {"person_id": 5, "display_name": "Lee Lead", "lifecycle_stage": "lead"},
    ],
    "campaign": [{"platform": "google_ads", "campaign_id": "C1", "name": "Spring search", "source": "ads"}],
    "ad": [{"platform": "google_ads", "ad_id": "A1", "campaign_id": "C1", "name": "Lamp ad"},
           {"platform": "google_ads", "ad_id": "A2", "campaign_id": "C1", "name": "Sensor ad"}],
    "ad_stat_daily": [
        # A1 serves in two ad groups on 03-05 (600 + 400 imp, 30 + 20 clicks): the report sums the ad
        stat("A1", "2026-03-05", 600, 30, "60.00", "3"),     # A1 in March: 2000 imp, 80 clicks,
        stat("A1", "2026-03-05", 400, 20, "40.00", "2", group="G2"),
        stat("A1", "2026-03-06", 1000, 30, "60.00", "3"),    #   160.00 cost, 8 conversions
        stat("A2", "2026-03-05", 500, 40, "80.00", "2"),     # A2 in March: CTR 0.08, conv. rate 0.05
        stat("A1", "2026-02-10", 1000, 20, "40.00", "1"),    # previous period: CTR 0.02
        stat("A1", "2026-01-01", 99999, 9999, "9999.00", "99"),  # before both periods: never counted
    ],
    "touchpoint": [
        {"source": "web", "external_id": "t1", "person_id": 1, "occurred_at": ts("2026-03-05 09:00"),
         "channel": "ad_click", "campaign_id": "C1", "ad_id": "A1"},
        {"source": "web", "external_id": "t2", "person_id": 2, "occurred_at": ts("2026-03-06 09:00"),
         "channel": "ad_click", "campaign_id": "C1", "ad_id": "A1"},
        {"source": "web", "external_id": "t3", "person_id": 3, "occurred_at": ts("2026-03-05 10:00"),
         "channel": "ad_click", "campaign_id": "C1", "ad_id": "A2"},
        {"source": "web", "external_id": "t4", "person_id": 4, "occurred_at": ts("2026-03-07 10:00"),
         "channel": "web_visit", "affiliate_site": "deals.example"},
        {"source": "web", "external_id": "t5", "person_id": 5, "occurred_at": ts("2026-02-07 10:00"),
         "channel": "web_visit", "affiliate_site": "deals.example"},
    ],
    "lead": [
        {"source": "forms", "external_id": "L1", "person_id": 1, "submitted_at": ts("2026-03-05 09:05"),
         "utm_source": "google"},
        {"source": "forms", "external_id": "L2", "person_id": 2, "submitted_at": ts("2026-03-06 09:05"),
         "utm_source": "google"},
        {"source": "forms", "external_id": "L3", "person_id": 3, "submitted_at": ts("2026-02-20 09:05"),
         "utm_source": "newsletter"},
        {"source": "forms", "external_id": "L4", "person_id": 4, "submitted_at": ts("2026-03-07 11:00"),
         "utm_source": "google"},
        {"source": "forms", "external_id": "L5", "person_id": 5, "submitted_at": ts("2026-03-08 11:00"),
         "utm_source": "google"},
    ],
    "product": [
        {"source": "shop", "external_id": "P1", "title": "Desk lamp", "sku": "LAMP", "price": D("50"),
         "currency": "EUR", "unit_cost": D("30")},
        {"source": "shop", "external_id": "P2", "title": "Mug", "sku": "MUG", "price": D("25"), "currency": "EUR"},
    ],
    "customer_order": [
        {"source": "shop", "external_id": "O1", "person_id": 1, "ordered_at": ts("2026-03-10 12:00"),
         "status": "paid", "currency": "EUR", "total": D("100"), "sales_rep": "Dana", "channel": "web"},
        {"source": "shop", "external_id": "O2", "person_id": 2, "ordered_at": ts("2026-03-12 12:00"),
         "status": "paid", "currency": "EUR", "total": D("50"), "sales_rep": "Dana", "channel": "web"},
        {"source": "shop", "external_id": "O3", "person_id": 3, "ordered_at": ts("2026-03-15 12:00"),
         "status": "cancelled", "currency": "EUR", "total": D("40"), "channel": "web"},
        {"source": "shop", "external_id": "O4", "person_id": 1, "ordered_at": ts("2026-02-15 12:00"),
         "status": "paid", "currency": "EUR", "total": D("30"), "sales_rep": "Dana", "channel": "pos"},
        {"source": "shop", "external_id": "O5", "person_id": 3, "ordered_at": ts("2026-03-20 12:00"),
         "status": "paid", "currency": "EUR", "total": D("25"), "refunded": D("5"), "channel": "pos"},
    ],
    "order_line": [
        {"source": "shop", "external_id": "OL1", "order_id": "O1", "product_id": "P1", "quantity": D("2"),
         "unit_price": D("40"), "total": D("80"), "currency": "EUR"},
        {"source": "shop", "external_id": "OL2", "order_id": "O1", "product_id": "P2", "quantity": D("1"),
         "unit_price": D("20"), "total": D("20"), "currency": "EUR", "cost": D("12")},  # cost recorded at the sale
        {"source": "shop", "external_id": "OL3", "order_id": "O2", "product_id": "P1", "quantity": D("1"),
         "unit_price": D("50"), "total": D("50"), "currency": "EUR"},
        {"source": "shop", "external_id": "OL4", "order_id": "O3", "product_id": "P1", "quantity": D("1"),
         "unit_price": D("40"), "total": D("40"), "currency": "EUR"},
        {"source": "shop", "external_id": "OL5", "order_id": "O5", "product_id": "P2", "quantity": D("1"),
         "unit_price": D("25"), "total": D("25"), "currency": "EUR"},
        {"source": "shop", "external_id": "OL6", "order_id": "O4", "product_id": "P1", "quantity": D("1"),
         "unit_price": D("30"), "total": D("30"), "currency": "EUR"},
    ],
    "service_case": [  # hours to close: S1 24, S2 12, S3 72, S6 432 (March); S5 24 (February)
        {"source": "desk", "external_id": "S1", "person_id": 1, "tracking_number": "TRK-1", "kind": "complaint",
         "product_id": "P1", "status": "closed", "opened_at": ts("2026-03-01 10:00"), "closed_at": ts("2026-03-02 10:00")},
        {"source": "desk", "external_id": "S2", "tracking_number": "TRK-2", "kind": "question", "product_id": "P2",
         "status": "closed", "opened_at": ts("2026-03-03 00:00"), "closed_at": ts("2026-03-03 12:00")},
        {"source": "desk", "external_id": "S3", "tracking_number": "TRK-3", "kind": "complaint", "product_id": "P1",
         "status": "closed", "opened_at": ts("2026-03-05 00:00"), "closed_at": ts("2026-03-08 00:00")},
        {"source": "desk", "external_id": "S4", "tracking_number": "TRK-4", "kind": "return", "product_id": "P1",
         "status": "open", "subject": "Broken shade", "opened_at": ts("2026-03-20 00:00")},
        {"source": "desk", "external_id": "S5", "tracking_number": "TRK-5", "kind": "complaint", "product_id": "P2",
         "status": "closed", "opened_at": ts("2026-02-10 00:00"), "closed_at": ts("2026-02-11 00:00")},
        {"source": "desk", "external_id": "S6", "tracking_number": "TRK-6", "kind": "question",
         "status": "closed", "opened_at": ts("2026-02-20 00:00"), "closed_at": ts("2026-03-10 00:00")},
    ],
    "email_message": [  # first answer to S1 (person 1): 6 hours after it was opened
        {"source": "mail", "message_id": "<m1@x>", "direction": "outbound", "person_id": 1,
         "sent_at": ts("2026-03-01 16:00"), "subject": "Re: damaged"},
        {"source": "mail", "message_id": "<m2@x>", "direction": "outbound", "person_id": 1,
         "sent_at": ts("2026-03-01 18:00"), "subject": "Re: damaged (2)"},
    ],
    "service_contract": [
        {"source": "desk", "external_id": "K1", "person_id": 1, "product_id": "P1", "ends_on": day("2026-04-15"),
         "level": "premium", "value": D("480"), "currency": "EUR"},
        {"source": "desk", "external_id": "K2", "person_id": 2, "product_id": "P1", "ends_on": day("2026-05-20"),
         "level": "basic", "value": D("120"), "currency": "EUR"},
        {"source": "desk", "external_id": "K3", "person_id": 3, "product_id": "P2", "ends_on": day("2026-06-25"),
         "level": "basic", "value": D("60"), "currency": "EUR"},
        {"source": "desk", "external_id": "K4", "person_id": 3, "product_id": "P2", "ends_on": day("2026-08-01"),
         "level": "basic", "value": D("60"), "currency": "EUR"},
        {"source": "desk", "external_id": "K5", "person_id": 3, "product_id": "P2", "ends_on": day("2026-03-15"),
         "level": "basic", "value": D("60"), "currency": "EUR"},
    ],
    "feedback": [
        {"source": "shop", "external_id": "F1", "product_id": "P1", "rating": D("4"), "received_at": ts("2026-03-11 00:00")},
        {"source": "shop", "external_id": "F2", "product_id": "P1", "rating": D("5"), "received_at": ts("2026-03-12 00:00")},
        {"source": "shop", "external_id": "F3", "product_id": "P1", "rating": D("3"), "received_at": ts("2026-02-12 00:00")},
    ],
}


def load(engine: Engine, tables: tuple[str, ...] | None = None) -> None:
    with engine.begin() as conn:
        for table, rows in ROWS.items():
            if tables is None or table in tables:
                for row in rows:  # one by one: the rows do not all name the same columns
                    conn.execute(insert(TABLES[table]).values(**row))
