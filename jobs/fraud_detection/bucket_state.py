"""A bucket's state, as both stages keep it in Spark's state store.

In Python a bucket's state is a dict of name (a terminal or an account) -> [latest Kafka ms of
its input, its state as JSON text]. Spark stores it in one string column: the dict's JSON
compressed with zstd and base64-encoded (`pack`). Every micro-batch moves the whole state of
each bucket it touches through Spark, at a cost per byte; packed, the benchmark's account state
is about a third of its JSON (docs/detection.md, State buckets). `unpack` also reads the plain
JSON that jobs before packing stored, so their checkpoints resume.
"""

from __future__ import annotations

import base64

import orjson
import pyarrow as pa

PACKED_PREFIX = "zstd:"  # then the JSON's length in bytes, ":", the base64 of its zstd frame
_CODEC = pa.Codec("zstd", compression_level=1)


def pack(states: dict[str, list]) -> str:
    """The text Spark stores for a bucket's `states`."""
    raw = orjson.dumps(states)
    compressed = _CODEC.compress(raw, asbytes=True)
    return f"{PACKED_PREFIX}{len(raw)}:{base64.b64encode(compressed).decode('ascii')}"


def unpack(text: str | None) -> dict[str, list]:
    """A bucket's states from the text Spark stored (`pack`'s, or plain JSON); {} for none."""
    if not text:
        return {}
    if not text.startswith(PACKED_PREFIX):
        return orjson.loads(text)
    size, _, encoded = text[len(PACKED_PREFIX) :].partition(":")
    raw = _CODEC.decompress(base64.b64decode(encoded), decompressed_size=int(size), asbytes=True)
    return orjson.loads(raw)


def store_entry(states: dict[str, list], name: str, seen_ms: int, text: str) -> None:
    """Store `name`'s state `text` in its bucket's state, as seen at `seen_ms` (the latest Kafka
    timestamp of its input) or at its previous input if that was later."""
    previous = states.get(name)
    states[name] = [max(seen_ms, previous[0]) if previous else seen_ms, text]


def without_idle(states: dict[str, list], ttl_ms: int) -> dict[str, list]:
    """The entries ([latest Kafka ms, state]) of a bucket's state without those that had no input
    for `ttl_ms` before the bucket's most recent input. Kafka timestamps, not event times: one
    event dated years ahead must not make every other entry look idle."""
    newest = max(seen_ms for seen_ms, _ in states.values())
    return {name: entry for name, entry in states.items() if entry[0] >= newest - ttl_ms}
