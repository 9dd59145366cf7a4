"""The db image's PostgreSQL majors: the stack's own from the stack's suite, another one refused
unless a Debian suite ships it, and the major part of what decides a rebuild."""

from __future__ import annotations

import pytest

from deploy import backup, images


def test_the_stacks_major_is_built_from_the_stacks_suite():
    assert images.POSTGRES_SUITES[backup.pg_major(images.STACK_IMAGES["postgres"])] == images.SUITE


def test_the_major_is_part_of_the_content_hash():
    assert images.content_hash("postgres", "base", {"PG_MAJOR": "13"}) != \
        images.content_hash("postgres", "base", {"PG_MAJOR": "15"})
    # No build arguments: the hash of every other image is what it was.
    assert images.content_hash("redis", "base", {}) == images.content_hash("redis", "base")


def test_a_major_no_suite_ships_is_refused_before_any_build():
    with pytest.raises(images.ImageError, match="PostgreSQL 12 is not built here: only 15, 13"):
        images.build_postgres(None, 12, print)
