"""Password hashing and the log-in lock schedule."""

import pytest

from services.backend.passwords import hash_password, verify_password
from services.backend.users import LOCK_AFTER_FAILURES, LOCK_MAX_SECONDS, lock_seconds


def test_a_hash_verifies_only_with_the_same_password_and_pepper():
    stored = hash_password("correct horse", "pepper-1")
    assert verify_password("correct horse", stored, "pepper-1")
    assert not verify_password("correct horsE", stored, "pepper-1")
    assert not verify_password("correct horse", stored, "pepper-2")


def test_each_hash_has_its_own_salt_and_names_its_parameters():
    first, second = hash_password("same", "p"), hash_password("same", "p")
    assert first != second
    assert first.split("$")[:4] == ["scrypt", "16384", "8", "1"]


@pytest.mark.parametrize("stored", [None, "", "md5$abc", "scrypt$x$y", "scrypt$16384$8$1$!!$!!", "plain-text-password"])
def test_missing_or_foreign_hashes_never_verify(stored):
    assert not verify_password("plain-text-password", stored, "p")


def test_the_lock_starts_after_the_allowed_failures_and_doubles_up_to_a_cap():
    assert [lock_seconds(n) for n in range(LOCK_AFTER_FAILURES)] == [0] * LOCK_AFTER_FAILURES
    locks = [lock_seconds(n) for n in range(LOCK_AFTER_FAILURES, LOCK_AFTER_FAILURES + 10)]
    assert locks[0] > 0 and locks[1] == 2 * locks[0]
    assert locks == sorted(locks) and locks[-1] == LOCK_MAX_SECONDS
