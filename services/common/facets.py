"""The conversation facets: the one description of the tables the event service derives from
events and the backend filters and lists conversations by.

A facet table holds one row per conversation and distinct value (so filters and value lists
are index look-ups, and inserting is order-independent: insert or ignore). The event store
fills every table below; the conversation filter, the conversation's details, the value-list
routes, the statistics and the deletion of a conversation read them from here. Migrations
0001 and 0004 created and changed these tables and stay as written (frozen history): a new
facet gets a migration and an entry here, and the code that iterates over FACETS follows.
"""

from __future__ import annotations

from dataclasses import dataclass


# eq=False: each facet is one object, compared and hashed by identity (the event store keys a
# dict by facet for every event; hashing all fields each time cost more than the rest).
@dataclass(frozen=True, eq=False)
class Facet:
    # The ConversationFilter attribute, the key in a conversation's JSON, and (with "top_")
    # the /api/statistics key.
    name: str
    table: str
    # The value columns after conversation_id, in key order.
    columns: tuple[str, ...]
    # GET /api<route> lists the distinct values of the first column (endpoint: Flask's name).
    route: str
    endpoint: str
    # What the route lists, for the API document.
    listed: str
    # The /api/conversations query parameter that filters by the facet.
    parameter: str
    # Whether a conversation's JSON lists its values under `name`.
    in_details: bool = True
    # Whether /api/statistics shows the most frequent values as `top_<name>`.
    in_statistics: bool = True

    @property
    def column(self) -> str:
        """The value column the route lists and the plain filters compare with."""
        return self.columns[0]


INTENTS = Facet(
    name="intents", table="conversation_intent_metadata", columns=("intent",),
    route="/conversationIntents", endpoint="intents", listed="intents", parameter="intent",
)
ACTIONS = Facet(
    name="actions", table="conversation_action_metadata", columns=("action",),
    route="/conversationActions", endpoint="actions", listed="action names", parameter="action",
)
ENTITIES = Facet(
    name="entities", table="conversation_entity_metadata", columns=("entity",),
    route="/conversationEntities", endpoint="entities", listed="entities", parameter="entity",
)
POLICIES = Facet(
    name="policies", table="conversation_policy_metadata", columns=("policy",),
    route="/conversationPolicies", endpoint="policies", listed="policies", parameter="policies",
)
INPUT_CHANNELS = Facet(
    name="input_channels", table="conversation_input_channel", columns=("input_channel",),
    route="/conversations/inputChannels", endpoint="input_channels", listed="input channels",
    parameter="input_channels", in_statistics=False,
)
# The value is the JSON text of the slot's value; the filter takes `name` or `name:value`
# (GET /api/conversations/slotValues lists the pairs).
SLOTS = Facet(
    name="slots", table="conversation_slot", columns=("slot_name", "slot_value"),
    route="/conversations/slotNames", endpoint="slot_names", listed="slot names",
    parameter="slots", in_details=False, in_statistics=False,
)

FACETS = (INTENTS, ACTIONS, ENTITIES, POLICIES, INPUT_CHANNELS, SLOTS)
# The facets with one value column: filtered by "the conversation has any of these values".
SINGLE_VALUE_FACETS = tuple(f for f in FACETS if len(f.columns) == 1)
