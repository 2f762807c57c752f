"""Benchmark: the marketing report over 10,000,000 ad_stat_daily rows on PostgreSQL.

    python bench/reports.py                     # 10M ad stats, 1M leads, 200k orders
    python bench/reports.py --ads 1000 --days 500 --leads 100000 --orders 20000   # a quick run

The data is generated inside PostgreSQL with generate_series (1,000 days x 10,000 ads, day
by day as daily syncs append it, so a day's rows sit together on disk;
1M leads over 500k persons, 200k orders with a line each, 500k ad-click touchpoints), so
loading costs no Python time. Then ``crmhub report marketing --period 30d --out DIR`` runs
in-process (queries, charts, HTML, CSVs) and its wall time is reported, cold and warm.

What makes it fast (docs/performance.md, Reports):
- ``ix_ad_stat_daily_date`` (migration 0023) turns the two 30-day windows into an index range
  scan of 600k rows instead of a scan of 10M; ``ix_lead_submitted_at`` does the same for leads.
- ``st_ad_stat_daily_ads`` (migration 0025): PostgreSQL ndistinct statistics on (platform,
  campaign_id, ad_id). Without them the planner multiplies the columns' distinct counts,
  expects ~300,000 ads and sorts the period's rows on disk instead of hashing 10,000 ads.
- The report reads the period's ad stats once (sql/reports/_marketing_ad_period.sql, a
  temporary per-ad table) for its summary, campaigns and ads sections, not three times.
- The funnel finds the buyers among the period's leads in one pass, not a probe per lead.
No pre-aggregated mart is needed, so a sync refreshes nothing: its cost is keeping the date
index (measured below: one day for every ad upserted with and without it) and autovacuum's
ANALYZE keeping the statistics current (timed below).

PostgreSQL: CRMHUB_BENCH_POSTGRES_URL (default: local server, database
crmhub_bench_reports, dropped and re-created).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_model import db  # noqa: E402

PG_URL = os.environ.get("CRMHUB_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/crmhub_bench_reports")
FIRST_DAY = dt.date(2024, 1, 1)


def fresh_database(url: str) -> None:
    parsed = make_url(url)
    admin = db.connect(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {parsed.database}")
    admin.dispose()


def timed(conn, label: str, sql: str, **params) -> float:
    t0 = time.perf_counter()
    conn.execute(text(sql), params)
    seconds = time.perf_counter() - t0
    print(f"  {label:58} {seconds:7.1f} s", flush=True)
    return seconds


def generate(engine, ads: int, days: int, leads: int, orders: int) -> None:
    persons = max(leads // 2, 1)
    campaigns = max(ads // 100, 1)
    first = FIRST_DAY.isoformat()
    with engine.begin() as conn:
        # rows go in without the secondary index; it is built afterwards (and timed)
        conn.exec_driver_sql("DROP INDEX ix_ad_stat_daily_date")
        timed(conn, f"campaign + ad: {campaigns:,} campaigns, {ads:,} ads", f"""
            INSERT INTO campaign (platform, campaign_id, name, status, channel)
            SELECT 'google_ads', 'c' || c, 'Campaign ' || c, 'ENABLED', 'search'
            FROM generate_series(0, {campaigns - 1}) c;
            INSERT INTO ad (platform, ad_id, campaign_id, name, status)
            SELECT 'google_ads', 'a' || a, 'c' || (a % {campaigns}), 'Ad ' || a, 'ENABLED'
            FROM generate_series(0, {ads - 1}) a""")
        timed(conn, f"ad_stat_daily: {ads * days:,} rows", f"""
            INSERT INTO ad_stat_daily (platform, campaign_id, ad_id, date, source, impressions, clicks, cost,
                                       currency, conversions, conversion_value)
            SELECT 'google_ads', 'c' || (a % {campaigns}), 'a' || a, DATE '{first}' + d, 'ads',
                   100 + (a * 7 + d * 13) % 900, (a * 3 + d) % 50, ((a * 3 + d) % 50) * 0.35, 'EUR',
                   (a + d) % 5, ((a + d) % 5) * 40
            FROM generate_series(0, {days - 1}) d CROSS JOIN generate_series(0, {ads - 1}) a""")
        timed(conn, f"person: {persons:,} rows", f"""
            INSERT INTO person (person_id, display_name, email, country, city, birth_date, lifecycle_stage)
            SELECT p, 'Person ' || p, 'p' || p || '@example.com', (ARRAY['GB','DE','US','FR'])[1 + p % 4],
                   'City ' || (p % 300), DATE '1950-01-01' + (p % 18000),
                   (ARRAY['lead','prospect','customer'])[1 + p % 3]
            FROM generate_series(1, {persons}) p""")
        timed(conn, f"lead: {leads:,} rows", f"""
            INSERT INTO lead (source, external_id, person_id, submitted_at, utm_source, utm_campaign)
            SELECT 'forms', 'l' || l, 1 + l % {persons},
                   TIMESTAMPTZ '{first} 00:00:00+00' + (l % {days}) * INTERVAL '1 day' + (l % 86400) * INTERVAL '1 second',
                   (ARRAY['google','facebook','newsletter','linkedin','affiliate'])[1 + l % 5], 'c' || (l % {campaigns})
            FROM generate_series(0, {leads - 1}) l""")
        timed(conn, f"customer_order + order_line: {orders:,} each", f"""
            INSERT INTO product (source, external_id, title, sku, price, currency, unit_cost)
            SELECT 'shop', 'p' || p, 'Product ' || p, 'SKU' || p, 10 + p, 'EUR', 5 + p / 2.0
            FROM generate_series(0, 199) p;
            INSERT INTO customer_order (source, external_id, person_id, ordered_at, status, currency, total,
                                        sales_rep, channel)
            SELECT 'shop', 'o' || o, 1 + (o * 7) % {persons},
                   TIMESTAMPTZ '{first} 00:00:00+00' + (o % {days}) * INTERVAL '1 day' + (o % 3600) * INTERVAL '1 second',
                   'paid', 'EUR', 10 + o % 200, 'Rep ' || (o % 12), (ARRAY['web','pos','phone'])[1 + o % 3]
            FROM generate_series(0, {orders - 1}) o;
            INSERT INTO order_line (source, external_id, order_id, product_id, quantity, unit_price, total, currency)
            SELECT 'shop', 'li' || o, 'o' || o, 'p' || (o % 200), 1, 10 + o % 200, 10 + o % 200, 'EUR'
            FROM generate_series(0, {orders - 1}) o""")
        timed(conn, f"touchpoint: {leads // 2:,} ad clicks", f"""
            INSERT INTO touchpoint (source, external_id, person_id, occurred_at, channel, campaign_id, ad_id,
                                    affiliate_site)
            SELECT 'web', 't' || t, 1 + t % {persons},
                   TIMESTAMPTZ '{first} 00:00:00+00' + (t % {days}) * INTERVAL '1 day',
                   'ad_click', 'c' || ((t % {ads}) % {campaigns}), 'a' || (t % {ads}),
                   CASE WHEN t % 10 = 0 THEN 'partner' || (t % 7) || '.example' END
            FROM generate_series(0, {leads // 2 - 1}) t""")
        timed(conn, "CREATE INDEX ix_ad_stat_daily_date (full build)",
              "CREATE INDEX ix_ad_stat_daily_date ON ad_stat_daily (date)")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        timed(conn, "VACUUM ANALYZE", "VACUUM ANALYZE")


def sync_cost(engine, ads: int, day: dt.date) -> None:
    """One day of stats for every ad, upserted as a sync would: with and without the date index."""
    upsert = f"""
        INSERT INTO ad_stat_daily (platform, campaign_id, ad_id, date, impressions, clicks, cost, currency)
        SELECT 'google_ads', 'c' || (a % {max(ads // 100, 1)}), 'a' || a, DATE '{day}', 500, 20, 7.0, 'EUR'
        FROM generate_series(0, {ads - 1}) a
        ON CONFLICT (platform, campaign_id, ad_group_id, ad_id, date) DO UPDATE SET clicks = excluded.clicks"""
    print(f"refresh cost per sync ({ads:,} rows: one day for every ad):")
    for label, drop in (("upsert with ix_ad_stat_daily_date", False), ("upsert without it", True)):
        with engine.begin() as conn:
            if drop:
                conn.exec_driver_sql("DROP INDEX ix_ad_stat_daily_date")
            timed(conn, label, upsert)
            conn.rollback()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        timed(conn, "ANALYZE ad_stat_daily (statistics incl. st_ad_stat_daily_ads)", "ANALYZE ad_stat_daily")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ads", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=1_000)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--orders", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="Reuse the database of the last run (no generation).")
    args = ap.parse_args()

    from crmhub import config as config_mod
    from crmhub.reports import run

    if not args.keep:
        fresh_database(PG_URL)
    engine = db.connect(PG_URL)
    db.migrate(engine)  # with --keep: re-creates the views from sql/views
    if not args.keep:
        print(f"generating {args.ads * args.days:,} ad_stat_daily rows, {args.leads:,} leads, "
              f"{args.orders:,} orders in PostgreSQL:")
        generate(engine, args.ads, args.days, args.leads, args.orders)
    today = FIRST_DAY + dt.timedelta(days=args.days)  # the last 30 days of the data, and the 30 before
    folder = Path(tempfile.mkdtemp(prefix="crmhub-bench-reports-"))
    cfg_path = folder / "crmhub.yml"
    cfg_path.write_text(f"warehouse: {{url: '{PG_URL}'}}\n")
    cfg = config_mod.load(cfg_path)
    times = []
    print(f"crmhub report marketing --period 30d --out {folder}/out (as of {today}):")
    for i in range(args.runs):
        t0 = time.perf_counter()
        result = run(cfg, "marketing", engine, period="30d", out=folder / "out", today=today)
        times.append(time.perf_counter() - t0)
        print(f"  run {i + 1}: {times[-1]:.2f} s ({len(result.files)} files, "
              f"empty sections: {', '.join(result.empty_sections) or 'none'}; load {os.getloadavg()[0]:.2f})",
              flush=True)
    print(f"marketing report: cold {times[0]:.2f} s, warm median {statistics.median(times[1:] or times):.2f} s "
          f"(goal: under 5 s); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sync_cost(engine, args.ads, today)
    engine.dispose()
    return 0 if max(times) < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
