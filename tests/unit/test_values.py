"""crm_model.values.clean_record: one dump serves the raw landing and its hash, and a
NaN or Infinity is never stored as null, however deep it hides beside real nulls."""

import datetime as dt
import hashlib
import json
import math
import struct

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


def test_every_non_finite_float_is_found_whatever_else_the_record_holds():
    """NaN with any payload bits, both infinities, a float object shared by many fields,
    beside bytes that look alike (negative integers, long strings): none is stored as null."""
    odd_nan = struct.unpack("<d", struct.pack("<Q", 0x7FF0_0000_0000_0001))[0]
    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_0000))[0]
    shared = float("inf")
    for bad in (odd_nan, negative_nan, shared, -math.inf):
        for record in ({"a": None, "x": bad}, {"a": None, "n": -1, "s": "y" * 255, "l": [1.5, [bad, bad]]},
                       {"a": None, "t": (1, bad)}, {"a": None, "d": dt.date(2026, 1, 1), "x": bad}):
            _, dump, _, changes = clean_record(record)
            assert "null" in dump and changes, record
            assert all("NaN" in c.raw_value or "Infinity" in c.raw_value for c in changes)
    for fine in ({"a": None, "n": -1, "s": "y" * 255, "f": 1e308, "g": -0.0, "u": "ÿ\x7f"},
                 {"a": None, "f": 5e-324, "big": 2**70}):
        stored, dump, _, changes = clean_record(fine)
        assert changes == [] and stored is fine and json.loads(dump) == fine
