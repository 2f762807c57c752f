"""Identity resolution, customer 360 and erasure, on SQLite and PostgreSQL.

People are loaded the way a user loads them: csv sources synced through the engine,
then `crmhub model`. The same woman appears as a form lead with her work email, a shop
customer with her phone and a typo in her name, and a support contact from her
personal Gmail address.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from sqlalchemy import inspect, text

from crm_model import derive, matching
from crm_model.identity import normalise_email
from crmhub import jobs, persons
from crmhub.cli import main
from tests.conftest import rows

LEADS = (
    "lead_id,first_name,last_name,email,phone,company,street,postal_code,city,birth_date,submitted_at,gclid,customer_no\n"
    "L1,Katherine,Johnson,k.johnson@acme.example,,Acme,12 Elm Street,10115,Berlin,1980-04-02,2026-03-01T10:00:00Z,G-111,C-77\n"
    "L2,Peter,Miller,peter@miller.example,+49 30 1111111,,,,,,2026-03-02T10:00:00Z,,\n"
    "L3,Anna,Schmidt,info@switchboard.example,+49 30 9999999,Switchboard GmbH,,,,,2026-03-03T10:00:00Z,,\n"
    "L4,Boris,Weber,info@switchboard.example,+49 30 9999999,Switchboard GmbH,,,,,2026-03-04T10:00:00Z,,\n"
)
CUSTOMERS = (
    "customer_id,first_name,last_name,email,phone,street,postal_code,city,birth_date,customer_number\n"
    "S1,Katherina,Jonson,,+49 30 5555555,12 Elm Str,10115,Berlin,1980-04-02,\n"
    "S2,Kate,Johnson,kate.johnson+shop@gmail.com,+49 30 5555555,,,,,C-77\n"
    "S3,Peter,Miller,,+49 30 1111111,,,,,\n"
    "S4,Laura,Fischer,laura@fischer.example,,Hauptstr. 1,80331,Munich,1975-01-01,\n"
    "S5,Katharine,Johnsonn,,,12 Elm Street,10115,Berlin,1980-04-02,\n"
)
SUPPORT = (
    "contact_id,name,email,phone\n"
    "T1,Kate Johnson,katejohnson@gmail.com,\n"
    "T2,Laura Fischer,laura@fischer.example,\n"
)


def sources(tmp_path: Path, order: tuple[str, ...] = ("leads", "shop", "support")) -> dict:
    files = {"leads": ("leads.csv", LEADS, "lead", "lead_id"), "shop": ("shop.csv", CUSTOMERS, "person", "customer_id"),
             "support": ("support.csv", SUPPORT, "person", "contact_id")}
    out = {}
    for name in order:
        file, content, entity, key = files[name]
        (tmp_path / file).write_text(content)
        out[name] = {"connector": "csv", "config": {"path": file, "entity": entity, "key": key,
                                                    "default_region": "DE"}}
    return out


IDENTITY = {"email_provider_rules": True,
            "identifiers": {"customer_number": {"leads": "customer_no", "shop": "customer_number"}}}


def persons_by_record(engine) -> dict[tuple[str, str], int]:
    return {(r["source"], r["external_id"]): r["person_id"] for r in rows(engine, "source_person")}


def partition(engine) -> set[frozenset]:
    groups: dict[int, set] = {}
    for key, pid in persons_by_record(engine).items():
        groups.setdefault(pid, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def test_one_person_across_sources_and_why(tmp_path, write_config, warehouse, capsys):
    cfg = write_config(sources(tmp_path), identity=IDENTITY)
    jobs.sync(cfg)
    summary = jobs.model(cfg)
    assert summary.created == len(partition(warehouse))
    kate = {("leads", "lead:L1"), ("shop", "S1"), ("shop", "S2"), ("shop", "S5"), ("support", "T1")}
    groups = partition(warehouse)
    assert frozenset(kate) in groups, groups  # probabilistic, custom id, phone, Gmail rules
    assert frozenset({("leads", "lead:L2"), ("shop", "S3")}) in groups  # same phone, same name
    # a switchboard email and phone shared by two different names join nobody
    assert frozenset({("leads", "lead:L3")}) in groups and frozenset({("leads", "lead:L4")}) in groups
    assert frozenset({("shop", "S4"), ("support", "T2")}) in groups

    data = persons.show(cfg, "katejohnson@gmail.com")
    assert {(r["source"], r["external_id"]) for r in data["identities"]} == kate
    why = {r["external_id"]: r["joined_by"] for r in data["identities"]}
    assert why["lead:L1"]["evidence"] == "first record of this person"
    assert why["S2"]["evidence"] == "customer_number:c-77"
    assert why["S1"]["evidence"] == "phone:+49305555555"
    assert why["T1"]["evidence"] == "email:katejohnson@gmail.com"  # Gmail dots and +tag
    assert why["S5"]["evidence"].startswith("probabilistic match")  # no shared identifier at all
    assert why["S5"]["fields"]["birth_date"]["level"] == "exact"
    assert why["S5"]["fields"]["last_name"]["level"].startswith("jaro-winkler")
    assert len(data["leads"]) == 1 and data["person"]["lifecycle_stage"] == "lead"
    assert main(["person", "show", "-c", str(cfg.path), "katejohnson@gmail.com"]) == 0
    shown = capsys.readouterr().out
    assert "joined by: customer_number:c-77" in shown and "birth_date: exact" in shown
    assert "leads (1):" in shown and "lifecycle: lead" in shown
    assert main(["person", "show", "--json", "-c", str(cfg.path), str(data["person"]["person_id"])]) == 0
    assert json.loads(capsys.readouterr().out)["person"]["email"] == data["person"]["email"]
    assert main(["person", "show", "-c", str(cfg.path), "nobody@nowhere.example"]) == 1
    assert "no person with email nobody@nowhere.example" in capsys.readouterr().err
    merges = rows(warehouse, "person_merge")
    assert all(m["evidence"] for m in merges)
    # the shared switchboard number was weighed by the names behind it
    lone = persons.show(cfg, str(persons_by_record(warehouse)[("leads", "lead:L3")]))
    assert lone["person"]["display_name"] == "Anna Schmidt"
    # attributes keep the columns with no warehouse field
    shop = {r["external_id"]: r for r in rows(warehouse, "source_person") if r["source"] == "shop"}
    assert shop["S2"]["attributes"] == {"customer_number": "C-77"}


def test_order_of_sources_does_not_change_persons_and_rerun_changes_nothing(tmp_path, write_config, warehouse):
    cfg = write_config(sources(tmp_path, ("support", "shop", "leads")), identity=IDENTITY)
    for name in ("support", "shop", "leads"):  # one source at a time, models in between
        jobs.sync(cfg, [name])
        jobs.model(cfg)
    incremental = partition(warehouse)
    before = {t: rows(warehouse, t) for t in ("person", "source_person", "identity", "person_merge", "lead")}
    again = jobs.model(cfg)
    assert (again.persons, again.created, again.merged, again.looked_at) == (0, 0, 0, 0)
    assert {t: rows(warehouse, t) for t in before} == before
    jobs.model(cfg, full=True)  # from scratch, in one go: the same persons
    assert partition(warehouse) == incremental
    kate = {("leads", "lead:L1"), ("shop", "S1"), ("shop", "S2"), ("shop", "S5"), ("support", "T1")}
    assert frozenset(kate) in incremental


def test_a_run_from_scratch_writes_only_the_records_that_change_person(tmp_path, write_config, warehouse,
                                                                      monkeypatch):
    """A run from scratch (every run of a warehouse this small) writes the source_person
    rows of the records that are new, changed or change person, as an incremental run
    lists them; the other rows stay as they are, and the records that moved take their
    leads with them."""
    cfg = write_config(sources(tmp_path), identity=IDENTITY)
    jobs.sync(cfg)
    jobs.model(cfg)
    before = persons_by_record(warehouse)
    assert before[("shop", "S4")] == before[("support", "T2")]
    written: list[int] = []
    churned = derive.churned

    def note(conn, table, count):
        if table == "source_person":
            written.append(count)
        churned(conn, table, count)

    monkeypatch.setattr(derive, "churned", note)
    jobs.model(cfg, full=True)  # nothing changed: no row written
    assert written == [0] and persons_by_record(warehouse) == before
    # a rule keeps the support mail's sender apart from the shop's customer: the config
    # changed, so the run is from scratch, and one of the two records moves
    cfg = write_config(sources(tmp_path), identity={**IDENTITY, "never_merge": [["shop/S4", "support/T2"]]})
    jobs.model(cfg)
    after = persons_by_record(warehouse)
    assert after[("shop", "S4")] != after[("support", "T2")]
    moved = [key for key in before if after[key] != before[key]]
    assert moved and written == [0, len(moved)]
    for lead in rows(warehouse, "lead"):
        assert lead["person_id"] == after[(lead["source"], lead["person_ref"])]


def test_a_run_with_nothing_to_resolve_derives_the_rest_without_loading_the_matcher(tmp_path, write_config,
                                                                                 warehouse):
    """`crmhub model` looks for records to resolve before it loads the matcher (numpy,
    rapidfuzz): with none, it only derives what the other pending rows give."""
    import subprocess
    import sys

    from crm_model.load import Upserter

    cfg = write_config(sources(tmp_path), identity=IDENTITY)
    jobs.sync(cfg)
    jobs.model(cfg)
    with warehouse.begin() as conn:  # a new touchpoint of a person seen before: no record to resolve
        Upserter(conn).upsert("touchpoint", [{"source": "leads", "external_id": "visit-1", "person_ref": "lead:L1",
                                             "channel": "web", "occurred_at": dt.datetime(2026, 3, 4, tzinfo=dt.UTC)}])
    code = ("import sys; from crmhub import config, jobs; "
            f"s = jobs.model(config.load({str(cfg.path)!r})); "
            "print(s.looked_at, 'numpy' in sys.modules, 'rapidfuzz' in sys.modules)")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["0", "False", "False"]
    visit = next(r for r in rows(warehouse, "touchpoint") if r["external_id"] == "visit-1")
    assert visit["person_id"] == persons_by_record(warehouse)[("leads", "lead:L1")]


def test_a_changed_identity_config_is_something_to_resolve(tmp_path, write_config, warehouse):
    """With no record pending, an identity config other than the last run's still has the
    next run resolve every record again; that run stores the config, and the one after has
    nothing to do."""
    cfg = write_config(sources(tmp_path), identity=IDENTITY)
    jobs.sync(cfg)
    jobs.model(cfg)
    total = len(rows(warehouse, "source_person"))
    assert jobs.model(cfg).looked_at == 0
    changed = write_config(sources(tmp_path), identity={**IDENTITY, "email_provider_rules": False})
    assert jobs.model(changed).looked_at == total
    assert jobs.model(changed).looked_at == 0


def test_never_merge_holds_and_must_merge_joins(tmp_path, write_config, warehouse):
    # incremental runs (full_run_below 0): only what changed and the persons it touches
    cfg = write_config(sources(tmp_path), identity={**IDENTITY, "full_run_below": 0,
                                                    "never_merge": [["laura@fischer.example", "shop/S4"]]})
    jobs.sync(cfg)
    jobs.model(cfg)
    by = persons_by_record(warehouse)
    assert by[("shop", "S4")] != by[("support", "T2")]
    # unlink by command: the switchboard lead stays apart from Peter; link joins two
    assert main(["person", "link", "-c", str(cfg.path), "peter@miller.example", "info@switchboard.example"]) == 0
    assert main(["person", "unlink", "-c", str(cfg.path), str(by[("shop", "S1")]),
                 "k.johnson@acme.example"]) == 0
    jobs.model(cfg)
    by = persons_by_record(warehouse)
    assert by[("leads", "lead:L2")] == by[("leads", "lead:L3")] == by[("shop", "S3")]
    assert by[("shop", "S1")] != by[("leads", "lead:L1")]
    assert by[("shop", "S4")] != by[("support", "T2")]
    # the incremental run re-read the lead's click id and form answer (custom identifier)
    # for the person it rebuilt, through the lead (source, person_ref) index
    idents = {(r["kind"], r["value"], r["source"]): r["person_id"] for r in rows(warehouse, "identity")}
    assert idents[("click_id", "G-111", "leads")] == idents[("customer_number", "c-77", "leads")] \
        == by[("leads", "lead:L1")] != by[("shop", "S2")] == idents[("customer_number", "c-77", "shop")]
    assert jobs.model(cfg).looked_at == 0  # rules hold on the next runs without redoing work
    jobs.model(cfg, full=True)
    assert persons_by_record(warehouse)[("shop", "S1")] != persons_by_record(warehouse)[("leads", "lead:L1")]


def test_forget_leaves_nothing_and_the_next_sync_does_not_bring_it_back(tmp_path, write_config, warehouse):
    cfg = write_config(sources(tmp_path), identity=IDENTITY)
    jobs.sync(cfg)
    jobs.model(cfg)
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    (report_dir / "weekly.csv").write_text("name,email\nKatherine Johnson,k.johnson@acme.example\nLaura Fischer,x\n")
    with warehouse.begin() as conn:
        conn.execute(text("INSERT INTO report_run (name, report, status, started_at, output_path) "
                          "VALUES ('weekly', 'sales', 'success', CURRENT_TIMESTAMP, :p)"), {"p": str(report_dir)})
        conn.execute(text("INSERT INTO email_message (source, message_id, from_address, to_addresses, subject) "
                          "VALUES ('mail', '<1@x>', 'katejohnson@gmail.com', :t, 'hello'), "
                          "('mail', '<2@x>', 'laura@fischer.example', :u, 'hi all')"),
                     {"t": json.dumps(["support@shop.example"]),
                      "u": json.dumps(["katejohnson@gmail.com", "boss@shop.example"])})
        conn.execute(text("INSERT INTO rejected_record (source, stream, record_key, payload, reason, rejected_at) "
                          "VALUES ('shop', 'rows', 'S9', :p, 'bad', CURRENT_TIMESTAMP)"),
                     {"p": json.dumps({"name": "Katherine Johnson", "phone": "030 5555555"})})
    pid = persons_by_record(warehouse)[("support", "T1")]
    assert main(["forget", "-c", str(cfg.path), "k.johnson@acme.example"]) == 0
    needles = ["k.johnson@acme.example", "katejohnson@gmail.com", "kate.johnson+shop@gmail.com", "+49305555555", "30 5555555",
               "Katherine", "Katherina", "Jonson", "Kate Johnson"]
    assert _found(warehouse, needles) == []
    assert "Katherine" not in (report_dir / "weekly.csv").read_text()
    assert "Laura Fischer" in (report_dir / "weekly.csv").read_text()
    assert [r["message_id"] for r in rows(warehouse, "email_message")] == ["<2@x>"]
    with warehouse.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM person WHERE person_id = :p"), {"p": pid}).scalar() == 0
    # a full re-read of every source lands nothing about her again
    jobs.sync(cfg, full_refresh=True)
    jobs.model(cfg)
    assert _found(warehouse, needles) == []
    assert any("erased" in r["reason"] for r in rows(warehouse, "rejected_record"))
    assert len(partition(warehouse)) == 4  # Peter, Anna, Boris, Laura


def _found(engine, needles: list[str]) -> list[tuple[str, str]]:
    """Every (table, needle) where a needle appears in any column of any row."""
    from crm_model.load import TABLES

    hits = []
    for name in TABLES:
        for row in rows(engine, name):
            blob = json.dumps(row, default=str).lower()
            hits += [(name, n) for n in needles if n.lower() in blob]
    return hits


def test_shared_phone_by_many_names_does_not_merge_them(tmp_path, write_config, warehouse):
    # 200 different people; each phone number is written down for 20 of them (a switchboard)
    first = ["Anna", "Boris", "Clara", "David", "Emil", "Frieda", "Gustav", "Hanna", "Ivan", "Jana",
             "Karl", "Lena", "Moritz", "Nina", "Otto", "Paula", "Quirin", "Rosa", "Stefan", "Tanja"]
    last = ["Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Koch"]
    lines = ["lead_id,first_name,last_name,phone"]
    lines += [f"{n},{first[n % 20]},{last[n // 20]},+49 30 10000{n % 10:02d}" for n in range(200)]
    (tmp_path / "sheet.csv").write_text("\n".join(lines) + "\n")
    cfg = write_config({"sheet": {"connector": "csv", "config": {"path": "sheet.csv", "entity": "lead",
                                                                 "key": "lead_id"}}})
    jobs.sync(cfg)
    jobs.model(cfg)
    assert len(partition(warehouse)) == 200


def test_email_provider_rules_and_matching_units():
    assert normalise_email("K.Johnson+News@GoogleMail.com", True) == "kjohnson@gmail.com"
    assert normalise_email("k.johnson+news@acme.example", True) == "k.johnson+news@acme.example"
    assert normalise_email("K.Johnson+x@gmail.com", False) == "k.johnson+x@gmail.com"
    cols = matching.normalise([
        {"first_name": "Иван", "last_name": "Петров"}, {"first_name": "Ivan", "last_name": "Petrov"},
        {"first_name": "Bill", "last_name": "Smith"}, {"first_name": "William", "last_name": "Smith"},
        {"first_name": "Smith", "last_name": "William"}, {"first_name": "W", "last_name": "Smith"},
    ])
    pairs = matching.candidate_pairs(cols)
    levels = matching.compare(cols, pairs)
    got = {(int(a), int(b)): (int(levels["first_name"][k]), int(levels["last_name"][k]))
           for k, (a, b) in enumerate(pairs)}
    assert got[(0, 1)] == (1, 1)  # transliteration
    assert got[(2, 3)][0] == 2  # nickname
    assert got[(3, 4)] == (1, 1)  # swapped first and last name
    # an initial: blocking pairs it only with a shared birth date, address, email name or
    # phone (a surname and initial alone paired relatives), so the pair is compared directly
    assert (3, 5) not in got
    assert matching.compare(cols, np.array([[3, 5]]))["first_name"][0] == 2


def test_keys_only_columns_give_the_same_keys_and_a_memo_the_same_values():
    """An incremental run normalises its pending records only as far as their blocking
    keys need (``keys_only``), and keeps the values it normalised (``memo``) for the
    records it reads next: the keys and the values are those normalising from nothing
    gives. One raw value stands in two fields, which normalise it differently."""
    records, _ = _bench().generate(600, seed=3)
    records[7] = {**records[7], "street": "10 115", "postal_code": "10 115", "company": "Zoë  O'Brien"}
    fields = ["first_name", "last_name", "birth_date", "street", "postal_code", "city", "region", "company",
              "country", "email", "phone"]

    def columns(part: list[dict]) -> dict[str, list]:
        return {f: [r.get(f) for r in part] for f in fields}

    whole = matching.normalise_columns(columns(records), len(records))
    values = {name: list(v) for name, v in whole.values.items()}
    assert values["street"][7] == "10 115" and values["postal_code"][7] == "10115"
    keys = matching.blocking_keys(whole)
    light = matching.normalise_columns(columns(records), len(records), keys_only=True)
    assert not {"city", "region", "company", "country"} & set(light.values)
    for name, got in matching.blocking_keys(light).items():
        assert np.array_equal(got, keys[name]), name
    memo: dict[str, dict] = {}
    matching.normalise_columns(columns(records[:300]), 300, memo=memo, keys_only=True)
    assert memo["street"] and memo["postal_code"] and "city" not in memo
    again = matching.normalise_columns(columns(records[::-1]), len(records), memo=memo)
    assert {name: v[::-1] for name, v in again.values.items()} == values


def test_name_groups_of_one_name_key_and_of_several():
    """Holders of one identifier by the person their names describe: one name key (a
    nickname's canonical name and the last name) is one group without comparing names."""
    from crm_model import identity

    first = ["bill", "william", "kate", "", "w"]
    last = ["smith", "smith", "smith", "", "smith"]
    names = identity._NameKeys(first, last)
    assert identity._name_groups([0, 1, 3], first, last, names) == [[0, 1]]
    assert identity._name_groups([1, 2, 4, 3], first, last, names) == [[1, 4], [2]]
    assert identity._name_groups([3], first, last, names) == []


def test_em_level_patterns_are_the_distinct_rows_numpy_finds():
    """EM's distinct level patterns, packed into integers, are np.unique's rows and counts
    (lexicographic order, the dtype kept), and rows too wide to pack go to np.unique."""
    rng = np.random.default_rng(7)
    for shape, high in (((5000, 11), 6), ((300, 1), 2), ((0, 11), 6), ((1000, 30), 6), ((50, 4), 1)):
        matrix = rng.integers(0, high, size=shape).astype(np.int8)
        expected_rows, expected_counts = np.unique(matrix, axis=0, return_counts=True)
        rows, counts = matching._distinct_rows(matrix)
        assert rows.dtype == matrix.dtype
        assert np.array_equal(rows, expected_rows)
        assert np.array_equal(counts, expected_counts)


def test_sqlite_inserts_of_many_rows_keep_every_row_in_order():
    """Rows given flat go in as VALUES lists of many rows each, a last shorter statement
    for the rest, and fewer rows per statement when SQLite's limit of bound values is low."""
    import sqlite3

    from crm_model.identity import _insert_rows_sqlite

    for count, limit in ((1234, 32766), (3, 32766), (0, 32766), (1001, 7)):
        conn = sqlite3.connect(":memory:")
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, a INTEGER, b TEXT, c TEXT)")
        rows = [(k, f"b{k}", None if k % 3 else "") for k in range(count)]
        cursor = conn.cursor()
        _insert_rows_sqlite(cursor, "INSERT INTO t (a, b, c)", "", 3, [x for row in rows for x in row])
        assert conn.execute("SELECT a, b, c FROM t ORDER BY seq").fetchall() == rows
        conn.close()


def test_every_table_with_personal_data_is_covered_by_forget():
    """A table that gains a person link or a payload must be added to crm_model/erasure.py."""
    from crm_model import erasure
    from crm_model.schema import Base

    linked = {t.name for t in Base.metadata.tables.values() if {"person_id", "person_ref"} & set(t.c.keys())}
    assert linked <= set(erasure.PERSON_TABLES)
    documents = {t.name for t in Base.metadata.tables.values() if {"payload", "answers"} & set(t.c.keys())}
    assert documents <= set(erasure.PAYLOAD_TABLES)


def test_golden_fields_are_the_person_fields():
    from crm_model.identity_settings import GOLDEN_FIELDS
    from crm_model.mapping.common import PERSON_FIELDS

    assert GOLDEN_FIELDS == PERSON_FIELDS


def test_golden_record_takes_the_trusted_source_then_the_latest_non_empty_value_then_the_record_order():
    """Survivorship over columns: ``source_priority`` first, then the most recently seen
    non-empty value, ties by record order ((source, external_id)); a lone record's empty
    string is no value; timestamps compare as times whether naive (SQLite) or not."""
    from crm_model.identity import golden_columns
    from crm_model.identity_settings import GOLDEN_FIELDS, IdentitySettings

    day = lambda d: dt.datetime(2026, 1, d, tzinfo=dt.UTC)  # noqa: E731
    records = [  # sorted by (source, external_id), as resolve reads them
        {"source": "crm", "external_id": "a", "email": "old@crm.example", "phone": "+491", "seen_at": day(1)},
        {"source": "crm", "external_id": "b", "email": "", "phone": "+492", "seen_at": day(3)},
        {"source": "shop", "external_id": "c", "email": "new@shop.example", "phone": None, "seen_at": day(2)},
        {"source": "shop", "external_id": "d", "email": "tie@shop.example", "phone": "+494", "seen_at": day(2)},
        {"source": "web", "external_id": "e", "email": "", "phone": "+495", "seen_at": None},
    ]
    rec = {name: [r.get(name) for r in records] for name in ("source", "external_id", "seen_at", *GOLDEN_FIELDS)}
    members = [[0, 1, 2, 3], [4]]

    plain = golden_columns(rec, members, IdentitySettings())
    assert plain["email"] == ["tie@shop.example", None]  # latest non-empty; the tie goes to the later record
    assert plain["phone"] == ["+492", "+495"]

    crm_first = IdentitySettings(source_priority={"email": ["crm"]})
    trusted = golden_columns(rec, members, crm_first)
    assert trusted["email"] == ["old@crm.example", None]  # the trusted source's only non-empty email
    assert trusted["phone"] == ["+492", "+495"]  # other fields: the latest

    naive = dict(rec, seen_at=[x.replace(tzinfo=None) if x else None for x in rec["seen_at"]])
    assert golden_columns(naive, members, IdentitySettings()) == golden_columns(rec, members, IdentitySettings())


def _households_csv(tmp_path: Path) -> None:
    """200 families of three (one surname, address and landline; own given name, birth date
    and member number); one member of each family also has a second record with a typo in
    the given name; and in every tenth family one member has a record whose given name and
    birth date are both wrong but whose member number agrees."""
    given = ["Alexander", "Brigitte", "Cornelius", "Dorothea", "Eberhard", "Friederike", "Gottfried",
             "Hildegard", "Ignatius", "Josephine", "Kunigunde", "Leopold", "Mechthild", "Norbert", "Ottilie",
             "Pankraz", "Roswitha", "Sieglinde", "Theobald", "Wilhelmine"]
    syllables = ["ba", "ke", "lo", "mu", "ri", "sa", "to", "ve", "wi", "zo"]
    lines = ["lead_id,first_name,last_name,street,postal_code,city,phone,birth_date,member_no"]
    for fam in range(200):
        last = (syllables[fam % 10] + syllables[fam // 10 % 10] + syllables[fam // 100 + 4] + "er").title()
        for k in range(3):
            name = given[(fam + 7 * k) % 20]
            born = f"{1950 + 20 * k}-0{k + 1}-{10 + fam % 18}"
            number = f"M{(3 * fam + k) * 7919 % 900_000 + 100_000}"
            row = f"{last},{fam + 1} Linden Street,{10100 + fam},Berlin,+49 30 20{fam:03d}00,{born},{number}"
            lines.append(f"F{fam}-{k},{name},{row}")
            if k == fam % 3:
                lines.append(f"D{fam},{name[0] + name[2] + name[1] + name[3:]},{row}")
            if k == 0 and fam % 10 == 0:
                lines.append(f"X{fam},Zacharias,{row.replace(born, '1979-11-30')}")
    (tmp_path / "families.csv").write_text("\n".join(lines) + "\n")


def test_household_guard_keeps_relatives_apart_but_an_id_number_overrides_it(tmp_path, write_config, warehouse):
    _households_csv(tmp_path)
    source = {"families": {"connector": "csv", "config": {"path": "families.csv", "entity": "lead",
                                                          "key": "lead_id", "default_region": "DE"}}}
    cfg = write_config(source, identity={"compare_attributes": ["member_no"]})
    jobs.sync(cfg)
    jobs.model(cfg)
    groups = partition(warehouse)
    # relatives share surname, address and landline but stay three people each; the
    # records with a typo join theirs, and so does the one whose member number agrees
    assert len(groups) == 600, sorted(map(len, groups))
    assert frozenset({("families", "lead:F0-0"), ("families", "lead:D0"), ("families", "lead:X0")}) in groups
    assert frozenset({("families", "lead:F1-1"), ("families", "lead:D1")}) in groups
    # without the guard the same data merges families: the test can fail
    cfg = write_config(source, identity={"compare_attributes": ["member_no"], "household_guard": False})
    jobs.model(cfg, full=True)
    assert len(partition(warehouse)) < 600


def test_household_guard_units():
    levels = {"first_name": np.array([5, 5, 1]), "birth_date": np.array([3, 3, 3]),
              "last_name": np.array([1, 1, 1]), "soc_sec_id": np.array([3, 1, 3])}
    weights = {"first_name": np.array([0, 5, 3, 2, 0, -4.0]), "birth_date": np.array([0, 8, 4, -5.0]),
               "last_name": np.array([0, 9, 4, 2, 0, -5.0]), "soc_sec_id": np.array([0, 12.0, 10, -4])}
    assert matching.plausible(levels).tolist() == [False, False, True]  # no weights: no exception
    assert matching.plausible(levels, weights).tolist() == [False, True, True]  # the id number agrees
    # a household field (here the surname) never lifts the guard, however rare
    weights["last_name"] = np.array([0, 30.0, 4, 2, 0, -5])
    assert matching.plausible(levels, weights).tolist() == [False, True, True]
    assert matching.plausible(levels, weights, household=()).tolist() == [True, True, True]


def test_generated_people_with_households_and_duplicates_resolve_with_high_pair_f1(warehouse):
    """bench/identity.py's seeded generator (20% corrupted duplicates, families sharing an
    address and a landline), 4,000 records straight into source_person, then one run."""
    from crm_model import identity

    bench = _bench()
    url = warehouse.url.render_as_string(hide_password=False)
    records, truth = bench.generate(4000, seed=7)
    bench._insert(url, records, 0, "crm")
    with warehouse.begin() as conn:
        identity.resolve(conn)
    scores = bench.pair_scores(bench.crmhub_pairs(url), bench.true_pairs(truth))
    assert scores["f1"] >= 0.95, scores


def test_a_run_from_scratch_reads_every_record_once_in_key_order(warehouse, monkeypatch):
    """The records are read a chunk at a time (PostgreSQL: by a server-side cursor): each
    record once, in (source, external_id) order, with its values, across chunk boundaries."""
    from sqlalchemy import select

    from crm_model import identity
    from crm_model.schema import SourcePerson

    bench = _bench()
    records, _ = bench.generate(50, seed=3)
    bench._insert(warehouse.url.render_as_string(hide_password=False), records, 0, "crm")
    monkeypatch.setattr(identity, "_READ_CHUNK", 7)
    sp = SourcePerson.__table__
    stmt = select(sp.c.source, sp.c.external_id, sp.c.last_name).order_by(sp.c.source, sp.c.external_id)
    with warehouse.begin() as conn:
        rec = identity._read_records(conn, stmt)
        stored = [tuple(row) for row in conn.execute(stmt)]
    assert len(stored) == 50
    assert list(zip(rec["source"], rec["external_id"], rec["last_name"], strict=True)) == stored


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_identity", Path(__file__).parents[2] / "bench/identity.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_incremental_run_finds_candidates_through_stored_keys_and_agrees_with_a_run_from_scratch(warehouse):
    """An incremental run reads the pending records and the persons their identifiers and
    blocking keys (person_key) lead to, not every record; its persons are those of a run
    from scratch over the same records."""
    from crm_model import identity
    from crm_model.identity_settings import IdentitySettings

    bench = _bench()
    url = warehouse.url.render_as_string(hide_password=False)
    records, _ = bench.generate(4200, seed=11)
    records[4100] = {**records[4100], "email": None, "phone": None,  # a click id of one name joins
                     "first_name": records[5]["first_name"], "last_name": records[5]["last_name"]}
    bench._insert(url, records[:4000], 0, "crm")
    click = "INSERT INTO lead (source, external_id, person_ref, gclid) VALUES ('crm', :e, :r, 'G-INC')"
    with warehouse.begin() as conn:  # an ad click id: an old record's lead, later a new one's
        conn.execute(text(click), {"e": "lead-5", "r": "r5"})
    opts = IdentitySettings(full_run_below=0)
    with warehouse.begin() as conn:
        assert identity.resolve(conn, opts).looked_at == 4000  # no model yet: from scratch
    with warehouse.connect() as conn:
        stored = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT person_id) FROM person_key")).one()
    assert stored[0] > 5 * stored[1] and stored[1] == len(partition(warehouse))
    bench._insert(url, records[4000:], 4000, "crm")
    with warehouse.begin() as conn:
        conn.execute(text(click), {"e": "lead-4100", "r": "r4100"})
        again = identity.resolve(conn, opts)
    by_person = persons_by_record(warehouse)  # joined by the click id read for both records
    assert by_person[("crm", "r4100")] == by_person[("crm", "r5")]
    assert {(r["kind"], r["value"], r["person_id"]) for r in rows(warehouse, "identity")} >= \
        {("click_id", "G-INC", by_person[("crm", "r5")])}
    assert 200 <= again.looked_at < 1000, again  # the 200 new records and the persons they join
    incremental = partition(warehouse)
    with warehouse.connect() as conn:  # new records joined old persons on names and address alone
        joined = conn.execute(text(
            "SELECT COUNT(*) FROM person_merge WHERE evidence LIKE 'probabilistic%' AND external_id IN "
            "(SELECT external_id FROM source_person WHERE CAST(SUBSTR(external_id, 2) AS INTEGER) >= 4000)")).scalar()
    assert joined >= 5
    stored = {(r["block_key"], r["person_id"]) for r in rows(warehouse, "person_key")}
    # an incremental run adds its keys as deltas (the complement, < 0); a key is the same either way
    assert any(k < 0 for k, _ in stored) and any(k >= 0 for k, _ in stored)
    # a person whose records changed (here: retired by a merge) keeps its keys from scratch,
    # skipped by lookups: its keys that hold are its deltas
    stale = {r["person_id"] for r in rows(warehouse, "person_key_stale")}
    assert stale and stale.isdisjoint(by_person.values())
    keys = {(k if k >= 0 else ~k, p) for k, p in stored if k < 0 or p not in stale}
    with warehouse.begin() as conn:
        identity.resolve(conn, opts, full=True)
    assert partition(warehouse) == incremental and persons_by_record(warehouse) == by_person
    assert not rows(warehouse, "person_key_stale")  # every key from scratch holds again
    with warehouse.connect() as conn:  # the primary key PostgreSQL's run from scratch built again after the rows
        pk = inspect(conn).get_pk_constraint("person_key")
    assert (pk["name"], pk["constrained_columns"]) == ("pk_person_key", ["block_key", "person_id"])
    # the incremental run stored every key a run from scratch stores (and a few more: an
    # email or phone it did not know to be shared by other names still gave a key)
    full_keys = {(r["block_key"], r["person_id"]) for r in rows(warehouse, "person_key")}
    assert all(k >= 0 for k, _ in full_keys)  # a run from scratch writes every key as it is
    assert full_keys <= keys and {p for _, p in keys} == {p for _, p in full_keys}


def test_an_incremental_run_keeps_the_identity_rows_a_run_from_scratch_gives(warehouse):
    """An incremental run writes only the identity rows that change: a record's new email
    is there, the email and phone it no longer gives are gone (unless another record of
    the warehouse still gives them), and the rows equal those of a run from scratch."""
    from crm_model import identity
    from crm_model.identity_settings import IdentitySettings

    bench = _bench()
    url = warehouse.url.render_as_string(hide_password=False)
    records, _ = bench.generate(2000, seed=12)
    bench._insert(url, records, 0, "crm")
    opts = IdentitySettings(full_run_below=0)
    with warehouse.begin() as conn:
        assert identity.resolve(conn, opts).looked_at == 2000  # no model yet: from scratch
    given = [(i, r) for i, r in enumerate(records) if r["email"] and r["phone"]][:3]
    with warehouse.begin() as conn:
        for i, _ in given[:2]:  # another email for two records, no phone for the third
            conn.execute(text("UPDATE source_person SET email = :e, model_pending = true WHERE external_id = :x"),
                         {"e": f"changed.{i}@new.example", "x": f"r{i}"})
        conn.execute(text("UPDATE source_person SET phone = NULL, model_pending = true WHERE external_id = :x"),
                     {"x": f"r{given[2][0]}"})
        again = identity.resolve(conn, opts)
    assert 3 <= again.looked_at < 100, again
    incremental = {(r["kind"], r["value"], r["source"], r["person_id"]) for r in rows(warehouse, "identity")}
    owner = persons_by_record(warehouse)
    for i, _ in given[:2]:
        assert ("email", f"changed.{i}@new.example", "crm", owner[("crm", f"r{i}")]) in incremental
    others = [r for k, r in enumerate(records) if k not in {i for i, _ in given}]
    for _, r in given[:2]:
        if not any(o["email"] == r["email"] for o in others):
            assert all(v != r["email"] for _, v, _, _ in incremental)
    if not any(o["phone"] == given[2][1]["phone"] for o in others):
        assert all(v != given[2][1]["phone"] for _, v, _, _ in incremental)
    with warehouse.begin() as conn:
        identity.resolve(conn, opts, full=True)
    assert persons_by_record(warehouse) == owner
    assert {(r["kind"], r["value"], r["source"], r["person_id"]) for r in rows(warehouse, "identity")} == incremental


def test_an_incremental_run_stages_only_the_identity_rows_that_can_change(warehouse, monkeypatch):
    """A person that only gained a record has the rows of its other records already: the
    run stages the new record's rows alone. A person whose record changed has all its
    records' rows staged, so that only the rows none of them gives any more go."""
    from crm_model import identity
    from crm_model.identity_settings import IdentitySettings

    bench = _bench()
    url = warehouse.url.render_as_string(hide_password=False)
    records, _ = bench.generate(300, seed=5)
    twin = {**records[0], "email": "ada.twin@one.example", "phone": "+4930123456"}
    bench._insert(url, [*records, twin, {**twin, "email": "ada.twin@two.example"}], 0, "crm")
    opts = IdentitySettings(full_run_below=0)
    with warehouse.begin() as conn:
        identity.resolve(conn, opts)
    owner = persons_by_record(warehouse)
    person = owner[("crm", "r300")]
    assert owner[("crm", "r301")] == person
    staged: list[tuple] = []
    stage = identity._stage

    def recorded(conn, table, names, rows):
        if table == "model_identity":
            rows = list(rows)
            staged.extend(rows)
        stage(conn, table, names, rows)

    monkeypatch.setattr(identity, "_stage", recorded)

    def identities() -> set[tuple]:
        return {(r["kind"], r["value"]) for r in rows(warehouse, "identity") if r["person_id"] == person}

    before = identities()
    bench._insert(url, [{**twin, "email": "ada.twin@three.example"}], 302, "crm")  # joins on the phone
    with warehouse.begin() as conn:
        identity.resolve(conn, opts)
    assert persons_by_record(warehouse)[("crm", "r302")] == person
    assert {(kind, value) for _, kind, value, _, _ in staged} == {
        ("email", "ada.twin@three.example"), ("phone", "+4930123456"), ("external_id", "r302")}
    assert identities() == before | {("email", "ada.twin@three.example"), ("external_id", "r302")}
    staged.clear()
    with warehouse.begin() as conn:  # r300 gives another email: the person's rows are all staged
        conn.execute(text("UPDATE source_person SET email = 'ada.new@one.example', model_pending = true "
                          "WHERE external_id = 'r300'"))
    with warehouse.begin() as conn:
        identity.resolve(conn, opts)
    assert {value for _, kind, value, _, _ in staged if kind == "external_id"} >= {"r300", "r301", "r302"}
    assert identities() == (before | {("email", "ada.twin@three.example"), ("external_id", "r302"),
                                      ("email", "ada.new@one.example")}) - {("email", "ada.twin@one.example")}


def test_runs_from_scratch_and_incremental_runs_give_the_person_facts_the_per_person_sql_gives(warehouse):
    """Runs write first/last seen with the golden records; a run from scratch runs the
    set-wise sql/model_persons_all: its lifecycle stages and first/last seen equal those of
    sql/model_persons run for every person (orders of every status, touchpoints of every
    channel, records' own stages, seen_at and dates missing here and there)."""
    from crm_model import identity
    from crm_model.identity_settings import IdentitySettings

    bench = _bench()
    url = warehouse.url.render_as_string(hide_password=False)
    records, _ = bench.generate(400, seed=13)
    bench._insert(url, records, 0, "crm")
    day = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    statuses = [None, "completed", "cancelled", "pending", "paid", "on-hold"]
    channels = ["form", "ad_click", "email_open", "web_visit", "meeting", "email"]
    with warehouse.begin() as conn:
        for k in range(0, 400, 3):  # seen at different times, some never
            conn.execute(text("UPDATE source_person SET seen_at = :t, lifecycle_stage = :s WHERE external_id = :x"),
                         {"t": None if k % 9 == 0 else day + dt.timedelta(days=k % 50, hours=k % 7),
                          "s": [None, "customer", "prospect", "lead"][k % 4], "x": f"r{k}"})
        conn.execute(text("INSERT INTO customer_order (source, external_id, person_ref, ordered_at, status) "
                          "VALUES ('crm', :e, :r, :t, :s)"),
                     [{"e": f"o{k}", "r": f"r{k}", "t": None if k % 10 == 0 else day - dt.timedelta(days=k % 30),
                       "s": statuses[k % len(statuses)]} for k in range(1, 400, 5)])
        conn.execute(text("INSERT INTO touchpoint (source, external_id, person_ref, occurred_at, channel) "
                          "VALUES ('crm', :e, :r, :t, :c)"),
                     [{"e": f"t{k}", "r": f"r{k}", "t": None if k % 11 == 0 else day + dt.timedelta(days=60 + k % 40),
                       "c": channels[k % len(channels)]} for k in range(2, 400, 4)])
    with warehouse.begin() as conn:
        identity.resolve(conn, IdentitySettings(full_run_below=0), full=True)
    facts = ("person_id", "lifecycle_stage", "first_seen_at", "last_seen_at", "first_touch_source",
             "last_touch_source")
    set_wise = [{f: r[f] for f in facts} for r in rows(warehouse, "person")]
    assert {r["lifecycle_stage"] for r in set_wise} == {"lead", "prospect", "customer"}
    per_person = _facts_per_person(warehouse, facts)
    assert set_wise == per_person
    seen = {r["person_id"]: r["first_seen_at"] for r in per_person}
    assert sum(t is None for t in seen.values()) >= 1 and len({t for t in seen.values()}) > 40

    # an incremental run (records seen again, new records, new touchpoints) writes the
    # facts the per-person SQL gives for every person
    with warehouse.begin() as conn:
        conn.execute(text("UPDATE source_person SET seen_at = :t, model_pending = true WHERE external_id = :x"),
                     [{"t": day + dt.timedelta(days=200 + k), "x": f"r{k}"} for k in range(5, 400, 37)])
    bench._insert(url, bench.generate(440, seed=13)[0][400:], 400, "crm")
    with warehouse.begin() as conn:
        conn.execute(text("INSERT INTO touchpoint (source, external_id, person_ref, occurred_at, channel) "
                          "VALUES ('crm', :e, :r, :t, 'ad_click')"),
                     [{"e": f"t-new{k}", "r": f"r{k}", "t": day - dt.timedelta(days=400)} for k in (401, 7)])
    with warehouse.begin() as conn:
        assert 40 <= identity.resolve(conn, IdentitySettings(full_run_below=0)).looked_at < 400
    incremental = [{f: r[f] for f in facts} for r in rows(warehouse, "person")]
    assert incremental != set_wise
    assert incremental == _facts_per_person(warehouse, facts)


def test_touch_facts_follow_the_dated_touchpoints_of_the_run_s_persons(warehouse):
    """sql/model_persons' touch facts: set from a person's dated touchpoints, cleared once
    none is left, and only for persons of the run (model_dirty)."""
    from crm_model import identity
    from crm_model.identity_settings import IdentitySettings

    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with warehouse.begin() as conn:
        conn.execute(text("INSERT INTO source_person (source, external_id, email, model_pending) "
                          "VALUES ('crm', :x, :e, true)"), [{"x": f"r{k}", "e": f"p{k}@x.example"} for k in range(3)])
        conn.execute(text("INSERT INTO touchpoint (source, external_id, person_ref, occurred_at, channel, "
                          "utm_source, campaign_id) VALUES ('crm', :e, :r, :t, 'ad_click', :u, :c)"),
                     [{"e": f"t{k}{n}", "r": f"r{k}", "t": day + dt.timedelta(days=n), "u": f"src{n}", "c": f"c{n}"}
                      for k in range(3) for n in range(2)])
        identity.resolve(conn, IdentitySettings())
    touch = ("first_touch_source", "first_touch_campaign", "last_touch_source", "last_touch_campaign")
    facts = {r["person_id"]: tuple(r[f] for f in touch) for r in rows(warehouse, "person")}
    assert set(facts.values()) == {("src0", "c0", "src1", "c1")} and len(facts) == 3
    first, second, third = sorted(facts)
    with warehouse.begin() as conn:  # the first and second lose their dates; only the first is in the run
        conn.execute(text("UPDATE touchpoint SET occurred_at = NULL WHERE person_id IN (:a, :b)"),
                     {"a": first, "b": second})
        conn.execute(text("UPDATE touchpoint SET occurred_at = :t WHERE person_id = :c AND external_id LIKE '%0'"),
                     {"t": day + dt.timedelta(days=5), "c": third})
        derive.prepare_scratch(conn)
        conn.execute(text("INSERT INTO model_dirty (person_id) VALUES (:a), (:c)"), {"a": first, "c": third})
        derive.run_sql(conn, "model_persons")
    facts = {r["person_id"]: tuple(r[f] for f in touch) for r in rows(warehouse, "person")}
    assert facts == {first: (None, None, None, None), second: ("src0", "c0", "src1", "c1"),
                     third: ("src1", "c1", "src0", "c0")}


def _facts_per_person(warehouse, facts: tuple[str, ...]) -> list[dict]:
    """Every person's facts again, by sql/model_persons (a subquery per person) and first
    and last seen from all their rows."""
    with warehouse.begin() as conn:
        conn.exec_driver_sql("UPDATE person SET lifecycle_stage = 'lead', first_seen_at = NULL, last_seen_at = NULL")
        derive.prepare_scratch(conn)
        conn.exec_driver_sql("INSERT INTO model_dirty (person_id) SELECT person_id FROM person")
        derive.run_sql(conn, "model_persons")
        # sql/model_persons recomputes first/last seen only where a touchpoint or an order
        # adds to the records' (which the golden record carries): here for every person
        conn.exec_driver_sql(
            "UPDATE person SET (first_seen_at, last_seen_at) = (SELECT MIN(t), MAX(t) FROM ("
            "SELECT occurred_at AS t FROM touchpoint WHERE person_id = person.person_id "
            "UNION ALL SELECT ordered_at FROM customer_order WHERE person_id = person.person_id "
            "UNION ALL SELECT seen_at FROM source_person WHERE person_id = person.person_id) seen)")
    return [{f: r[f] for f in facts} for r in rows(warehouse, "person")]


def test_person_keys_go_by_the_delta_index_or_go_stale_and_forget_erases_both_forms(warehouse):
    """person_key's deltas (< 0) have a partial index on person_id, the keys a run from
    scratch stored (>= 0) none: a model run writing a person's keys anew deletes its deltas
    through that index and lists the person in person_key_stale, whose keys from scratch
    lookups then skip; `crmhub forget` deletes the person's keys of both forms."""
    from crm_model import erasure, identity

    sqlite = warehouse.dialect.name == "sqlite"
    keys = [(11, 7), (~12, 7), (13, 8), (~14, 8), (15, 9), (~16, 9)]
    # other persons' keys of both forms, so that reading the delta range (the primary
    # key's) costs more than the look-up by person, with statistics that say so
    others = [(k, 100 + k) for k in range(1000, 4000)] + [(~k, 100 + k) for k in range(1000, 4000)]
    with warehouse.begin() as conn:
        conn.execute(text("INSERT INTO person_key (block_key, person_id) VALUES (:k, :p)"),
                     [{"k": k, "p": p} for k, p in keys + others])
        conn.exec_driver_sql("ANALYZE person_key")
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'person_key' AND sql LIKE 'CREATE INDEX%%'"
            if sqlite else "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'person_key' "
            "AND indexname LIKE 'ix%%'").all()
        assert {name: "".join(c for c in sql.split("WHERE")[-1] if c not in "() ") for name, sql in indexes} == {
            "ix_person_key_delta_person_id": "block_key<0"}
        if not sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        sql = "DELETE FROM person_key WHERE block_key < 0 AND person_id IN (7, 8)"
        plan = " ".join(str(r[-1] if sqlite else r[0])
                        for r in conn.exec_driver_sql(f"EXPLAIN {'QUERY PLAN ' if sqlite else ''}{sql}"))
        assert "ix_person_key_delta_person_id" in plan, plan
    with warehouse.begin() as conn:  # a model run writing person 7's keys anew
        assert sorted(identity._stored_keys(conn, [11, 12, 13])) == [(~12, 7), (11, 7), (13, 8)]
        identity._write_keys(conn, None, [], [], [7])
        assert sorted(identity._stored_keys(conn, [11, 12, 13])) == [(13, 8)]
        # more stale persons than persons found: those found are looked up instead
        conn.execute(text("INSERT INTO person_key_stale (person_id) VALUES (:p)"), [{"p": p} for p in range(50, 60)])
        assert sorted(identity._stored_keys(conn, [11, 12, 13])) == [(13, 8)]
        conn.exec_driver_sql("DELETE FROM person_key_stale WHERE person_id >= 50")
    assert sorted((r["block_key"], r["person_id"]) for r in rows(warehouse, "person_key")) == sorted(
        [keys[0], *keys[2:], *others])
    assert [r["person_id"] for r in rows(warehouse, "person_key_stale")] == [7]
    erasure.forget(warehouse, "8")
    erasure.forget(warehouse, "7")
    assert sorted((r["block_key"], r["person_id"]) for r in rows(warehouse, "person_key")) == sorted(keys[4:] + others)
    assert not rows(warehouse, "person_key_stale")


def test_stored_keys_finds_both_forms_whether_deltas_are_read_in_one_pass_or_looked_up(warehouse):
    """An incremental run finds the persons holding a key whether it was stored from scratch
    or as a delta, with few deltas (one pass over their range) and with many (a look-up
    per key); keys not asked for stay out."""
    from crm_model import identity

    stored = [(11, 1), (12, 2), (~11, 3), (~13, 4), (~14, 5), (20, 6)]
    with warehouse.begin() as conn:
        conn.execute(text("INSERT INTO person_key (block_key, person_id) VALUES (:k, :p)"),
                     [{"k": k, "p": p} for k, p in stored])
        few = identity._stored_keys(conn, [11, 13, 99])  # 3 deltas <= 4 x 3 keys: one pass
        many = identity._stored_keys(conn, [11])  # 3 deltas > 4 x 1 key: one look-up per key
        none = identity._stored_keys(conn, [12, 20])
    assert sorted(few) == sorted([(11, 1), (~11, 3), (~13, 4)])
    assert sorted(many) == sorted([(11, 1), (~11, 3)])
    assert sorted(none) == [(12, 2), (20, 6)]


def _flat_model(cols: matching.Columns, exact_u: float) -> matching.Model:
    """A model where every field's exact agreement has chance ``exact_u`` and 8x the odds."""
    m, u = {}, {}
    for f, kind in cols.kinds.items():
        k = len(matching.LEVELS[kind])
        u[f] = [0.0, exact_u] + [(1 - exact_u) / (k - 2)] * (k - 2)
        m[f] = [0.0, min(8 * exact_u, 0.9)] + [(1 - min(8 * exact_u, 0.9)) / (k - 2)] * (k - 2)
    return matching.Model(m, u, 0.01)


def test_a_common_name_counts_for_less_and_namesakes_email_names_count_for_nothing():
    rows = [{"first_name": "Anna", "last_name": "Bonu", "email": f"anna.bonu{30 + i}@mail.example"} for i in range(20)]
    rows += [{"first_name": "Zebulon", "last_name": "Quist"}, {"first_name": "Zebulon", "last_name": "Quist"}]
    rows += [{"first_name": "Anna", "last_name": "Quist"}, {"first_name": "Ana", "last_name": "Bonu"}]
    cols = matching.normalise(rows)
    pairs = np.array([[0, 1], [20, 21], [0, 22], [0, 23]])
    levels = matching.compare(cols, pairs)
    model = _flat_model(cols, 10 ** -2.5)  # a full name agrees by chance in 1 of 100,000 pairs
    # of 1,000,000 records, 20 are Anna Bonu (2 in 100,000: twice the chance) and 2 Zebulon Quist
    bits = matching.frequency_bits(model, cols, pairs, levels, total=1_000_000)
    assert abs(bits[0] + 1) < 1e-9 and bits[1] == 0 and bits[2] == bits[3] == 0
    # an incremental run reads at most 100 persons per key: the persons holding the name pair count
    zebulon = int(matching.blocking_keys(cols)["names"][20])
    held = matching.frequency_bits(model, cols, pairs, levels, total=1_000_000, holding={zebulon: 40})
    assert abs(held[1] + 2) < 1e-9 and held[0] == bits[0]
    # one name alone: its frequency stored with the model (Anna in 21 of 24 records)
    model.tf = matching.term_frequencies(cols, model.u)
    bits = matching.frequency_bits(model, cols, pairs, levels, total=1_000_000)
    assert bits[2] < -5 and bits[3] < -5 and bits[1] == 0
    assert all(not key.isalpha() for key in model.tf["first_name"])  # hashes, not names
    # anna.bonu30 and anna.bonu31: one edit apart, and no evidence when both names agree
    assert levels["email_local"][0] == 2
    model.m["email_local"], model.u["email_local"] = [0, 0.5, 0.45, 0.05], [0, 0.003, 0.01, 0.987]
    weight, _ = matching.score(model, levels, guard=False)
    without = {f: lv.copy() for f, lv in levels.items()}
    without["email_local"][:] = 0
    assert weight[0] == matching.score(model, without, guard=False)[0][0]
    fuzzy = {f: lv.copy() for f, lv in levels.items()}
    fuzzy["first_name"][0] = 3  # the given names only similar: the email name is evidence again
    assert matching.score(model, fuzzy, guard=False)[0][0] > matching.score(
        model, {**fuzzy, "email_local": without["email_local"]}, guard=False)[0][0]


def test_identifiers_held_by_several_records_are_found_by_their_hashes_first():
    """_Identifiers.repeated: every identifier two or more records hold is among the
    hashes it returns, and every record holding one is visited (emails, phones and shop
    ids by column; with click ids, through each record's list)."""
    import random

    from crm_model.identity import _Identifiers
    from crm_model.identity_settings import IdentitySettings

    rng = random.Random(7)
    n = 3000
    rec = {"source": [rng.choice(("crm", "shop")) for _ in range(n)],
           "external_id": [f"r{i}" for i in range(n)],
           "email": [rng.choice((None, "", f"p{rng.randrange(2500)}@x.example")) for _ in range(n)],
           "phone": [rng.choice((None, f"+1555{rng.randrange(2000):07d}")) for _ in range(n)],
           "shop_customer_id": [rng.choice((None, None, str(rng.randrange(900)))) for _ in range(n)]}
    for clicks in ({}, {("crm", f"r{i}"): [f"g{i % 700}"] for i in range(0, n, 3)}):
        ids = _Identifiers(rec, IdentitySettings(), clicks)
        holders: dict = {}
        for i in range(n):
            for ident in ids[i]:
                holders.setdefault(ident, []).append(i)
        several = {ident: hs for ident, hs in holders.items() if len(hs) > 1}
        assert len(several) > 100 and any(ident[0] == "shop_customer" for ident in several)
        assert any(ident[0] == "click_id" for ident in several) == bool(clicks)
        repeated, visit = ids.repeated()
        assert all(hash(ident) in repeated for ident in several)
        if clicks:
            assert visit is None
        else:
            assert all(visit[i] for hs in several.values() for i in hs)
            assert visit.sum() < n
