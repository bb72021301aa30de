"""The byte layout of pending predictions held outside the process (plain bytes, no Redis).

A pending prediction is stored as one field of a small hash: the *field* is 12 bytes of the
BLAKE2b hash of its event id (96 bits: among ten million pending ids the chance of any two
colliding is ~1e-13), the *bucket* (which hash) comes from 4 more bytes of it, and the
*value* is 21 bytes::

    version index  u32   (into the model's list of version names)
    flags          u8    bit 0: usable (passed the quality checks); bit 1: class label
    event time     f64   (epoch seconds)
    prediction     f64   (the number, or the index of the class label)

Buckets keep each hash well under Redis' ``hash-max-listpack-entries`` (128), so hashes
stay in the compact listpack encoding: ~35 bytes per pending entry in Redis at scale.

Write-back deltas and lookups travel as one binary blob each, parsed by the checkpoint's Lua
script (``streams.checkpoint``) with the ``struct`` library:

* lookup: ``n x (tag 8 | bucket u32 | field 12)``;
* delta, per model: ``tag 8 | u32 n | n x (bucket u32 | field 12 | value 21)`` (sorted by
  bucket) ``| u32 n | n x (bucket u32 | field 12)`` (deletions) ``| u32 n | n x bucket
  u32`` (to sweep) ``| f64 cutoff`` (a swept field whose event time is below it goes).

>>> bucket, field = locate("e-1", 1000)
>>> 0 <= bucket < 1000, len(field)
(True, 12)
>>> value = pack_values(np.array([3]), np.array([1]), np.array([17.5]), np.array([0.25]))
>>> len(value), unpack_value(value)
(21, (3, 1, 17.5, 0.25))
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from hashlib import blake2b
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUCKET_LOAD",
    "FIELD_SIZE",
    "LOOKUP_RECORD",
    "VALUE_SIZE",
    "PendingLookup",
    "buckets_for",
    "delta_section",
    "locate",
    "lookup_blob",
    "model_tag",
    "pack_values",
    "unpack_value",
]

FIELD_SIZE: Final = 12
VALUE_SIZE: Final = 21
#: Bytes per lookup record: tag, bucket, field.
LOOKUP_RECORD: Final = 8 + 4 + FIELD_SIZE
#: Target mean entries per hash at the configured cap (listpack limit: 128).
BUCKET_LOAD: Final = 64
FLAG_USABLE: Final = 1
FLAG_CLASS: Final = 2

_VALUE: Final = np.dtype([("v", "<u4"), ("f", "u1"), ("t", "<f8"), ("s", "<f8")])
_SET: Final = np.dtype([("b", "<u4"), ("k", f"S{FIELD_SIZE}"), ("x", f"S{VALUE_SIZE}")])
_DEL: Final = np.dtype([("b", "<u4"), ("k", f"S{FIELD_SIZE}")])
_UNPACK: Final = struct.Struct("<IBdd")


class PendingLookup(NamedTuple):
    """Entries one batch needs from one partition's store: :func:`lookup_blob` records."""

    partition: int
    blob: bytes


def model_tag(model_id: str) -> bytes:
    """8 ASCII bytes naming a model in keys (its ids may be long or odd)."""
    return blake2b(model_id.encode(), digest_size=4).hexdigest().encode()


def buckets_for(max_pending: int) -> int:
    """Hashes per model so that ``max_pending`` entries average :data:`BUCKET_LOAD` each."""
    return max(1, -(-max_pending // BUCKET_LOAD))


def locate(event_id: str, buckets: int) -> tuple[int, bytes]:
    """``(bucket, field)`` of an event id."""
    digest = blake2b(event_id.encode(), digest_size=16).digest()
    return int.from_bytes(digest[12:], "little") % buckets, digest[:FIELD_SIZE]


def pack_values(
    version: npt.NDArray[np.integer],
    flags: npt.NDArray[np.integer],
    time: npt.NDArray[np.floating],
    score: npt.NDArray[np.floating],
) -> bytes:
    """The values of many entries, :data:`VALUE_SIZE` bytes each, concatenated."""
    out = np.empty(len(version), dtype=_VALUE)
    out["v"], out["f"], out["t"], out["s"] = version, flags, time, score
    return out.tobytes()


def unpack_value(value: bytes) -> tuple[int, int, float, float]:
    """``(version index, flags, event time, prediction)`` of one stored value."""
    version, flags, time, score = _UNPACK.unpack(value)
    return version, flags, time, score


def lookup_blob(tag: bytes, located: Sequence[tuple[int, bytes]]) -> bytes:
    """Lookup records of one model's ``(bucket, field)`` pairs."""
    prefix = tag
    return b"".join(prefix + struct.pack("<I", b) + f for b, f in located)


def delta_section(
    tag: bytes,
    sets: Sequence[tuple[int, bytes]],
    values: bytes,
    deletes: Sequence[tuple[int, bytes]],
    sweep: Sequence[int],
    cutoff: float,
) -> bytes:
    """One model's part of a partition's write-back delta (module doc for the layout)."""
    added = np.empty(len(sets), dtype=_SET)
    if sets:
        added["b"] = [b for b, _ in sets]
        added["k"] = [f for _, f in sets]
        added["x"] = np.frombuffer(values, dtype=f"S{VALUE_SIZE}")
        added = added[np.argsort(added["b"], kind="stable")]
    gone = np.empty(len(deletes), dtype=_DEL)
    if deletes:
        gone["b"] = [b for b, _ in deletes]
        gone["k"] = [f for _, f in deletes]
        gone = gone[np.argsort(gone["b"], kind="stable")]
    return b"".join(
        (
            tag,
            struct.pack("<I", len(added)),
            added.tobytes(),
            struct.pack("<I", len(gone)),
            gone.tobytes(),
            struct.pack("<I", len(sweep)),
            np.asarray(sweep, dtype="<u4").tobytes(),
            struct.pack("<d", cutoff),
        )
    )
