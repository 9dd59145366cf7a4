"""The SQL the conversation filters make: every user value is a bound parameter."""

from services.backend.api.conversations import tracker_from_events
from services.backend.api.models import _etag_values
from services.backend.conversation_query import ConversationFilter, where_clause


def test_user_values_never_reach_the_sql_text():
    hostile = "x'; DROP TABLE conversation; --"
    f = ConversationFilter(
        intents=[hostile], text=hostile, slots=[(hostile, '"v"')], rasa_environments=[hostile], exclude_sender=hostile
    )
    sql, params = where_clause(f)
    assert hostile not in sql
    assert hostile in params.values() or [hostile] in params.values()


def test_no_filter_only_hides_interactive_conversations():
    assert where_clause(ConversationFilter()) == ("NOT c.interactive", {})


def test_like_wildcards_in_text_are_escaped():
    _, params = where_clause(ConversationFilter(text="50%_off\\"))
    assert params == {"p0": "%50\\%\\_off\\\\%"}


def test_tracker_state_follows_slots_restarts_and_the_latest_message():
    events = [
        {"event": "slot", "name": "mood", "value": "sad", "timestamp": 1},
        {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet"}}, "input_channel": "rest", "timestamp": 2},
        {"event": "restart", "timestamp": 3},
        {"event": "slot", "name": "name", "value": "Ada", "timestamp": 4},
        {"event": "action", "name": "utter_greet", "timestamp": 5},
    ]
    tracker = tracker_from_events("s", events)
    assert tracker["slots"] == {"name": "Ada"}
    assert tracker["latest_message"]["intent"]["name"] == "greet"
    assert tracker["latest_action_name"] == "utter_greet"
    assert tracker["latest_event_time"] == 5 and tracker["latest_input_channel"] == "rest"


def test_if_none_match_accepts_rasa_raw_quoted_and_weak_etags():
    assert _etag_values('abc') == {"abc"}
    assert _etag_values('"abc", W/"def"') == {"abc", "def"}
    assert _etag_values("") == set()
