"""crm_model.values.clean_record: one dump serves the raw landing and its hash, and a
NaN or Infinity is never stored as null, however deep it hides beside real nulls."""

import hashlib
import json
import math

from crm_model.values import clean_record


def test_a_record_with_nulls_is_stored_as_its_canonical_json():
    record = {"b": None, "a": [1, {"z": None, "y": 2.5}], "c": "x"}
    stored, dump, digest, changes = clean_record(record)
    expected = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert stored is record and changes == []
    assert dump == expected
    assert digest == hashlib.sha1(expected.encode()).hexdigest()


def test_nan_and_infinity_beside_nulls_become_text_with_a_warning():
    record = {"id": "1", "note": None, "lines": [{"qty": None, "score": float("nan")}, {"w": -math.inf}]}
    stored, dump, _, changes = clean_record(record)
    assert json.loads(dump) == {"id": "1", "note": None,
                                "lines": [{"qty": None, "score": "NaN"}, {"w": "-Infinity"}]}
    assert stored["lines"][0]["score"] == "NaN"
    assert sorted(c.field for c in changes) == ["lines[0].score", "lines[1].w"]


def test_a_record_that_does_not_read_back_equal_but_is_finite_keeps_its_numbers():
    # a tuple comes back from JSON as a list: the record is walked, nothing is changed
    record = {"id": "1", "pair": (1.5, None), "none": None}
    stored, dump, _, changes = clean_record(record)
    assert changes == [] and stored is record
    assert json.loads(dump) == {"id": "1", "pair": [1.5, None], "none": None}
