"""Probabilistic record linkage: a Fellegi-Sunter model trained without labels.

Pure functions on column arrays (no database here), so they are tested and
benchmarked on their own:

1. :func:`normalise` turns person rows into comparable columns (lower case, accents
   and non-Latin letters folded to ASCII, nicknames to a canonical first name).
2. :func:`candidate_pairs` blocks: records that agree on at least one blocking key
   (name pair in either order, last name + birth date, postal code + name prefix, ...)
   become candidate pairs. Each key sorts the records and pairs only neighbours
   within an equal-key run, at most ``window`` apart, so the cost grows near-linearly.
3. :func:`compare` gives each pair one comparison level per field (exact, close,
   similar, different, or missing), with Jaro-Winkler from rapidfuzz.
4. :func:`train` estimates u (chance agreement) from random record pairs and m (agreement
   among true matches) by expectation-maximisation over the candidate pairs' level
   patterns: no labels are used.
5. :func:`score` turns each pair's levels into a match weight and a probability.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz.distance import JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist

# ----------------------------------------------------------------------------- normalise

_PUNCT = {ord(c): " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r"}
# Non-Latin letters that NFKD does not decompose: a small transliteration (Cyrillic, Greek).
_TRANSLIT = {
    **dict(zip("абвгдезийклмнопрстуфыэ", "abvgdezijklmnoprstufye", strict=True)),
    "ё": "e", "ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ь": "",
    "ю": "yu", "я": "ya", "є": "ye", "і": "i", "ї": "yi", "ґ": "g",
    **dict(zip("αβγδεζηθικλμνξοπρστυφχψω", "abgdezitiklmnxoprstyfxpo", strict=True)),
    "ς": "s", "ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th",
}
_TRANSLIT_TABLE = str.maketrans({k: v for k, v in _TRANSLIT.items()})

# Common English and German nicknames -> one canonical given name.
NICKNAMES: dict[str, str] = {}
for canon, nicks in {
    "william": "bill billy will willy liam", "robert": "bob bobby rob robbie bert",
    "richard": "dick rick ricky rich", "james": "jim jimmy jamie", "john": "jack johnny jon",
    "michael": "mike mikey mick", "thomas": "tom tommy", "joseph": "joe joey",
    "charles": "charlie chuck chas", "edward": "ed eddie ted ned", "anthony": "tony",
    "christopher": "chris kit", "daniel": "dan danny", "david": "dave davy",
    "matthew": "matt", "nicholas": "nick nicky", "andrew": "andy drew", "benjamin": "ben benny",
    "samuel": "sam sammy", "alexander": "alex sasha sandy", "steven": "steve stephen",
    "jonathan": "jon jonny", "timothy": "tim timmy", "patrick": "pat paddy",
    "katherine": "kate katie kathy cathy catherine kathryn kat kitty", "elizabeth": "liz lizzy beth betty eliza lisa elise",
    "margaret": "maggie meg peggy marge greta", "jennifer": "jen jenny", "susan": "sue suzy susie",
    "rebecca": "becky becca", "deborah": "deb debbie", "patricia": "pat patty trish",
    "victoria": "vicky tori", "jessica": "jess jessie", "alexandra": "alex sandra lexi",
    "christine": "chris christina tina", "abigail": "abby", "dorothy": "dot dottie",
    "johannes": "hans jan", "wolfgang": "wolf", "friedrich": "fritz", "josef": "sepp",
}.items():
    for nick in nicks.split():
        NICKNAMES.setdefault(nick, canon)


def fold(value: str | None) -> str:
    """Lower-case ASCII words: 'Zoë  O'Brien-Smith' -> 'zoe o brien smith'."""
    if not value:
        return ""
    s = value.lower()
    if not s.isascii():
        s = s.translate(_TRANSLIT_TABLE)
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return " ".join(s.translate(_PUNCT).split())


def fold_all(values: Iterable[str | None], memo: dict | None = None) -> list[str]:
    """:func:`fold` of each value, worked out once per distinct value (names and cities
    repeat); ``memo``: see :func:`map_distinct`."""
    return map_distinct(fold, values, memo)


_DIGITS = re.compile(r"\D+")

# Field -> how it is compared. "name": exact / nickname-or-initial / JW >= .92 / JW >= .8;
# "text": exact / JW >= .92 / JW >= .8; "code": exact / one edit; "exact": exact only.
# The email local part is a code: "larry.yanika42" and "larry.yaniku17" are close only
# because the names are, and counting that again made namesakes one person.
FIELDS: dict[str, str] = {
    "first_name": "name", "last_name": "name", "birth_date": "code", "street": "text",
    "postal_code": "code", "city": "text", "region": "exact", "country": "exact",
    "company": "text", "email_local": "code", "phone": "code",
}
LEVELS = {"name": ("missing", "exact", "nickname or initial", "jaro-winkler >= 0.92",
                   "jaro-winkler >= 0.80", "different"),
          "text": ("missing", "exact", "jaro-winkler >= 0.92", "jaro-winkler >= 0.80", "different"),
          "code": ("missing", "exact", "one edit", "different"),
          "exact": ("missing", "exact", "different")}


@dataclass
class Columns:
    """Normalised person columns, one list per field, all of one length."""

    n: int
    values: dict[str, list[str]] = field(default_factory=dict)  # emptied once coded (see _codes)
    first_canon: list[str] = field(default_factory=list)  # the same
    kinds: dict[str, str] = field(default_factory=dict)  # field -> comparison kind
    initial: dict[str, np.ndarray] = field(default_factory=dict)  # name field -> first letter
    short: dict[str, np.ndarray] = field(default_factory=dict)  # name field -> is a lone initial
    codes: dict[str, np.ndarray] | None = None  # field -> integer code per record (see _codes)
    words: np.ndarray | None = None  # code -> value
    hashes: np.ndarray | None = None  # code -> word_hashes of its value (see _word_hashes_of)
    keys: dict[str, np.ndarray] | None = None  # blocking keys (see candidate_pairs)


def normalise(rows: Sequence[dict], extra: Iterable[str] = ()) -> Columns:
    """Comparable columns of person rows (dicts with the person fields; ``extra`` fields compared as codes)."""
    names = {"first_name", "last_name", "birth_date", "street", "postal_code", "city", "region", "company",
             "country", "email", "phone", *extra}
    return normalise_columns({name: [r.get(name) for r in rows] for name in names}, len(rows), extra)


def normalise_columns(fields: Mapping[str, list], n: int, extra: Iterable[str] = (), *,
                      first: list[str] | None = None, last: list[str] | None = None,
                      memo: dict[str, dict] | None = None, keys_only: bool = False) -> Columns:
    """:func:`normalise` of person fields given as columns (field -> one value per record);
    ``first``/``last``: the first and last names already folded (:func:`fold_all`);
    ``memo``: field -> the values normalised so far, kept between calls (an incremental
    run normalises its pending records to find their neighbours, then again among them);
    ``keys_only``: only the fields :func:`blocking_keys` reads (no city, region, company,
    country, nor the names' initials: an incremental run's look-up of its neighbours)."""
    cols = Columns(n)

    def seen(name: str) -> dict | None:
        return None if memo is None else memo.setdefault(name, {})

    def column(name: str) -> list:
        values = fields.get(name)
        return values if values is not None else [None] * n

    first = first if first is not None else fold_all(column("first_name"), seen("first_name"))
    last = last if last is not None else fold_all(column("last_name"), seen("last_name"))
    if not keys_only:
        cols.values["first_name"] = first
    cols.values["last_name"] = last
    cols.first_canon = [NICKNAMES.get(f, f) for f in first]
    cols.values["birth_date"] = map_distinct(lambda x: _DIGITS.sub("", str(x)) if x else "", column("birth_date"),
                                             seen("birth_date"))
    cols.values["street"] = fold_all(column("street"), seen("street"))
    cols.values["postal_code"] = map_distinct(lambda x: fold(x).replace(" ", ""), column("postal_code"),
                                              seen("postal_code"))
    for name in () if keys_only else ("city", "region", "company"):
        cols.values[name] = fold_all(column(name), seen(name))
    if not keys_only:
        cols.values["country"] = map_distinct(lambda x: (x or "").lower(), column("country"), seen("country"))
    cols.values["email_local"] = map_distinct(lambda x: fold((x or "").partition("@")[0]), column("email"),
                                              seen("email"))
    cols.values["phone"] = map_distinct(lambda x: _DIGITS.sub("", x) if x else "", column("phone"), seen("phone"))
    cols.kinds = dict(FIELDS)
    for name in () if keys_only else ("first_name", "last_name"):
        cols.initial[name] = np.fromiter((ord(x[0]) if x else 0 for x in cols.values[name]), dtype=np.int64, count=n)
        cols.short[name] = np.fromiter((len(x) == 1 for x in cols.values[name]), dtype=bool, count=n)
    for name in extra:
        cols.values[name] = [fold(str(x)) if x not in (None, "") else "" for x in column(name)]
        cols.kinds[name] = "code"
    return cols


def map_distinct(fn, values: Iterable, memo: dict | None = None) -> list:
    """``fn`` of each value, worked out once per distinct value (they repeat); the
    values are looked up by a C loop (map), no Python step per value. ``memo``: value ->
    ``fn`` of it, of values seen before (by calls with the same ``fn``), added to."""
    values = values if isinstance(values, list) else list(values)
    if memo is None:
        done = {x: fn(x) for x in dict.fromkeys(values)}
    else:
        done = memo
        for x in dict.fromkeys(values).keys() - memo.keys():
            memo[x] = fn(x)
    return list(map(done.__getitem__, values))


def name_key(first: str, last: str) -> str:
    """Who a record names, for counting the distinct people behind a shared identifier."""
    return f"{NICKNAMES.get(first, first)}|{last}" if (first or last) else ""


# ----------------------------------------------------------------------------- blocking


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def word_hashes(words: Sequence[str]) -> np.ndarray:
    """A stable 64-bit hash per word (FNV-1a of its first 64 UTF-8 bytes); 0 for "".

    Stable across runs and processes (unlike ``hash()``), so blocking keys can be stored
    in the warehouse and looked up by a later run."""
    if len(words) > _HASH_CHUNK:  # a chunk at a time: the bytes and their matrix of one chunk only
        return np.concatenate([word_hashes(words[start:start + _HASH_CHUNK])
                               for start in range(0, len(words), _HASH_CHUNK)])
    encoded = [w.encode()[:64] for w in words]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    out = np.zeros(len(encoded), dtype=np.uint64)
    width = int(lengths.max(initial=0))
    if not width:
        return out
    order = np.argsort(-lengths, kind="stable")  # longest first: the rows still going are a prefix
    data = np.array([encoded[i] for i in order], dtype=f"S{width}").view(np.uint8).reshape(len(encoded), width)
    live = np.searchsorted(-lengths[order], -np.arange(width), side="left")  # rows longer than j, per j
    h = np.full(len(encoded), _FNV_OFFSET, dtype=np.uint64)
    for j in range(width):
        k = int(live[j])
        h[:k] = (h[:k] ^ data[:k, j]) * _FNV_PRIME
    h[lengths[order] == 0] = 0
    out[order] = h
    return out


# Words hashed per chunk by word_hashes (the distinct values of a million records: 1.5
# million words, whose bytes and byte matrix all at once took about 100 MB)
_HASH_CHUNK = 100_000


def _word_hashes_of(cols: Columns) -> np.ndarray:
    """:func:`word_hashes` of the vocabulary of :func:`_codes`, worked out once per run
    (blocking keys, term frequencies, frequency bits)."""
    if cols.hashes is None:
        cols.hashes = word_hashes(_codes(cols)[1])
    return cols.hashes


def _mix(tag: str, *parts: np.ndarray) -> np.ndarray:
    """One non-negative int64 key from a key name and hashed values (-1 where a part is 0: missing)."""
    h = np.full(parts[0].shape, word_hashes([tag])[0], dtype=np.uint64)
    missing = np.zeros(parts[0].shape, dtype=bool)
    for part in parts:
        h = (h ^ part) * _FNV_PRIME
        h ^= h >> np.uint64(31)
        missing |= part == 0
    key = (h >> np.uint64(1)).astype(np.int64)
    key[missing] = -1
    return key


def blocking_keys(cols: Columns) -> dict[str, np.ndarray]:
    """Named blocking keys per record, as non-negative 64-bit integers (-1 = no key).

    Each key is a stable hash of its name and values (:func:`word_hashes`), the same in
    every run, so the keys of resolved records are kept in ``person_key`` and an
    incremental run finds a new record's candidates by looking its keys up there. Built
    from the integer codes of :func:`_codes`: a word is hashed, and a derived key (a
    3-letter prefix) worked out, once per distinct value."""
    codes, words = _codes(cols)
    hashed = _word_hashes_of(cols)

    def derived(fn, *used: np.ndarray) -> np.ndarray:
        """code -> hash of fn(word), for the words the ``used`` columns hold."""
        table = np.zeros(len(words), dtype=np.uint64)
        present = np.unique(np.concatenate(used))
        table[present] = word_hashes([fn(w) for w in words[present]])
        return table

    lengths = None  # of each word, counted once per distinct word

    def long(name: str, code: np.ndarray, length: int) -> np.ndarray:
        nonlocal lengths
        if lengths is None:
            lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        short = lengths[code] < length
        return _mix(name, np.where(short, np.uint64(0), hashed[code]))

    canon, last = codes["first_canon"], codes["last_name"]
    prefix3 = derived(lambda w: w[:3], last, canon)
    h_canon, h_last, h_dob, h_postal = hashed[canon], hashed[last], hashed[codes["birth_date"]], \
        hashed[codes["postal_code"]]
    keys = {
        # the name pair in either order: swapped first/last names still meet
        "names": _mix("names", np.minimum(h_canon, h_last), np.maximum(h_canon, h_last)),
        "last+dob": _mix("last+dob", h_last, h_dob),
        "first+dob": _mix("first+dob", h_canon, h_dob),
        "postal+last3": _mix("postal+last3", h_postal, prefix3[last]),
        "postal+first3": _mix("postal+first3", h_postal, prefix3[canon]),
        "dob+postal": _mix("dob+postal", h_dob, h_postal),
        "street+postal": _mix("street+postal", hashed[codes["street"]], h_postal),
        "email_local": long("email_local", codes["email_local"], 4),
        "phone": long("phone", codes["phone"], 6),
        # No key for a surname with a given name's initial or a phonetic skeleton: at 100,000
        # generated records the skeleton + initial key found 272 matched pairs no other key
        # found, 220 of them wrong (relatives), and surname + initial cut pair F1 from
        # 0.975 to 0.963; "W Smith" still meets "William Smith" through a birth date, postal
        # code, street, email name or phone.
    }
    for name, kind in cols.kinds.items():
        if name not in FIELDS and kind == "code":
            keys[name] = long(name, codes[name], 4)
    return keys


def candidate_pairs(cols: Columns, *, window: int = 40, only: np.ndarray | None = None) -> np.ndarray:
    """Pairs (i < j) sharing a blocking key, as an (n, 2) int array without repeats.

    ``only``: a boolean mask; keep pairs with at least one record in it (incremental runs).
    """
    found = []
    if cols.keys is None:  # incremental runs block twice: the keys are worked out once
        cols.keys = blocking_keys(cols)
    for ids in cols.keys.values():
        keep = np.flatnonzero(ids >= 0)
        if keep.size < 2:
            continue
        order = keep[np.argsort(ids[keep], kind="stable")]
        sorted_ids = ids[order]
        for d in range(1, window + 1):
            same = sorted_ids[d:] == sorted_ids[:-d]
            if not same.any():
                break
            a, b = order[:-d][same], order[d:][same]
            if only is not None:
                hit = only[a] | only[b]
                a, b = a[hit], b[hit]
            # each pair packed into one int64 as it is found (half the memory of (i, j) rows)
            found.append(np.minimum(a, b) * cols.n + np.maximum(a, b))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    packed = np.concatenate(found)
    del found
    packed = np.unique(packed)
    return np.stack([packed // cols.n, packed % cols.n], axis=1)


# ----------------------------------------------------------------------------- compare


# the dtype of the codes: int32 (a million records' 12 columns: 48 MB less than int64);
# arithmetic on two codes widens first (see _similarity)
_CODE = np.int32


def _codes(cols: Columns) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every field's values as integer codes into one vocabulary (0 = empty), computed once.

    One vocabulary for all fields, so a first name can be compared with a last name
    (swapped names) by code."""
    if cols.codes is None:
        vocab: dict[str, int] = {"": 0}
        codes = {}
        # the values' lists go as they are coded (only the codes and the words are read
        # past here): at 1,000,000 records 12 lists of 8 MB, while the vocabulary is built
        todo = [*cols.values.items(), ("first_canon", cols.first_canon)]
        cols.values, cols.first_canon = {}, []
        todo.reverse()
        while todo:
            name, vals = todo.pop()
            # codes handed out per distinct value in order of first appearance: first the
            # column's own (a small dict, looked up by a C loop (map): no Python step per
            # record), then each distinct value's in the vocabulary (a lookup per record in
            # the vocabulary of a million words missed the CPU caches: at 1,000,000 records
            # 0.6 s for a column of 22,000 birth dates; 3.4 s -> 1.6 s for the 12 columns)
            own = dict(zip(dict.fromkeys(vals), itertools.count()))
            local = np.fromiter(map(own.__getitem__, vals), dtype=_CODE, count=cols.n)
            table = np.fromiter((vocab.setdefault(x, len(vocab)) for x in own), dtype=_CODE, count=len(own))
            codes[name] = table[local]
            del vals, own, local, table
        # the codes are 0, 1, 2, ... in the vocabulary's order
        words = np.fromiter(vocab, dtype=object, count=len(vocab))
        cols.codes, cols.words = codes, words
    return cols.codes, cols.words


def _similarity(words: np.ndarray, ca: np.ndarray, cb: np.ndarray, scorer) -> np.ndarray:
    """``scorer`` of each pair of codes, computed once per distinct pair of values."""
    if not ca.size:
        return np.empty(0)
    key = ca.astype(np.int64) * len(words) + cb
    distinct, inverse = np.unique(key, return_inverse=True)
    left, right = words[distinct // len(words)], words[distinct % len(words)]
    values = np.asarray(cpdist(list(left), list(right), scorer=scorer, workers=1))
    return values[inverse]


def compare(cols: Columns, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """Comparison level per field per pair (int8; 0 = missing on either side)."""
    a, b = pairs[:, 0], pairs[:, 1]
    out: dict[str, np.ndarray] = {}
    codes, words = _codes(cols)
    canon = codes["first_canon"]
    for name, kind in cols.kinds.items():
        col = codes[name]
        va, vb = col[a], col[b]
        missing = (va == 0) | (vb == 0)
        exact = (va == vb) & ~missing
        level = np.zeros(len(pairs), dtype=np.int8)
        rest = ~missing & ~exact
        if kind == "exact":
            level[exact], level[rest] = 1, 2
        elif kind == "code":
            level[exact] = 1
            idx = np.flatnonzero(rest)
            dist = _similarity(words, va[idx], vb[idx], Levenshtein.distance)
            level[idx] = np.where(dist <= 1, 2, 3)
        else:
            level[exact] = 1
            idx = np.flatnonzero(rest)
            sim = _similarity(words, va[idx], vb[idx], JaroWinkler.normalized_similarity)
            if kind == "name":
                ia, ib = a[idx], b[idx]
                if name == "first_name":
                    alias = canon[ia] == canon[ib]
                else:
                    alias = np.zeros(idx.size, dtype=bool)
                initial = (cols.short[name][ia] | cols.short[name][ib]) & (cols.initial[name][ia] == cols.initial[name][ib])
                level[idx] = np.select([alias | initial, sim >= 0.92, sim >= 0.8], [2, 3, 4], 5)
            else:
                level[idx] = np.select([sim >= 0.92, sim >= 0.8], [2, 3], 4)
        out[name] = level
    _swapped_names(cols, pairs, out)
    return out


def _swapped_names(cols: Columns, pairs: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """First and last name typed the other way round count as both names exact."""
    codes, _ = _codes(cols)
    first, last = codes["first_name"], codes["last_name"]
    a, b = pairs[:, 0], pairs[:, 1]
    bad = (out["first_name"] > 1) & (out["last_name"] > 1)
    idx = np.flatnonzero(bad)
    if idx.size:
        swapped = (first[a[idx]] == last[b[idx]]) & (last[a[idx]] == first[b[idx]])
        out["first_name"][idx[swapped]] = 1
        out["last_name"][idx[swapped]] = 1


# Fields the members of one household share: a surname, an address, a landline, a family business.
HOUSEHOLD_FIELDS = ("last_name", "street", "postal_code", "city", "region", "country", "phone", "company")


def plausible(levels: dict[str, np.ndarray], weights: dict[str, np.ndarray] | None = None, *,
              household: Iterable[str] = HOUSEHOLD_FIELDS, override: float = 8.0) -> np.ndarray:
    """Pairs that may be one person at all (the household guard).

    A pair whose given names differ outright and whose birth dates differ outright or are
    missing on one side is two people, unless
    the fields a household does not share (the email name, a compared id number; not the
    given name, birth date or ``household`` fields) add at least ``override`` bits of
    evidence: an id number agreeing is a mistyped record, not a relative. Without this
    gate the relatives of a household (same surname, address and landline) look like
    one person, and EM even learns them as matches. ``weights``: ``Model.weights()``;
    without them the guard has no exception."""
    first, born = levels["first_name"], levels["birth_date"]
    suspect = (first == len(LEVELS["name"]) - 1) & ((born == len(LEVELS["code"]) - 1) | (born == 0))
    if weights is None or not suspect.any():
        return ~suspect
    skip = {"first_name", "birth_date", *household}
    idx = np.flatnonzero(suspect)
    personal = np.zeros(idx.size)
    for f, w in weights.items():
        if f not in skip and f in levels:
            personal += w[levels[f][idx]]
    ok = np.ones(len(first), dtype=bool)
    ok[idx] = personal >= override
    return ok


# ----------------------------------------------------------------------------- model


@dataclass
class Model:
    """m and u per field and level (index = level; level 0, missing, is neutral)."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior: float  # share of candidate pairs that match
    # common given and family names (see term_frequencies): {"n": records, field: {hash: count}}
    tf: dict | None = None

    def weights(self) -> dict[str, np.ndarray]:
        return {f: np.array([0.0] + [math.log2(self.m[f][k] / self.u[f][k]) for k in range(1, len(self.m[f]))])
                for f in self.m}

    def to_json(self) -> dict:
        return {"m": self.m, "u": self.u, "prior": self.prior, "tf": self.tf}

    @classmethod
    def from_json(cls, data: dict) -> Model:
        return cls(data["m"], data["u"], data["prior"], data.get("tf"))


def _levels(cols: Columns, name: str) -> int:
    return len(LEVELS[cols.kinds[name]])


def _random_pairs(n: int, count: int, seed: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size=count)
    b = rng.integers(0, n, size=count)
    keep = a != b
    return np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[keep]


def _u_probabilities(cols: Columns, u_sample: int) -> dict[str, list[float]]:
    """u per field and level: exact agreement from value frequencies, the rest from random pairs."""
    fields = list(cols.kinds)
    codes, _ = _codes(cols)
    u: dict[str, list[float]] = {}
    if cols.n >= 2:
        rand = compare(cols, _random_pairs(cols.n, min(u_sample, cols.n * (cols.n - 1) // 2)))
    else:
        rand = {f: np.zeros(0, dtype=np.int8) for f in fields}
    for f in fields:
        k = _levels(cols, f)
        # chance of exact agreement from the value frequencies (exact even for rare values);
        # how the other pairs spread over the fuzzy levels from the random sample
        tally = np.bincount(codes[f])[1:]  # records per value (code 0: empty)
        tally = tally[tally > 0]
        freq = tally.astype(float) if tally.size else np.ones(1)
        p_exact = float(((freq / freq.sum()) ** 2).sum())
        counts = np.bincount(rand[f], minlength=k)[2:].astype(float) + 1.0  # Laplace smoothing
        u[f] = [0.0] + [max(x, 1e-7) for x in [p_exact, *((1 - p_exact) * counts / counts.sum())]]
    return u


def _distinct_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a matrix of levels (small non-negative ints) in lexicographic
    order, and how often each occurs: ``np.unique(matrix, axis=0, return_counts=True)``,
    with each row packed into one int64 (the first column highest) so numpy sorts plain
    integers (at 1,000,000 records, the 2 x ~6 million candidate pairs of training:
    3.1 s -> well under 1 s)."""
    width = int(matrix.max(initial=0)).bit_length() or 1
    if matrix.min(initial=0) < 0 or width * matrix.shape[1] > 63:
        return np.unique(matrix, axis=0, return_counts=True)
    packed = np.zeros(len(matrix), dtype=np.int64)
    for j in range(matrix.shape[1]):
        packed = (packed << width) | matrix[:, j].astype(np.int64)
    distinct, counts = np.unique(packed, return_counts=True)
    shifts = width * np.arange(matrix.shape[1] - 1, -1, -1, dtype=np.int64)
    rows = ((distinct[:, None] >> shifts) & ((1 << width) - 1)).astype(matrix.dtype)
    return rows, counts


def train(cols: Columns, pairs: np.ndarray, levels: dict[str, np.ndarray], *,
          iterations: int = 40, u_sample: int = 50_000, known: dict[str, np.ndarray] | None = None,
          known_min: int = 100, u: dict[str, list[float]] | None = None) -> Model:
    """u from random pairs (almost all non-matches), then m and the prior by EM.

    ``known``: the levels of pairs that share an identifier (an email or phone held by one
    name). With at least ``known_min`` of them, m of every field but the email name and the
    phone (which such pairs agree on by construction) is counted on them and held fixed;
    EM then estimates the rest. EM alone lets pairs that share a name and little else into
    its match class (on the generator it learned that 22% of matches have different birth
    dates; 2% do)."""
    fields = list(cols.kinds)
    if u is None:
        u = _u_probabilities(cols, u_sample)
    # EM over distinct level patterns (a few thousand at most), weighted by their counts
    if len(pairs) == 0:
        return Model({f: [0.0] + [1.0 / (_levels(cols, f) - 1)] * (_levels(cols, f) - 1) for f in fields}, u, 0.0)
    matrix = np.stack([levels[f] for f in fields], axis=1)
    patterns, counts = _distinct_rows(matrix)
    counts = counts.astype(float)
    m: dict[str, list[float]] = {}
    for f in fields:  # start: matches mostly agree exactly
        k = _levels(cols, f)
        start = np.full(k - 1, 0.05 / max(k - 2, 1))
        start[0] = 0.95
        m[f] = [0.0] + list(start / start.sum())
    fixed: set[str] = set()
    if known is not None and len(next(iter(known.values()), ())) >= known_min:
        for f in fields:
            if f in ("email_local", "phone") or f not in known:
                continue
            k = _levels(cols, f)
            tally = np.bincount(known[f], minlength=k)[1:] + 0.5
            if tally.sum() >= known_min:  # enough pairs with the field filled on both sides
                m[f] = [0.0] + list(tally / tally.sum())
                fixed.add(f)
    prior = 0.1
    for _ in range(iterations):
        logm = np.zeros(len(patterns))
        logu = np.zeros(len(patterns))
        for j, f in enumerate(fields):
            lv = patterns[:, j]
            mf, uf = np.asarray(m[f]), np.asarray(u[f])
            present = lv > 0
            logm[present] += np.log(mf[lv[present]])
            logu[present] += np.log(uf[lv[present]])
        odds = np.log(prior) - np.log1p(-prior) + logm - logu
        p = 1.0 / (1.0 + np.exp(-np.clip(odds, -50, 50)))
        w = p * counts
        prior = float(np.clip(w.sum() / counts.sum(), 1e-6, 1 - 1e-6))
        for j, f in enumerate(fields):
            if f in fixed:
                continue
            k = _levels(cols, f)
            agg = np.bincount(patterns[:, j], weights=w, minlength=k)[1:] + 1e-3
            m[f] = [0.0] + list(agg / agg.sum())
    return Model(m, u, prior)


# The prior a pair is scored with is at most this. EM estimates the share of matches among
# the candidate pairs, and blocking on a name makes that share high (0.6-0.8 on the
# generator); with it a pair that shares a given name and a similar surname and nothing
# else (a Bayes factor of 10) scored as a match. At 0.05 a pair needs about 8.5 bits of
# evidence for 0.95. FEBRL4 is unchanged by it (F1 0.9994 with 0.5, 0.2, 0.1 and 0.05);
# on 100,000 generated records pair F1 is 0.974 with 0.1 and 0.980 with 0.05.
PRIOR_CAP = 0.05


def term_frequencies(cols: Columns, u: dict[str, list[float]]) -> dict:
    """The given and family names more common than average (more than ``n * u`` records,
    u the chance two random records agree exactly), as {hash: count} (no names stored),
    with the number of records: exact agreement on one of them is weaker evidence than
    the average agreement the model's weights assume (see :func:`frequency_bits`)."""
    codes, words = _codes(cols)
    out: dict = {"n": cols.n}
    hashed = _word_hashes_of(cols)
    for name in ("first_name", "last_name"):
        count = np.bincount(codes[name], minlength=len(words))
        count[0] = 0
        common = np.flatnonzero(count > u[name][1] * cols.n)
        out[name] = {str(int(hashed[c])): int(count[c]) for c in common}
    return out


def frequency_bits(model: Model, cols: Columns, pairs: np.ndarray, levels: dict[str, np.ndarray],
                   total: int, holding: dict[int, int] | None = None) -> np.ndarray:
    """Evidence (bits, never positive) to add for agreeing on a common name.

    The weights assume an exact name agreement is as likely by chance as the average one
    (u); for a common name it is likelier (its frequency), and the namesakes of a name grow
    with the square of the warehouse. Where both names agree, the chance is that of the
    whole name: the records of this warehouse (``total``) with the same name pair in
    either order, counted among ``cols``, or the number of persons holding that name pair
    in ``holding`` if larger (an incremental run reads at most 100 persons per key); where
    one name agrees, that name's frequency in the
    model (:func:`term_frequencies`). On the generator at 1,000,000 records, pairs
    agreeing on a full name and nothing else scored 0.99 and made 25% of the pairs wrong."""
    bits = np.zeros(len(pairs))
    if not len(pairs) or "first_name" not in levels or "last_name" not in levels:
        return bits
    codes, words = _codes(cols)
    a = pairs[:, 0]
    both = (levels["first_name"] == 1) & (levels["last_name"] == 1)
    if model.tf:
        hashed = None
        for name in ("first_name", "last_name"):
            common = model.tf.get(name) or {}
            one = np.flatnonzero((levels[name] == 1) & ~both)
            if not common or not one.size:
                continue
            if hashed is None:
                hashed = _word_hashes_of(cols)
            present = np.unique(codes[name][a[one]])
            count = np.zeros(len(words))
            count[present] = [common.get(str(int(h)), 0) for h in hashed[present]]
            share = count[codes[name][a[one]]] / max(model.tf["n"], 1)
            with np.errstate(divide="ignore"):
                bits[one] = np.minimum(0.0, np.log2(model.u[name][1] / np.maximum(share, 1e-300)))
    idx = np.flatnonzero(both)
    if idx.size:
        keys = cols.keys if cols.keys is not None else blocking_keys(cols)
        names = keys["names"]
        distinct, inverse, count = np.unique(names, return_inverse=True, return_counts=True)
        if holding:
            count = np.maximum(count, [holding.get(k, 0) for k in distinct.tolist()])
        share = count[inverse[a[idx]]] / max(total, 1)
        chance = model.u["first_name"][1] * model.u["last_name"][1]
        bits[idx] = np.minimum(0.0, np.log2(chance / share))
    return bits


def score(model: Model, levels: dict[str, np.ndarray], *, guard: bool = True,
          household: Iterable[str] = HOUSEHOLD_FIELDS, override: float = 8.0,
          extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match weight (log2 Bayes factor) and probability per pair; with ``guard``, pairs
    that fail :func:`plausible` get probability 0. ``extra``: bits to add per pair
    (:func:`frequency_bits`).

    An email local part one edit away counts for nothing when both names agree exactly:
    namesakes' addresses are made of the same name (``anna.bonu30`` and ``anna.bonu31``)."""
    weights = model.weights()
    total = None
    for f, w in weights.items():
        if f not in levels:
            continue
        contrib = w[levels[f]]
        if f == "email_local" and "first_name" in levels and "last_name" in levels:
            contrib = np.where((levels[f] == 2) & (levels["first_name"] == 1) & (levels["last_name"] == 1),
                               0.0, contrib)
        total = contrib if total is None else total + contrib
    if total is None:
        return np.zeros(0), np.zeros(0)
    if extra is not None:
        total = total + extra
    prior = min(max(model.prior, 1e-6), PRIOR_CAP)
    log_odds = total * math.log(2) + math.log(prior / (1 - prior))
    prob = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -50, 50)))
    if guard and "first_name" in levels and "birth_date" in levels:
        prob = np.where(plausible(levels, weights, household=household, override=override), prob, 0.0)
    return total, prob


def evidence(cols: Columns, weights: dict[str, np.ndarray], levels: dict[str, np.ndarray], k: int,
             extra: np.ndarray | None = None, *, shared: dict | None = None) -> dict[str, dict]:
    """Per field of pair ``k``: the comparison level and its weight (``Model.weights()``),
    as :func:`score` counted it; ``extra`` (:func:`frequency_bits`) as "name frequency".
    ``shared``: a dict kept across calls, so pairs share one (read-only) dict per field and level."""
    out = {}
    names_agree = "first_name" in levels and "last_name" in levels and \
        levels["first_name"][k] == 1 and levels["last_name"][k] == 1
    for f in cols.kinds:
        lv = int(levels[f][k])
        if lv:
            weight = 0.0 if f == "email_local" and lv == 2 and names_agree else float(weights[f][lv])
            key = (f, lv, weight)
            found = shared.get(key) if shared is not None else None
            if found is None:
                found = {"level": LEVELS[cols.kinds[f]][lv], "weight": round(weight, 2)}
                if shared is not None:
                    shared[key] = found
            out[f] = found
    if extra is not None and extra[k] < 0:
        out["name frequency"] = {"level": "common name", "weight": round(float(extra[k]), 2)}
    return out


__all__ = ["HOUSEHOLD_FIELDS", "Columns", "Model", "candidate_pairs", "compare", "evidence", "fold",
           "frequency_bits", "map_distinct", "name_key", "normalise", "normalise_columns", "score",
           "term_frequencies", "train", "word_hashes"]
