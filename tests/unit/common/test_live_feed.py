"""The live-update notice format (services/common/live_feed.py): small, split below NOTIFY's limit,
read back exactly, anything else skipped."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, strategies as st

from services.common import live_feed
from services.common.live_feed import Stored


def test_a_batch_is_one_range_per_conversation():
    events = [SimpleNamespace(sender_id=s, event_id=i) for s, i in (("b", 7), ("a", 3), ("b", 5), ("a", 9), ("b", 6))]
    assert live_feed.stored_in(events) == [Stored("a", 3, 9), Stored("b", 5, 7)]


@given(st.lists(st.tuples(st.text(min_size=1, max_size=255), st.integers(1, 2**62), st.integers(0, 1000)), max_size=400))
def test_payloads_stay_below_the_notify_limit_and_read_back(entries):
    stored = [Stored(sender, first, first + span) for sender, first, span in entries]
    payloads = live_feed.payloads(stored)
    assert all(len(p.encode()) <= live_feed.MAX_PAYLOAD_BYTES for p in payloads)
    assert [item for p in payloads for item in live_feed.parse(p)] == stored


def test_a_malformed_payload_is_skipped():
    assert live_feed.parse("not json") == []
    assert live_feed.parse('{"a": 1}') == []
    assert live_feed.parse('[["ok", 1, 2], ["short", 1], [3, 1, 2], ["bool", true, 2], "x"]') == [Stored("ok", 1, 2)]
