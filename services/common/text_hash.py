"""The key of a message's text in message_log.hash and training_example.hash."""

from __future__ import annotations

import hashlib


def text_hash(text: str) -> str:
    """sha256 hex of the UTF-8 text: the event service writes it, the backend looks it up."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
