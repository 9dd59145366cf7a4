"""JSON schemas of the training data routes: the API validates every body with them, and the
OpenAPI document (services/backend/api/openapi.py) publishes the same objects, so the document is
exactly as strict as the validation. They use the subset OpenAPI 3.0 and JSON Schema share,
plus OpenAPI's `nullable`, which `as_json_schema` turns into JSON Schema's type lists."""

from __future__ import annotations

import jsonschema

from ..errors import bad_request
from .rasa_yaml import CONFIG_KEYS, DOMAIN_KEYS, MAX_EXAMPLE_LENGTH, MAX_NAME_LENGTH, RESPONSE_KEYS

MAX_BATCH = 5000

# Not blank, and no NUL, which PostgreSQL's text cannot hold.
VISIBLE = r"^[^\x00]*[^\s\x00][^\x00]*$"
NAME = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": VISIBLE}
TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_EXAMPLE_LENGTH, "pattern": VISIBLE}
NULLABLE_STRING = {"type": "string", "nullable": True}
NULLABLE_NUMBER = {"type": "number", "nullable": True}
ENTITY = {
    "type": "object",
    "required": ["start", "end", "entity"],
    "properties": {
        "start": {"type": "integer", "minimum": 0, "maximum": MAX_EXAMPLE_LENGTH},
        "end": {"type": "integer", "minimum": 1, "maximum": MAX_EXAMPLE_LENGTH},
        "entity": NAME,
        "value": {"type": "string", "maxLength": MAX_EXAMPLE_LENGTH},
        "role": NAME,
        "group": NAME,
    },
    "additionalProperties": False,
}
ENTITIES = {"type": "array", "items": ENTITY, "maxItems": 100}
# Rasa's metadata of the example's intent block and of the example: any values (null: none).
METADATA = {
    "type": "object",
    "properties": {"intent": {}, "example": {}},
    "additionalProperties": False,
    "nullable": True,
}
EXAMPLE_IN = {
    "type": "object",
    "required": ["text", "intent"],
    "properties": {"text": TEXT, "intent": NAME, "entities": ENTITIES, "metadata": METADATA},
    "additionalProperties": False,
}
EXAMPLE_CHANGE = {**{k: v for k, v in EXAMPLE_IN.items() if k != "required"}, "minProperties": 1}
EXAMPLES_IN = {"type": "array", "items": EXAMPLE_IN, "minItems": 1, "maxItems": MAX_BATCH}
EXAMPLE_OUT = {
    "type": "object",
    "required": ["id", "text", "intent", "entities", "metadata", "annotator_id", "annotated_at"],
    "properties": {
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "intent": {"type": "string"},
        "entities": {"type": "array", "items": {**ENTITY, "properties": {**ENTITY["properties"], "value": {"type": "string"}}}},
        "metadata": METADATA,
        "annotator_id": NULLABLE_STRING,
        "annotated_at": NULLABLE_NUMBER,
    },
    "additionalProperties": False,
}
IDS = {
    "type": "object",
    "required": ["ids"],
    "properties": {"ids": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                           "minItems": 1, "maxItems": MAX_BATCH, "uniqueItems": True}},
    "additionalProperties": False,
}  # fmt: skip
ARCHIVED = {"type": "object", "required": ["archived"], "properties": {"archived": {"type": "integer"}}, "additionalProperties": False}
DELETED = {"type": "object", "required": ["deleted"], "properties": {"deleted": {"type": "integer"}}, "additionalProperties": False}
INTENT_OUT = {
    "type": "object",
    "required": ["intent", "example_count"],
    "properties": {"intent": {"type": "string"}, "example_count": {"type": "integer"}},
    "additionalProperties": False,
}
ENTITY_OUT = {
    "type": "object",
    "required": ["entity", "example_count", "roles", "groups"],
    "properties": {
        "entity": {"type": "string"},
        "example_count": {"type": "integer"},
        "roles": {"type": "array", "items": {"type": "string"}},
        "groups": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}
FEATURE_IN = {
    "type": "object",
    "required": ["examples"],
    "properties": {"examples": {"type": "array", "items": TEXT, "minItems": 1, "maxItems": MAX_BATCH}},
    "additionalProperties": False,
}
FEATURE_OUT = {
    "type": "object",
    "required": ["name", "examples"],
    "properties": {"name": {"type": "string"}, "examples": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": False,
}
STEPS = {"type": "array", "items": {"type": "object"}, "maxItems": 1000}
STORY_IN = {
    "type": "object",
    "required": ["story", "steps"],
    "properties": {"story": NAME, "steps": STEPS, "metadata": {"type": "object"}},
    "additionalProperties": False,
}
RULE_IN = {
    "type": "object",
    "required": ["rule", "steps"],
    "properties": {
        "rule": NAME,
        "steps": STEPS,
        "condition": STEPS,
        "conversation_start": {"type": "boolean"},
        "wait_for_user_input": {"type": "boolean"},
        "metadata": {"type": "object"},
    },
    "additionalProperties": False,
}
STORY_OUT = {**STORY_IN, "required": ["id", "story", "steps"], "properties": {"id": {"type": "integer"}, **STORY_IN["properties"]}}
RULE_OUT = {**RULE_IN, "required": ["id", "rule", "steps"], "properties": {"id": {"type": "integer"}, **RULE_IN["properties"]}}
VARIATION = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 10_000},
        "image": {"type": "string", "maxLength": 2000},
        "buttons": {"type": "array", "items": {"type": "object"}, "maxItems": 100},
        "quick_replies": {"type": "array", "items": {"type": "object"}, "maxItems": 100},
        "custom": {"type": "object"},
        "attachment": {},
        "elements": {"type": "array"},
        "channel": NAME,
        "condition": {"type": "array", "items": {"type": "object"}},
        "metadata": {"type": "object"},
        "id": {"type": "string"},
    },
    "minProperties": 1,
    "additionalProperties": False,
}
assert set(VARIATION["properties"]) == RESPONSE_KEYS
RESPONSE_IN = {"type": "array", "items": VARIATION, "minItems": 1, "maxItems": 100}
RESPONSE_OUT = {
    "type": "object",
    "required": ["name", "variations"],
    "properties": {"name": {"type": "string"}, "variations": RESPONSE_IN},
    "additionalProperties": False,
}
DOMAIN = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        **{key: {"type": "array"} for key in ("intents", "entities", "actions", "e2e_actions")},
        **{key: {"type": "object"} for key in ("slots", "forms", "responses", "session_config", "config")},
    },
    "additionalProperties": False,
}
assert set(DOMAIN["properties"]) == DOMAIN_KEYS
CONFIG = {
    "type": "object",
    "properties": {
        "version": {"type": "string"},
        "recipe": {"type": "string"},
        "language": {"type": "string"},
        "assistant_id": {"type": "string"},
        "pipeline": {"type": "array", "items": {"type": "object"}, "nullable": True},
        "policies": {"type": "array", "items": {"type": "object"}, "nullable": True},
        "importers": {"type": "array"},
        "train_schema": {"type": "object"},
        "predict_schema": {"type": "object"},
        "spaces": {"type": "array"},
    },
    "additionalProperties": False,
}
assert set(CONFIG["properties"]) == CONFIG_KEYS
WARNING_OUT = {
    "type": "object",
    "required": ["type", "name", "message"],
    "properties": {"type": {"type": "string"}, "name": {"type": "string"}, "message": {"type": "string"}},
    "additionalProperties": False,
}
VERSION_OUT = {
    "type": "object",
    "required": ["version", "examples", "intents", "synonyms", "regexes", "lookup_tables", "stories", "rules"],
    "properties": {
        "version": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        **{key: {"type": "integer"} for key in ("examples", "intents", "synonyms", "regexes", "lookup_tables", "stories", "rules")},
    },
    "additionalProperties": False,
}
IMPORT_IN = {
    "type": "object",
    "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1}},
}
IMPORT_OUT = {
    "type": "object",
    "required": ["mode", "parts", "examples", "features", "stories", "rules", "version", "warnings"],
    "properties": {
        "mode": {"type": "string", "enum": ["replace", "merge"]},
        "parts": {"type": "array", "items": {"type": "string", "enum": ["nlu", "stories", "rules", "domain", "config"]}},
        **{key: {"type": "integer"} for key in ("examples", "features", "stories", "rules")},
        "version": {"type": "string"},
        "warnings": {"type": "array", "items": WARNING_OUT},
    },
    "additionalProperties": False,
}
ANNOTATION_IN = {
    "type": "object",
    "required": ["intent"],
    "properties": {"intent": NAME, "entities": ENTITIES},
    "additionalProperties": False,
}
BULK_ANNOTATIONS_IN = {
    "type": "array",
    "items": {**ANNOTATION_IN, "required": ["id", "intent"],
              "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, **ANNOTATION_IN["properties"]}},
    "minItems": 1,
    "maxItems": MAX_BATCH,
}  # fmt: skip
LOG_OUT = {
    "type": "object",
    "required": ["id", "text", "intent", "confidence", "intent_ranking", "entities", "time", "conversation_id", "event_id", "model"],
    "properties": {
        "id": {"type": "integer"},
        "text": {"type": "string"},
        "intent": NULLABLE_STRING,
        "confidence": NULLABLE_NUMBER,
        "intent_ranking": {"type": "array", "items": {"type": "object"}},
        "entities": {"type": "array", "items": {"type": "object"}},
        "time": {"type": "number"},
        "conversation_id": NULLABLE_STRING,
        "event_id": {"type": "integer", "nullable": True},
        "model": NULLABLE_STRING,
    },
    "additionalProperties": False,
}


def listing(item: dict) -> dict:
    return {"type": "array", "items": item}


def as_json_schema(schema):
    """The OpenAPI 3.0 schema as JSON Schema: `nullable: true` becomes a type list with null."""
    if isinstance(schema, list):
        return [as_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {k: as_json_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and "type" in schema:
        converted["type"] = [schema["type"], "null"]
    return converted


_VALIDATORS: dict[int, jsonschema.Draft7Validator] = {}


def validate(body, schema: dict, what: str = "the body"):
    """`body` if it matches `schema`, else a 400 saying where and what was expected."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema.Draft7Validator(as_json_schema(schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise bad_request(f"{what}{where}: {error.message[:300]}", "bad_body")
    return body
