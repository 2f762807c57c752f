"""The Splink peer for identity resolution (benchmark only; runs in the bench's own
virtualenv with splink 5, made by ``bench/identity.py splink``).

    <venv>/bin/python bench/peer_splink.py --input records.csv --output clusters.csv

Deduplicates the records of ``bench/identity.py``'s generator (one csv: unique_id,
first_name, surname, dob, street, postcode, city, email, phone), set up as Splink's
tutorials set up a deduplication of people, on its default DuckDB backend (in memory,
every core):
name, date of birth, address, email and phone comparisons; prediction blocked on the
pairs of fields a duplicate keeps (typos, nicknames, swapped names, moved house); the
random-match probability from deterministic rules; u from random pairs, Splink's default
of a million (five million took 3-4x as long here at 100,000 records, 18.8-25 s against
6.0 s, and gave the same pair counts); m by EM on two blocking rules, no labels (first
name and surname; birth date and city: on birth date alone, as the tutorial at 50,000
records has it, EM took 120 s of a 145 s run at 1,000,000 records and 6.2 GB); pairs
clustered at match probability 0.95, the tutorial's threshold (0.99-0.9999 changed
little: the pairs it wrongly accepts are households, which score far above any of
them). Writes each record's cluster to ``--output`` and prints one JSON line of phase
timings. The clusters are scored by the caller.
"""

from __future__ import annotations

import argparse
import json
import time

import duckdb
import splink
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

PREDICT_RULES = [
    block_on("first_name", "surname"),
    block_on("surname", "dob"),
    block_on("first_name", "dob"),
    block_on("postcode", "dob"),
    block_on("street", "postcode"),
    block_on("email"),
    block_on("phone"),
    "l.first_name = r.surname AND l.surname = r.first_name",  # swapped names
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--threshold", type=float, default=0.95)
    args = parser.parse_args()
    phases: dict[str, float] = {}
    started = last = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        phases[name] = round(now - last, 2)
        last = now

    con = duckdb.connect()
    con.execute(f"CREATE TABLE records AS SELECT * FROM read_csv('{args.input}', header = true, all_varchar = true)")
    db_api = DuckDBAPI(con)
    records = db_api.register("records")
    phase("read")
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=PREDICT_RULES,
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.LevenshteinAtThresholds("street", 2),
            cl.LevenshteinAtThresholds("postcode", 1),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
        ],
    )
    linker = Linker(records, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob"), block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob", "city"))
    phase("train")
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    phase("predict")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=args.threshold)
    phase("cluster")
    con.execute(f"COPY (SELECT unique_id, cluster_id FROM {clusters.physical_name}) TO '{args.output}' (HEADER)")
    phase("write")
    print(json.dumps({"splink": splink.__version__, "duckdb": duckdb.__version__,
                      "seconds": round(time.perf_counter() - started, 2), "phases": phases}))


if __name__ == "__main__":
    main()
