"""The feed of rasa-x's live updates: what the event service announces when it stores events.

The event service calls NOTIFY on CHANNEL inside the transaction that stores a batch, so
PostgreSQL delivers the notice exactly when (and only if) the batch commits; every rasa-x worker
process LISTENs with one connection (services/backend/live.py) and reads the events themselves
from the database. A notice names conversations and the id range of the events the batch stored
in each, never the events: NOTIFY payloads are limited to 8000 bytes, and the range keeps a
notice small however long the batch was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

CHANNEL = "rasax_conversation_events"
# PostgreSQL refuses payloads of 8000 bytes or more; a notice stays well below.
MAX_PAYLOAD_BYTES = 7000


@dataclass(frozen=True)
class Stored:
    """Events with ids first..last (not every id in between need be this conversation's) were
    stored in conversation `sender_id`."""

    sender_id: str
    first: int
    last: int


def payloads(stored: list[Stored]) -> list[str]:
    """The NOTIFY payloads announcing `stored`: JSON arrays of [sender_id, first, last]."""
    result, chunk, size = [], [], 2
    for item in stored:
        entry = [item.sender_id, item.first, item.last]
        length = len(json.dumps(entry, ensure_ascii=False).encode()) + 1
        if chunk and size + length > MAX_PAYLOAD_BYTES:
            result.append(json.dumps(chunk, ensure_ascii=False))
            chunk, size = [], 2
        chunk.append(entry)
        size += length
    if chunk:
        result.append(json.dumps(chunk, ensure_ascii=False))
    return result


def stored_in(events) -> list[Stored]:
    """One Stored per conversation of `events` (objects with sender_id and event_id)."""
    ranges: dict[str, list[int]] = {}
    for event in events:
        span = ranges.setdefault(event.sender_id, [event.event_id, event.event_id])
        span[0], span[1] = min(span[0], event.event_id), max(span[1], event.event_id)
    return [Stored(sender_id, first, last) for sender_id, (first, last) in sorted(ranges.items())]


def parse(payload: str) -> list[Stored]:
    """The Stored items of one payload; anything malformed (nothing but the event service
    notifies this channel, but a database is shared ground) is skipped."""
    try:
        entries = json.loads(payload)
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    return [
        Stored(e[0], e[1], e[2])
        for e in entries
        if isinstance(e, list) and len(e) == 3 and isinstance(e[0], str)
        and all(isinstance(n, int) and not isinstance(n, bool) for n in e[1:])
    ]
