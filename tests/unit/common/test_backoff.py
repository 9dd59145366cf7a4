"""The one backoff every waiting loop uses: the retry helper, the consumer's reconnect and
database retry, the worker supervisor's restarts."""

from __future__ import annotations

import pytest

from services.common.retry import STABLE_AFTER, Backoff, GaveUp, retry


def test_pauses_double_up_to_the_cap():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_success_starts_again_at_the_first_pause():
    backoff = Backoff(1.0, 30.0)
    backoff.next(), backoff.next()
    backoff.reset()
    assert backoff.next() == 1.0


def test_a_failure_after_a_long_run_counts_that_run_as_a_success():
    backoff = Backoff(1.0, 30.0)
    assert [backoff.after_run(0.1) for _ in range(3)] == [1.0, 2.0, 4.0]
    assert backoff.after_run(STABLE_AFTER + 1) == 1.0
    assert backoff.after_run(0.1) == 2.0


def test_retry_waits_with_the_backoff_until_the_action_succeeds():
    failures = iter([ConnectionError("refused"), ConnectionError("refused")])

    def action():
        error = next(failures, None)
        if error:
            raise error
        return "up"

    assert retry(action, what="a server", retry_on=(ConnectionError,), initial=0.01, maximum=0.02) == "up"


def test_retry_gives_up_with_the_last_reason_after_its_timeout():
    def action():
        raise ConnectionError("refused\nsecond line")

    with pytest.raises(GaveUp, match=r"gave up waiting for a server after 0s: refused$"):
        retry(action, what="a server", retry_on=(ConnectionError,), timeout=0.05, initial=0.01, maximum=0.02)
