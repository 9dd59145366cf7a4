"""Talk to your bot in Chromium: the bot's replies reach the page live over /api/ws.

This tier runs no Rasa. A stand-in takes rasa-production's place on the port the backend is
configured with and does what Rasa does with a message of the `rasa` channel, as far as this
path is concerned: it publishes the turn's events (user, action, bot) to the broker and answers
with NO replies, so a reply on the page can only have come from the broker, the event service,
PostgreSQL's notice and the socket. Real Rasa does the same in tests/e2e/test_closing_the_loop.py.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import expect

from .conftest import log_in, screenshot

REPLY = "Hey! How are you?"


def _turn(sender: str, text: str) -> list[tuple[str, str]]:
    now = time.time()
    events = [
        {"event": "user", "timestamp": now, "text": text, "input_channel": "rasa", "message_id": f"m{now}",
         "parse_data": {"text": text, "intent": {"name": "greet", "confidence": 0.97}, "entities": [],
                        "intent_ranking": [{"name": "greet", "confidence": 0.97}]}},
        {"event": "action", "timestamp": now + 0.01, "name": "utter_greet", "policy": "RulePolicy", "confidence": 1.0},
        {"event": "bot", "timestamp": now + 0.02, "text": REPLY, "data": {}, "metadata": {"utter_action": "utter_greet"}},
        {"event": "action", "timestamp": now + 0.03, "name": "action_listen", "policy": "RulePolicy", "confidence": 1.0},
    ]
    return [(json.dumps({"sender_id": sender, **event}), "production") for event in events]


@pytest.fixture
def rasa_production(backend_env, event_service):
    """The stand-in, listening where RASA_PRODUCTION_HOST points (nothing else listens there)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((urlparse(self.path).path, self.headers.get("Authorization", ""), body))
            event_service.publish(_turn(body["conversation_id"], body["message"]))
            answer = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    port = urlparse(backend_env["RASA_PRODUCTION_HOST"]).port
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


def test_talk_to_your_bot_shows_the_replies_as_they_arrive(page, accounts, admin_api, server, rasa_production):
    log_in(page, *accounts["annotator"])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Talk to your bot").click()
    expect(page.get_by_role("heading", name="Talk to your bot")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="Live")).to_have_text("Live")
    sender = parse_qs(urlparse(page.url).query)["conversation"][0]
    try:
        page.get_by_label("Your message").fill("hello there")
        started = time.monotonic()
        page.get_by_role("button", name="Send").click()
        chat = page.get_by_role("list", name="Chat")
        expect(chat.get_by_role("listitem").filter(has_text=REPLY)).to_be_visible(timeout=10_000)
        print(f"\nthe bot's reply on the page {time.monotonic() - started:.2f} s after Send")
        events = page.get_by_role("table", name="Events of this conversation")
        expect(events).to_contain_text("utter_greet")
        expect(events).to_contain_text("greet 97%")
        screenshot(page, "talk")

        # rasa-x sent the message to Rasa's `rasa` channel with a JWT naming the conversation.
        [(path, authorization, body)] = rasa_production
        assert path == "/webhooks/rasa/webhook" and authorization.startswith("Bearer ")
        assert body == {"message": "hello there", "conversation_id": sender}
        # The API has the conversation: the annotator's own, interactive, with the turn's events.
        stored = admin_api.get(f"{server}/api/conversations/{quote(sender, safe='')}", timeout=10).json()
        assert stored["interactive"] is True
        assert [(e["event"], e.get("text") or e.get("name")) for e in stored["events"]] == [
            ("user", "hello there"), ("action", "utter_greet"), ("bot", REPLY), ("action", "action_listen")]
        mine = admin_api.get(f"{server}/api/conversations", params={"interactive": "true", "limit": 100}, timeout=10).json()
        assert sender in [c["sender_id"] for c in mine]
    finally:
        admin_api.delete(f"{server}/api/conversations/{quote(sender, safe='')}", timeout=10)
