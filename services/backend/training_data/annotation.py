"""Entity annotations inside NLU example text, in Rasa's syntax.

Read: `[text](entity)`, `[text](entity:value)`, `[text]{"entity": .., "role": .., "group": ..,
"value": ..}` and several entities on one span as `[text][{..}, {..}]`. Written the way Rasa's
own TrainingDataWriter writes them (rasa/shared/nlu/training_data/formats/readerwriter.py), so an
export reads back unchanged: the short form when only the entity type is set, else the JSON form
with the keys in Rasa's order.
"""

from __future__ import annotations

import json
import re

# rasa/shared/nlu/training_data/entities_parser.py, ENTITY_REGEX
ENTITY_REGEX = re.compile(
    r"\[(?P<entity_text>[^\]]+?)\](\((?P<entity>[^:)]+?)(?:\:(?P<value>[^)]+))?\)|\{(?P<entity_dict>[^}]+?)\}"
    r"|\[(?P<list_entity_dicts>.*?)\])"
)
# What is left of an annotation the regex did not take: `[x](` or `[x]{` with no closing part.
_BROKEN = re.compile(r"\[[^\]]*\]\s*[({]")
_DICT_KEYS = ("entity", "role", "group", "value")


class AnnotationError(ValueError):
    """An example whose annotation does not parse; the message says what was expected."""


def _entity_from_dict(raw: str, text: str) -> dict:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"the entity {raw!r} is not a JSON object ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entity"), str) or not data["entity"].strip():
        raise AnnotationError(f'the entity {raw!r} needs "entity": "<name>"')
    unknown = set(data) - set(_DICT_KEYS)
    if unknown:
        raise AnnotationError(f"the entity {raw!r} has unknown keys {sorted(unknown)}; allowed: {list(_DICT_KEYS)}")
    for key in ("role", "group", "value"):
        if key in data and not isinstance(data[key], str):
            raise AnnotationError(f'"{key}" of the entity {raw!r} must be a string')
    return {"entity": data["entity"], "value": data.get("value", text), **{k: data[k] for k in ("role", "group") if k in data}}


def parse(annotated: str) -> tuple[str, list[dict]]:
    """The plain text and its entities (start, end, value, entity[, role][, group])."""
    entities: list[dict] = []
    plain: list[str] = []
    position = 0  # in `annotated`
    length = 0  # of the plain text so far
    for match in ENTITY_REGEX.finditer(annotated):
        before = annotated[position : match.start()]
        plain.append(before)
        length += len(before)
        text = match.group("entity_text")
        start, end = length, length + len(text)
        if match.group("entity") is not None:
            found = [{"entity": match.group("entity"), "value": match.group("value") or text}]
        elif match.group("entity_dict") is not None:
            found = [_entity_from_dict("{" + match.group("entity_dict") + "}", text)]
        else:
            raw = match.group("list_entity_dicts")
            try:
                items = json.loads("[" + raw + "]")
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"the entity list [{raw}] is not JSON ({exc.msg})") from None
            if not items or not all(isinstance(i, dict) for i in items):
                raise AnnotationError(f"the entity list [{raw}] must hold JSON objects")
            found = [_entity_from_dict(json.dumps(i), text) for i in items]
        entities.extend({"start": start, "end": end, **e} for e in found)
        plain.append(text)
        length = end
        position = match.end()
    rest = annotated[position:]
    plain.append(rest)
    # plain alternates: text outside annotations, annotated text, ..., the rest.
    broken = next((found for outside in plain[::2] if (found := _BROKEN.search(outside))), None)
    if broken:
        raise AnnotationError(
            f"{broken.group(0)!r} starts an entity annotation that does not parse; expected "
            '[text](entity), [text](entity:value) or [text]{"entity": "name", "role": "..."}'
        )
    return "".join(plain), entities


def _attributes(text: str, entity: dict, short_allowed: bool) -> str:
    value = entity.get("value")
    if value == text:
        value = None
    if short_allowed and value is None and entity.get("role") is None and entity.get("group") is None:
        return f"({entity['entity']})"
    ordered = {"entity": entity["entity"], "role": entity.get("role"), "group": entity.get("group"), "value": value}
    return json.dumps({k: v for k, v in ordered.items() if v is not None}, ensure_ascii=False)


def render(text: str, entities: list[dict]) -> str:
    """`text` with `entities` written into it (Rasa's TrainingDataWriter.generate_message)."""
    if not entities:
        return text
    spans: dict[tuple[int, int], list[dict]] = {}
    for entity in sorted(entities, key=lambda e: e["start"]):
        spans.setdefault((entity["start"], entity["end"]), []).append(entity)
    out = []
    position = 0
    for (start, end), group in spans.items():
        span = text[start:end]
        out.append(text[position:start])
        if len(group) == 1:
            out.append(f"[{span}]{_attributes(span, group[0], True)}")
        else:
            out.append(f"[{span}][{', '.join(_attributes(span, e, False) for e in group)}]")
        position = end
    out.append(text[position:])
    return "".join(out)


def check_entities(text: str, entities: list[dict]) -> None:
    """Entities given as JSON (the API, the inbox) must lie inside the text and agree with it."""
    for entity in entities:
        start, end = entity["start"], entity["end"]
        if not 0 <= start < end <= len(text):
            raise AnnotationError(f"the entity {entity['entity']!r} spans {start}..{end}, outside the text of {len(text)} characters")
    spans = sorted({(e["start"], e["end"]) for e in entities})
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start < end:
            raise AnnotationError("entities overlap; Rasa's YAML cannot write overlapping spans")
