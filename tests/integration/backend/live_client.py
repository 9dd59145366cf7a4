"""A WebSocket client of /api/ws for the tests: the `websockets` library's, not the server's own
(simple-websocket's client can hold back a message that arrives with the handshake's answer)."""

from __future__ import annotations

import json
import time

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

__all__ = ["LiveSocket", "InvalidStatus"]


class LiveSocket:
    def __init__(self, url: str, token: str | None = None):
        """`url` is the server's base (http[s]://host:port); the JWT goes as ?token= when given."""
        target = url.replace("http", "ws", 1) + "/api/ws" + (f"?token={token}" if token else "")
        self.ws = connect(target, open_timeout=10, close_timeout=5)
        self.received: list[dict] = []

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def next(self, timeout: float = 10) -> dict | None:
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        message = json.loads(raw)
        self.received.append(message)
        return message

    def wait_for(self, condition, timeout: float = 10, what: str = "a message") -> dict:
        """The first message `condition` holds for, within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.next(left)
            if message is not None and condition(message):
                return message
        raise AssertionError(f"no {what} within {timeout} s; received {self.received[-10:]}")

    def watch(self, sender_id: str | None, timeout: float = 10) -> None:
        self.send({"type": "watch", "conversation_id": sender_id})
        self.wait_for(lambda m: m == {"type": "watching", "conversation_id": sender_id}, timeout, "watching")

    def events_of(self, sender_id: str, until, timeout: float = 10) -> list[dict]:
        """The events received for `sender_id` until `until(events)` holds."""
        events: list[dict] = []

        def enough(message):
            if message["type"] == "events" and message["conversation_id"] == sender_id:
                events.extend(message["events"])
            return until(events)

        self.wait_for(enough, timeout, f"the events of {sender_id!r}")
        return events

    def close_code(self, timeout: float = 10) -> int:
        """The code the server closed the socket with (waiting for it)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.next(deadline - time.monotonic())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        raise AssertionError(f"the server did not close the socket within {timeout} s")

    def close(self) -> None:
        self.ws.close()
