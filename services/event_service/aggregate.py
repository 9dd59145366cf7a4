"""What a batch of new events changes in the derived tables, per conversation: a pure function.

`aggregate` gives the same result for any order of the events and any repetition of one
(events are told apart by their dedupe key), which is what lets redeliveries and competing
replicas converge: the store writes these changes with order-independent SQL (sums, LEAST and
GREATEST, insert-or-ignore), so applying the changes of the events it actually inserted, in
whatever batches they came, gives the same tables. No I/O here; the store does the writing.
"""

from __future__ import annotations

import collections
import zlib
from dataclasses import dataclass, field
from typing import AbstractSet, Iterable

from services.common.counters import COUNTERS, increments
from services.common.facets import ACTIONS, ENTITIES, FACETS, INPUT_CHANNELS, INTENTS, POLICIES, SLOTS, Facet

from .parsing import MAX_SLOT_FACET, Event

STATISTIC_SHARDS = 16


def statistic_shard(sender_id: str) -> int:
    """Stable across processes and versions (unlike hash()): every replica picks the same row."""
    return zlib.crc32(sender_id.encode("utf-8")) % STATISTIC_SHARDS


def unique_events(events: Iterable[Event]) -> list[Event]:
    """One event per dedupe key (the first to arrive), sorted by key: the order in which every
    writer inserts, so that two replicas inserting the same events wait, never deadlock."""
    unique: dict[bytes, Event] = {}
    for event in events:
        unique.setdefault(event.dedupe_key, event)
    return [unique[key] for key in sorted(unique)]


@dataclass(slots=True)
class ConversationChange:
    """What new events add to their conversation row (see the store's upsert for how)."""

    sender_id: str
    environment: str
    first_time: float
    latest_time: float
    user_messages: int = 0
    channel: str | None = None
    channel_time: float | None = None
    min_action: float | None = None
    max_action: float | None = None
    min_intent: float | None = None
    max_intent: float | None = None
    in_training_data: bool = True

    def add(self, e: Event, trained: AbstractSet[str]) -> None:
        # Ties are broken on the values themselves so that any arrival order gives one result.
        if (e.timestamp, e.environment) < (self.first_time, self.environment):
            self.first_time, self.environment = e.timestamp, e.environment
        if e.timestamp > self.latest_time:
            self.latest_time = e.timestamp
        if e.type_name == "user":
            self.user_messages += 1
            if e.input_channel and (self.channel_time is None or (e.timestamp, e.input_channel) > (self.channel_time, self.channel)):
                self.channel, self.channel_time = e.input_channel, e.timestamp
            if e.confidence is not None:
                self.min_intent = e.confidence if self.min_intent is None else min(self.min_intent, e.confidence)
                self.max_intent = e.confidence if self.max_intent is None else max(self.max_intent, e.confidence)
            if e.text_hash not in trained:
                self.in_training_data = False
        elif e.type_name == "action" and e.confidence is not None:
            self.min_action = e.confidence if self.min_action is None else min(self.min_action, e.confidence)
            self.max_action = e.confidence if self.max_action is None else max(self.max_action, e.confidence)


@dataclass(slots=True)
class StatisticChange:
    """What new events add to one shard of the sharded counters of an environment."""

    environment: str
    shard: int
    latest_time: float
    # Event type → how many new events of it.
    types: collections.Counter = field(default_factory=collections.Counter)

    def add(self, e: Event) -> None:
        self.types[e.type_name] += 1
        if e.timestamp > self.latest_time:
            self.latest_time = e.timestamp

    @property
    def counts(self) -> tuple[int, ...]:
        """What the events add to each of services.common.counters.COUNTERS, in its order."""
        totals = [0] * len(COUNTERS)
        for type_name, n in self.types.items():
            for i, step in enumerate(increments(type_name)):
                totals[i] += n * step
        return tuple(totals)


@dataclass
class BatchChanges:
    """Every list is sorted, in the lock order of the store (see store.py)."""

    conversations: list[ConversationChange]
    # Facet → its new rows (conversation_id, *values), sorted; a facet without any is left out.
    facet_rows: dict[Facet, list[tuple[str, ...]]]
    # (conversation_id, session start, environment) of new session_started events.
    session_starts: list[tuple[str, float, str]]
    # (conversation_id, time of its earliest new event): the sessions from there on are recomputed.
    earliest: list[tuple[str, float]]
    statistics: list[StatisticChange]


def add_facet_rows(e: Event, rows: dict[Facet, set[tuple[str, ...]]]) -> None:
    """Add the facet rows (conversation_id, *values) the event gives to `rows`."""
    if e.type_name == "user":
        if e.intent_name:
            rows[INTENTS].add((e.sender_id, e.intent_name))
        for entity in e.entity_names:
            rows[ENTITIES].add((e.sender_id, entity))
        if e.input_channel:
            rows[INPUT_CHANNELS].add((e.sender_id, e.input_channel))
    elif e.type_name == "action":
        if e.action_name:
            rows[ACTIONS].add((e.sender_id, e.action_name))
        if e.policy:
            rows[POLICIES].add((e.sender_id, e.policy))
    elif e.type_name == "slot" and e.slot_name and len(e.slot_value) <= MAX_SLOT_FACET:
        rows[SLOTS].add((e.sender_id, e.slot_name, e.slot_value))


def aggregate(events: Iterable[Event], trained: AbstractSet[str]) -> BatchChanges:
    """The changes `events` (new ones, duplicates allowed) make; `trained` holds the text
    hashes of their user messages that are in the training data."""
    # One event per key, the first to arrive (unique_events without its sort: nothing below
    # depends on the order of distinct events).
    distinct: dict[bytes, Event] = {}
    for event in events:
        distinct.setdefault(event.dedupe_key, event)
    conversations: dict[str, ConversationChange] = {}
    facets: dict[Facet, set[tuple[str, ...]]] = {facet: set() for facet in FACETS}
    # Of two new starts at one time the first environment in sort order wins, as a start
    # already stored wins over a new one: the same choice in whatever order they come.
    starts: dict[tuple[str, float], str] = {}
    earliest: dict[str, float] = {}
    statistics: dict[tuple[str, int], StatisticChange] = {}
    for e in distinct.values():
        conversation = conversations.get(e.sender_id)
        if conversation is None:
            conversation = conversations[e.sender_id] = ConversationChange(
                e.sender_id, e.environment, e.timestamp, e.timestamp
            )
        conversation.add(e, trained)
        add_facet_rows(e, facets)
        if e.type_name == "session_started":
            start = (e.sender_id, e.timestamp)
            if start not in starts or e.environment < starts[start]:
                starts[start] = e.environment
        if e.timestamp < earliest.get(e.sender_id, float("inf")):
            earliest[e.sender_id] = e.timestamp
        shard = (e.environment, statistic_shard(e.sender_id))
        statistic = statistics.get(shard)
        if statistic is None:
            statistic = statistics[shard] = StatisticChange(*shard, e.timestamp)
        statistic.add(e)
    return BatchChanges(
        conversations=[conversations[sender] for sender in sorted(conversations)],
        facet_rows={facet: sorted(rows) for facet, rows in facets.items() if rows},
        session_starts=[(sender, start, starts[sender, start]) for sender, start in sorted(starts)],
        earliest=sorted(earliest.items()),
        statistics=[statistics[shard] for shard in sorted(statistics)],
    )

