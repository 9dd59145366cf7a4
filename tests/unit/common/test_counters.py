"""The counter description against the schema, and what each event type adds."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.counters import COUNTERS, increments


def test_every_counter_is_a_column_of_the_statistic_table(migrated_engine):
    columns = {column["name"] for column in sa.inspect(migrated_engine).get_columns("conversation_statistic")}
    assert {counter.column for counter in COUNTERS} <= columns


def test_an_event_counts_as_a_message_of_its_kind_and_as_an_event(migrated_engine):
    assert {counter.statistic: n for counter, n in zip(COUNTERS, increments("user"))} == {
        "user_messages": 1, "bot_messages": 0, "total_events": 1,
    }  # fmt: skip
    assert increments("bot") == (0, 1, 1)
    assert increments("slot") == (0, 0, 1)
    # The SQL form counts the same among stored events.
    with migrated_engine.connect() as connection:
        counted = connection.execute(
            sa.text(
                f"SELECT {', '.join(c.count_sql() for c in COUNTERS)} "
                "FROM (VALUES ('user'), ('bot'), ('slot'), ('user')) AS conversation_event(type_name)"
            )
        ).one()
    assert tuple(counted) == tuple(map(sum, zip(*map(increments, ("user", "bot", "slot", "user")))))
