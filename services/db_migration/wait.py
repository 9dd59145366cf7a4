"""What the other services call before they start work: wait until the schema is at head."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.common.retry import retry

from .migrator import COMPLETED, SCRIPT_LOCATION, read_state


class SchemaBehind(RuntimeError):
    pass


def wait_for_schema(engine: Engine, timeout: float = 300.0, script_location: str = SCRIPT_LOCATION, **backoff) -> None:
    """Block until the database's revision is the scripts' head.

    Logs each wait with its reason and raises services.common.retry.GaveUp after `timeout`.
    """

    def check() -> None:
        state = read_state(engine, script_location)
        if state.status != COMPLETED:
            raise SchemaBehind(f"schema at {state.current_revision}, waiting for {state.target_revision}")

    retry(
        check,
        what="database migrations",
        retry_on=(SchemaBehind, sa.exc.OperationalError),
        timeout=timeout,
        **backoff,
    )
