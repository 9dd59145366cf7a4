"""The event counters of conversation_statistic, described once.

Each environment's counters are spread over a few shard rows (the event service adds to the
shard of each conversation, so that no single row is hot); readers sum the shards. The event
service adds to them, deleting a conversation takes its events off them, the statistics route
and the cache's data version read them: all from COUNTERS.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    column: str
    # Its key in GET /api/statistics.
    statistic: str
    # The event type it counts; None: every event.
    event_type: str | None = None

    def counts(self, type_name: str) -> bool:
        return self.event_type is None or type_name == self.event_type

    def count_sql(self) -> str:
        """The aggregate that counts these events among rows of conversation_event."""
        return "count(*)" if self.event_type is None else f"count(*) FILTER (WHERE type_name = '{self.event_type}')"


USER_MESSAGES = Counter("total_user_messages", "user_messages", "user")
BOT_MESSAGES = Counter("total_bot_messages", "bot_messages", "bot")
EVENTS = Counter("total_events", "total_events")
COUNTERS = (USER_MESSAGES, BOT_MESSAGES, EVENTS)


@functools.lru_cache(maxsize=64)  # a handful of event types in practice
def increments(type_name: str) -> tuple[int, ...]:
    """What one event of `type_name` adds to each of COUNTERS."""
    return tuple(int(counter.counts(type_name)) for counter in COUNTERS)
