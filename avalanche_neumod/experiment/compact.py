"""Compact, lossless storage of a JSON document: ``<name>.json.gz``.

A cell result is mostly long curves (per-iteration loss, accuracy, the NeuMoSync alpha
history as one record per logged iteration). Written as indented JSON they cost about 18
bytes a number; this codec stores the same document in about a seventh of that:

1. **Columns for records.** A list of at least :data:`MIN_LEN` dicts with the same keys
   is stored as one dict of columns, ``{COLUMNS: {key: [values...]}}``.
2. **Binary for long numeric lists.** A list (or a list of equal-length lists) of at
   least :data:`MIN_LEN` numbers that are all ``int`` or all ``float`` is stored as a
   little-endian array, byte-shuffled (the k-th byte of every value together, which
   lets gzip find the repeated exponents) and base64-encoded: ``{ARRAY: dtype, "shape":
   [...], "data": "..."}``. Floats that are exactly representable in float32 (values
   that came from float32 tensors) are stored as float32, all others as float64; ints
   as int64. Each choice is checked to give back the identical Python value.
3. gzip (level 9, no timestamp: the same document always gives the same bytes).

:func:`decode` undoes 1-2 exactly: ``decode(encode(d)) == d`` with the same types
(``int`` stays ``int``, ``float`` stays ``float``), which the round-trip tests assert on
every committed cell. A document that already holds one of the marker keys is refused.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import numpy as np

COLUMNS = "__neumod_columns__"
ARRAY = "__neumod_array__"
MIN_LEN = 8  # shorter lists stay plain JSON: nothing to gain
_DTYPES = {"i8": "<i8", "f4": "<f4", "f8": "<f8"}


def _numeric_kind(values: list) -> str | None:
    """``"int"`` or ``"float"`` when every value has exactly that type, else None."""
    first = type(values[0])
    if first not in (int, float) or any(type(v) is not first for v in values):
        return None
    return first.__name__


def _pack(flat: list, kind: str, shape: list[int]) -> dict | None:
    if kind == "int":
        try:
            a = np.asarray(flat, dtype="<i8")
        except OverflowError:
            return None
        code = "i8"
    else:
        a = np.asarray(flat, dtype="<f8")
        f4 = a.astype("<f4")
        exact = np.array_equal(f4.astype("<f8"), a, equal_nan=True)
        a, code = (f4, "f4") if exact else (a, "f8")
    shuffled = np.ascontiguousarray(a.view(np.uint8).reshape(-1, a.itemsize).T)
    return {ARRAY: code, "shape": shape, "data": base64.b64encode(shuffled.tobytes()).decode()}


def _unpack(d: dict) -> list:
    code, shape = d[ARRAY], d["shape"]
    dtype = np.dtype(_DTYPES[code])
    raw = np.frombuffer(base64.b64decode(d["data"]), dtype=np.uint8)
    a = raw.reshape(dtype.itemsize, -1).T.copy().view(dtype).reshape(shape)
    return a.tolist()  # Python ints from int64, Python floats from float32/float64


def _encode_list(v: list) -> Any:
    if len(v) >= MIN_LEN:
        if all(isinstance(r, dict) for r in v) and len({tuple(sorted(r)) for r in v}) == 1:
            if v[0]:
                return {COLUMNS: {k: encode_tree([r[k] for r in v]) for k in v[0]}}
        kind = _numeric_kind(v)
        if kind is not None:
            packed = _pack(v, kind, [len(v)])
            if packed is not None:
                return packed
        if all(isinstance(r, list) and r for r in v) and len({len(r) for r in v}) == 1:
            flat = [x for r in v for x in r]
            kind = _numeric_kind(flat)
            if kind is not None:
                packed = _pack(flat, kind, [len(v), len(v[0])])
                if packed is not None:
                    return packed
    return [encode_tree(x) for x in v]


def encode_tree(obj: Any) -> Any:
    """``obj`` (plain JSON values) with record lists as columns and long numeric lists as
    arrays; :class:`ValueError` when ``obj`` already uses a marker key."""
    if isinstance(obj, dict):
        if COLUMNS in obj or ARRAY in obj:
            raise ValueError(f"cannot store a document holding the key {COLUMNS!r} or {ARRAY!r}")
        return {k: encode_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return _encode_list(obj)
    return obj


def decode_tree(obj: Any) -> Any:
    """The inverse of :func:`encode_tree`."""
    if isinstance(obj, dict):
        if ARRAY in obj:
            return _unpack(obj)
        if COLUMNS in obj:
            cols = {k: decode_tree(v) for k, v in obj[COLUMNS].items()}
            n = len(next(iter(cols.values())))
            return [{k: c[i] for k, c in cols.items()} for i in range(n)]
        return {k: decode_tree(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_tree(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """The compact file content of a JSON-safe document (deterministic bytes)."""
    text = json.dumps(encode_tree(obj), separators=(",", ":"), sort_keys=True)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def loads(data: bytes) -> Any:
    """The document stored by :func:`dumps`."""
    return decode_tree(json.loads(gzip.decompress(data).decode("utf-8")))
