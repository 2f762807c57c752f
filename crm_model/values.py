"""Records made storable alike on SQLite and PostgreSQL, before anything is written.

PostgreSQL refuses a NUL character in text and in JSON (``\\u0000``), a lone UTF-16
surrogate (not UTF-8), and NaN or Infinity in JSON; SQLite takes all of them. A
record carrying one would fail its whole page on PostgreSQL, on every rerun. So every
record is cleaned here, the same way for both warehouses, and each change is kept as
a field warning (the record still loads; nothing is changed silently):

- NUL characters are removed from text and from keys;
- a lone surrogate becomes U+FFFD (the replacement character);
- NaN and +/-Infinity become the text "NaN", "Infinity", "-Infinity".

Numbers out of a column's range are checked per column in :mod:`crm_model.validate`.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import math
import re
from typing import Any

import orjson

from crm_model.load import JsonText, json_default
from crm_model.mapping.values import FieldWarning

_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_WARNINGS = 5  # per record: the first few places are enough to find the problem


def dumps(record: Any, allow_nan: bool = False) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=json_default, allow_nan=allow_nan)


_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def clean_record(record: Any) -> tuple[Any, JsonText, str, list[FieldWarning]]:
    """(the record as it will be stored, its canonical JSON, that JSON's SHA-1, what was changed).

    One serialisation serves the raw landing and its change-detection hash. orjson
    writes what ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))``
    writes for the JSON a source sends; what it refuses (lone surrogates, integers
    beyond 64 bits) and what it would write silently as null (NaN, Infinity) take the
    slow path, which cleans the record and says what it changed.
    """
    try:
        data = orjson.dumps(record, default=json_default, option=_SORTED)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        data = None
    if data is not None and b"\\u0000" not in data and (b"null" not in data or _finite(record, data)):
        return record, JsonText(data.decode()), _sha1(data), []
    try:
        dump = dumps(record)
    except ValueError:  # NaN or Infinity somewhere
        dump = None
    if dump is not None and "\\u0000" not in dump and not _SURROGATE.search(dump):
        return record, JsonText(dump), _sha1(dump.encode()), []
    changes: list[FieldWarning] = []
    cleaned = _clean(record, "", changes)
    dump = dumps(cleaned)
    return cleaned, JsonText(dump), _sha1(dump.encode()), changes[:MAX_WARNINGS]


def _finite(record: Any, data: bytes) -> bool:
    """Whether no float NaN or Infinity hides in the record that orjson wrote as ``data``.

    First in C, about a third of the cost of reading ``data`` back: marshal writes each
    float as its 8 IEEE-754 bytes, little-endian, and NaN and the infinities have every
    exponent bit set, so their last byte is 0x7F or 0xFF. A marshalled record holding
    neither byte anywhere holds no such float. Where one is there for another reason (a
    negative integer, a string 127 or 255 characters long, a DEL character), or
    marshal refuses the record (dates, Decimals, subclasses), the JSON is read back:
    orjson writes NaN and Infinity as null, so it then differs from the record (None is
    not NaN), compared in C. A record that does not come back equal for another reason
    (tuples, dates, Decimals, float subclasses) is walked in Python.
    """
    try:
        packed = marshal.dumps(record)
    except ValueError:  # not made of plain JSON values only
        packed = None
    if packed is not None and b"\x7f" not in packed and b"\xff" not in packed:
        return True
    return orjson.loads(data) == record or not _non_finite(record)


def _non_finite(value: Any) -> bool:
    """Whether a float NaN or Infinity hides in the record (orjson would write it as null)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_non_finite(v) for v in value)
    return False


def _sha1(data: bytes) -> str:
    # hashlib lets go of the GIL for inputs of 2 KB and more, and getting it back from
    # the busy writer thread costs up to a switch interval (5 ms) per record: hashing
    # in smaller pieces keeps the GIL, at the same digest.
    if len(data) < 2048:
        return hashlib.sha1(data).hexdigest()
    digest = hashlib.sha1()
    view = memoryview(data)
    for start in range(0, len(data), 2000):
        digest.update(view[start:start + 2000])
    return digest.hexdigest()


def _clean(value: Any, path: str, changes: list[FieldWarning]) -> Any:
    if isinstance(value, str):
        return _clean_text(value, path or "(record)", changes)
    if isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        changes.append(FieldWarning(path or "(record)", text, f"{path}: {text} is not a number JSON can hold; "
                                    f"kept as the text {text!r}"))
        return text
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            name = _clean_text(k, f"{path}.{k!r}" if path else repr(k), changes) if isinstance(k, str) else k
            out[name] = _clean(v, f"{path}.{name}" if path else str(name), changes)
        return out
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{path}[{i}]", changes) for i, v in enumerate(value)]
    return value


def _clean_text(value: str, path: str, changes: list[FieldWarning]) -> str:
    out = value
    if "\x00" in out:
        out = out.replace("\x00", "")
        changes.append(FieldWarning(path, _excerpt(value), f"{path}: NUL characters removed"))
    if _SURROGATE.search(out):
        out = _SURROGATE.sub("\ufffd", out)
        changes.append(FieldWarning(path, _excerpt(out), f"{path}: unpaired surrogate replaced by U+FFFD"))
    return out


def _excerpt(value: str, limit: int = 80) -> str:
    shown = value.replace("\x00", "\\0")
    shown = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
    return shown if len(shown) <= limit else shown[:limit] + "..."
