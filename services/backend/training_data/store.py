"""The training data tables (docs/design.md §5) ⇄ `Project`, and the changes the API makes.

Every function takes a connection inside the caller's transaction: an import, a bulk change or
an annotation is all or nothing. After a change to the NLU examples the in_training_data flags
of the affected conversations are derived again, after one to stories or rules the turns they
cover (services/backend/training.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.text_hash import text_hash

from ..training import recompute_in_training_data, sync_story_turns
from .rasa_yaml import BLOCK_NAME, FEATURE_KINDS, Example, Feature, Project, documents, merge_domains

PROJECT = "default"
KIND_OF_PART = {"stories": "story", "rules": "rule"}


class Conflict(Exception):
    """A change that would duplicate something that exists; the message names it."""

    def __init__(self, message: str, existing: dict):
        super().__init__(message)
        self.existing = existing


class Missing(LookupError):
    pass


class Invalid(ValueError):
    pass


# ----- reading ------------------------------------------------------------------------------
def _metadata(row) -> dict | None:
    return json.loads(row.metadata) if row.metadata else None


def _example(row) -> Example:
    return Example(row.text, row.intent, json.loads(row.entities or "[]"), metadata=_metadata(row))


def load_project(connection: Connection) -> Project:
    project = Project()
    rows = connection.execute(sa.text("SELECT text, intent, entities, metadata FROM training_example ORDER BY id"))
    project.examples = [_example(r) for r in rows]
    rows = connection.execute(sa.text("SELECT kind, name, examples FROM nlu_feature ORDER BY id"))
    project.features = [Feature(r.kind, r.name, json.loads(r.examples)) for r in rows]
    for part, kind in KIND_OF_PART.items():
        rows = connection.execute(sa.text("SELECT story FROM story WHERE kind = :k ORDER BY id"), {"k": kind})
        setattr(project, part, [json.loads(r.story) for r in rows])
    project.domain = load_domain(connection)
    project.config = load_config(connection)
    return project


def load_config(connection: Connection) -> dict | None:
    content = connection.execute(sa.text("SELECT content FROM nlu_config WHERE project_id = :p"), {"p": PROJECT}).scalar()
    return json.loads(content) if content else None


def load_domain(connection: Connection, *, for_update: bool = False) -> dict | None:
    sql = "SELECT content FROM domain WHERE project_id = :p" + (" FOR UPDATE" if for_update else "")
    content = connection.execute(sa.text(sql), {"p": PROJECT}).scalar()
    return json.loads(content) if content else None


def version_of(project: Project) -> str:
    """The data version: a hash of the canonical content of what an export holds."""
    canonical = json.dumps(documents(project), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def data_version(connection: Connection) -> dict:
    project = load_project(connection)
    return {
        "version": version_of(project),
        "examples": len(project.examples),
        "intents": len({e.intent for e in project.examples}),
        "synonyms": sum(f.kind == "synonym" for f in project.features),
        "regexes": sum(f.kind == "regex" for f in project.features),
        "lookup_tables": sum(f.kind == "lookup" for f in project.features),
        "stories": len(project.stories),
        "rules": len(project.rules),
    }


# ----- whole projects -----------------------------------------------------------------------
def _check_unique(project: Project) -> None:
    seen: dict[str, Example] = {}
    for example in project.examples:
        first = seen.setdefault(example.text, example)
        if first is not example:
            raise Invalid(
                f"{example.filename}, line {example.line}: the example {example.text!r} ({example.intent}) is already at "
                f"{first.filename}, line {first.line} ({first.intent}); each text may be one example only"
            )
    for part in KIND_OF_PART:
        names = [block[BLOCK_NAME[part]] for block in getattr(project, part)]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise Invalid(f"{part}: the names {duplicated} are used more than once; each {BLOCK_NAME[part]} needs its own name")
    features = [(f.kind, f.name) for f in project.features]
    duplicated = sorted({f for f in features if features.count(f) > 1})
    if duplicated:
        raise Invalid(f"the {', '.join(f'{k} {n!r}' for k, n in duplicated)} appear more than once")


def _insert_examples(connection: Connection, examples: list[Example], annotator: str | None, upsert: bool) -> None:
    if not examples:
        return
    now = time.time()
    sql = (
        "INSERT INTO training_example (hash, text, intent, entities, filename, annotator_id, annotated_at, metadata) "
        "SELECT * FROM unnest(:h, :x, :i, :e, :f, :a, :t, :m)"
    )
    if upsert:
        sql += (
            " ON CONFLICT (hash) DO UPDATE SET intent = EXCLUDED.intent, entities = EXCLUDED.entities, "
            "annotator_id = EXCLUDED.annotator_id, annotated_at = EXCLUDED.annotated_at, metadata = EXCLUDED.metadata, "
            "updated_at = now()"
        )
    statement = sa.text(sql).bindparams(
        sa.bindparam("h", type_=sa.ARRAY(sa.Text)), sa.bindparam("x", type_=sa.ARRAY(sa.Text)),
        sa.bindparam("i", type_=sa.ARRAY(sa.Text)), sa.bindparam("e", type_=sa.ARRAY(sa.Text)),
        sa.bindparam("f", type_=sa.ARRAY(sa.Text)), sa.bindparam("a", type_=sa.ARRAY(sa.Text)),
        sa.bindparam("t", type_=sa.ARRAY(sa.Float)), sa.bindparam("m", type_=sa.ARRAY(sa.Text)),
    )  # fmt: skip
    connection.execute(
        statement,
        {
            "h": [text_hash(e.text) for e in examples],
            "x": [e.text for e in examples],
            "i": [e.intent for e in examples],
            "e": [json.dumps(e.entities, ensure_ascii=False) for e in examples],
            "f": [e.filename for e in examples],
            "a": [annotator] * len(examples),
            "t": [now] * len(examples),
            "m": [json.dumps(e.metadata, ensure_ascii=False) if e.metadata else None for e in examples],
        },
    )


def _upsert_feature(connection: Connection, feature: Feature) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO nlu_feature (kind, name, examples) VALUES (:k, :n, :e) "
            "ON CONFLICT (kind, name) DO UPDATE SET examples = EXCLUDED.examples, updated_at = now()"
        ),
        {"k": feature.kind, "n": feature.name, "e": json.dumps(feature.examples, ensure_ascii=False)},
    )


def _upsert_block(connection: Connection, part: str, block: dict, annotator: str | None) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO story (kind, name, story, annotator_id, annotated_at) VALUES (:k, :n, :s, :a, :t) "
            "ON CONFLICT (kind, name) DO UPDATE SET story = EXCLUDED.story, annotator_id = EXCLUDED.annotator_id, "
            "annotated_at = EXCLUDED.annotated_at, updated_at = now()"
        ),
        {"k": KIND_OF_PART[part], "n": block[BLOCK_NAME[part]], "s": json.dumps(block, ensure_ascii=False), "a": annotator, "t": time.time()},
    )


def _save_document(connection: Connection, table: str, document: dict) -> None:
    connection.execute(
        sa.text(
            f"INSERT INTO {table} (project_id, content) VALUES (:p, :c) "
            "ON CONFLICT (project_id) DO UPDATE SET content = EXCLUDED.content, updated_at = now()"
        ),
        {"p": PROJECT, "c": json.dumps(document, ensure_ascii=False)},
    )


def save_domain(connection: Connection, domain: dict) -> None:
    _save_document(connection, "domain", domain)


def save_config(connection: Connection, config: dict) -> None:
    _save_document(connection, "nlu_config", config)


def import_project(connection: Connection, project: Project, mode: str, annotator: str | None) -> dict:
    """Store what `project` carries. `replace`: each part the files carried (NLU data, stories,
    rules, domain, config) replaces that part; `merge`: examples (by text), features, stories and
    rules (by name) are added or updated, the domain merged, the config replaced."""
    _check_unique(project)
    # Serialise imports: two at once would each delete what the other inserted.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('rasax-training-data'))"))
    replace = mode == "replace"
    affected = [text_hash(e.text) for e in project.examples]
    if "nlu" in project.parts:
        if replace:
            affected += list(connection.execute(sa.text("DELETE FROM training_example RETURNING hash")).scalars())
            connection.execute(sa.text("DELETE FROM nlu_feature"))
        _insert_examples(connection, project.examples, annotator, upsert=not replace)
        for feature in project.features:
            _upsert_feature(connection, feature)
    for part, kind in KIND_OF_PART.items():
        if part in project.parts:
            if replace:
                connection.execute(sa.text("DELETE FROM story WHERE kind = :k"), {"k": kind})
            for block in getattr(project, part):
                _upsert_block(connection, part, block, annotator)
    if "domain" in project.parts:
        save_domain(connection, project.domain if replace else merge_domains(load_domain(connection, for_update=True), project.domain))
    if "config" in project.parts:
        save_config(connection, project.config)
    if affected:
        recompute_in_training_data(connection, sorted(set(affected)))
    if project.parts & set(KIND_OF_PART):
        sync_story_turns(connection)
    return {
        "mode": mode,
        "parts": sorted(project.parts),
        "examples": len(project.examples),
        "features": len(project.features),
        "stories": len(project.stories),
        "rules": len(project.rules),
    }


# ----- NLU examples -------------------------------------------------------------------------
EXAMPLE_COLUMNS = "id, text, intent, entities, metadata, annotator_id, annotated_at"


def example_json(row) -> dict:
    return {
        "id": row.id,
        "text": row.text,
        "intent": row.intent,
        "entities": json.loads(row.entities or "[]"),
        "metadata": _metadata(row),
        "annotator_id": row.annotator_id,
        "annotated_at": row.annotated_at,
    }


def find_examples(connection: Connection, *, text: str | None, intent: str | None, entity: str | None, limit: int, offset: int):
    where, params = [], {"limit": limit, "offset": offset}
    if text:
        where.append("text ILIKE :text ESCAPE '\\'")
        params["text"] = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if intent:
        where.append("intent = :intent")
        params["intent"] = intent
    if entity:
        where.append("entities::jsonb @> :entity")
        params["entity"] = json.dumps([{"entity": entity}])
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = connection.execute(sa.text(f"SELECT count(*) FROM training_example{clause}"), params).scalar()
    rows = connection.execute(
        sa.text(f"SELECT {EXAMPLE_COLUMNS} FROM training_example{clause} ORDER BY id LIMIT :limit OFFSET :offset"), params
    )
    return [example_json(r) for r in rows], total


def get_example(connection: Connection, example_id: int, *, for_update: bool = False) -> dict:
    row = connection.execute(
        sa.text(f"SELECT {EXAMPLE_COLUMNS} FROM training_example WHERE id = :i" + (" FOR UPDATE" if for_update else "")),
        {"i": example_id},
    ).first()
    if row is None:
        raise Missing(f"no training example {example_id}")
    return example_json(row)


def _existing_by_hash(connection: Connection, hashes: list[str]) -> dict[str, dict]:
    rows = connection.execute(sa.text(f"SELECT hash, {EXAMPLE_COLUMNS} FROM training_example WHERE hash = ANY(:h)"), {"h": hashes})
    return {r.hash: example_json(r) for r in rows}


def create_examples(connection: Connection, examples: list[Example], annotator: str | None) -> list[dict]:
    """Add new examples; 409 (Conflict) naming the existing one when a text is already there."""
    texts = [e.text for e in examples]
    repeated = next((t for t in texts if texts.count(t) > 1), None)
    if repeated is not None:
        raise Invalid(f"the text {repeated!r} is given more than once")
    hashes = [text_hash(t) for t in texts]
    # Serialise with imports and other creations, so the check below stays true until commit.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('rasax-training-data'))"))
    existing = _existing_by_hash(connection, hashes)
    if existing:
        first = next(iter(existing.values()))
        raise Conflict(f"the text {first['text']!r} is already training example {first['id']} (intent {first['intent']!r})", first)
    _insert_examples(connection, examples, annotator, upsert=False)
    recompute_in_training_data(connection, hashes)
    by_hash = _existing_by_hash(connection, hashes)
    return [by_hash[h] for h in hashes]


def upsert_annotation(connection: Connection, example: Example, annotator: str | None) -> dict:
    """Make `example` training data whatever was there (an annotation or a correction wins over
    an older label), mark the inbox messages of that text annotated, and re-derive the flags.
    The one path of the NLU inbox and of intent corrections in conversations."""
    digest = text_hash(example.text)
    if example.metadata is None:
        # An annotation says nothing about metadata: the example keeps what it had.
        kept = _existing_by_hash(connection, [digest]).get(digest)
        example = dataclasses.replace(example, metadata=kept["metadata"] if kept else None)
    _insert_examples(connection, [example], annotator, upsert=True)
    connection.execute(
        sa.text("UPDATE message_log SET annotated_at = :t, annotator_id = :a WHERE hash = :h AND annotated_at IS NULL"),
        {"t": time.time(), "a": annotator, "h": digest},
    )
    recompute_in_training_data(connection, [digest])
    return _existing_by_hash(connection, [digest])[digest]


def forget_annotation(connection: Connection, text: str) -> None:
    """Undo `upsert_annotation`: the text is no training data and its messages are back in the inbox."""
    digest = text_hash(text)
    connection.execute(sa.text("DELETE FROM training_example WHERE hash = :h"), {"h": digest})
    connection.execute(sa.text("UPDATE message_log SET annotated_at = NULL, annotator_id = NULL WHERE hash = :h"), {"h": digest})
    recompute_in_training_data(connection, [digest])


def update_example(connection: Connection, example_id: int, changes: dict, annotator: str | None) -> dict:
    current = get_example(connection, example_id, for_update=True)
    text = changes.get("text", current["text"])
    entities = changes.get("entities", current["entities"] if text == current["text"] else [])
    intent = changes.get("intent", current["intent"])
    metadata = changes.get("metadata", current["metadata"])
    digest = text_hash(text)
    if text != current["text"]:
        clash = _existing_by_hash(connection, [digest]).get(digest)
        if clash:
            raise Conflict(f"the text {text!r} is already training example {clash['id']} (intent {clash['intent']!r})", clash)
    connection.execute(
        sa.text(
            "UPDATE training_example SET hash = :h, text = :x, intent = :i, entities = :e, metadata = :m, annotator_id = :a, "
            "annotated_at = :t, updated_at = now() WHERE id = :id"
        ),
        {"h": digest, "x": text, "i": intent, "e": json.dumps(entities, ensure_ascii=False), "a": annotator, "t": time.time(), "id": example_id,
         "m": json.dumps(metadata, ensure_ascii=False) if metadata else None},
    )
    recompute_in_training_data(connection, sorted({digest, text_hash(current["text"])}))
    return get_example(connection, example_id)


def delete_examples(connection: Connection, ids: list[int]) -> int:
    """Delete all of `ids` or, when one does not exist, none (Missing names it)."""
    rows = connection.execute(sa.text("DELETE FROM training_example WHERE id = ANY(:i) RETURNING id, hash"), {"i": ids}).all()
    missing = sorted(set(ids) - {r.id for r in rows})
    if missing:
        raise Missing(f"no training examples {missing}")
    recompute_in_training_data(connection, [r.hash for r in rows])
    return len(rows)


def intents(connection: Connection) -> list[dict]:
    rows = connection.execute(
        sa.text("SELECT intent, count(*) AS n, min(id) AS first FROM training_example GROUP BY intent ORDER BY first")
    )
    return [{"intent": r.intent, "example_count": r.n} for r in rows]


def entities(connection: Connection) -> list[dict]:
    rows = connection.execute(
        sa.text(
            "SELECT e->>'entity' AS entity, count(*) AS n, "
            "array_remove(array_agg(DISTINCT e->>'role'), NULL) AS roles, array_remove(array_agg(DISTINCT e->>'group'), NULL) AS groups "
            "FROM training_example, jsonb_array_elements(entities::jsonb) e GROUP BY 1 ORDER BY 1"
        )
    )
    return [{"entity": r.entity, "example_count": r.n, "roles": sorted(r.roles), "groups": sorted(r.groups)} for r in rows]


# ----- synonyms, regexes, lookup tables -----------------------------------------------------
def features(connection: Connection, kind: str) -> list[dict]:
    assert kind in FEATURE_KINDS
    rows = connection.execute(sa.text("SELECT name, examples FROM nlu_feature WHERE kind = :k ORDER BY id"), {"k": kind})
    return [{"name": r.name, "examples": json.loads(r.examples)} for r in rows]


def put_feature(connection: Connection, feature: Feature) -> dict:
    _upsert_feature(connection, feature)
    return {"name": feature.name, "examples": feature.examples}


def delete_feature(connection: Connection, kind: str, name: str) -> None:
    if "\x00" in name or not connection.execute(sa.text("DELETE FROM nlu_feature WHERE kind = :k AND name = :n"), {"k": kind, "n": name}).rowcount:
        raise Missing(f"no {kind} {name!r}")


# ----- stories and rules --------------------------------------------------------------------
def blocks(connection: Connection, part: str) -> list[dict]:
    rows = connection.execute(sa.text("SELECT id, story FROM story WHERE kind = :k ORDER BY id"), {"k": KIND_OF_PART[part]})
    return [{"id": r.id, **json.loads(r.story)} for r in rows]


def get_block(connection: Connection, part: str, block_id: int) -> dict:
    row = connection.execute(
        sa.text("SELECT id, story FROM story WHERE kind = :k AND id = :i"), {"k": KIND_OF_PART[part], "i": block_id}
    ).first()
    if row is None:
        raise Missing(f"no {BLOCK_NAME[part]} {block_id}")
    return {"id": row.id, **json.loads(row.story)}


def _name_taken(connection: Connection, part: str, name: str, other_than: int | None = None) -> None:
    row = connection.execute(
        sa.text("SELECT id FROM story WHERE kind = :k AND name = :n AND id IS DISTINCT FROM :i"),
        {"k": KIND_OF_PART[part], "n": name, "i": other_than},
    ).first()
    if row:
        raise Conflict(f"{BLOCK_NAME[part]} {row.id} is already named {name!r}", {"id": row.id, "name": name})


def create_block(connection: Connection, part: str, block: dict, annotator: str | None) -> dict:
    name = block[BLOCK_NAME[part]]
    _name_taken(connection, part, name)
    row_id = connection.execute(
        sa.text("INSERT INTO story (kind, name, story, annotator_id, annotated_at) VALUES (:k, :n, :s, :a, :t) RETURNING id"),
        {"k": KIND_OF_PART[part], "n": name, "s": json.dumps(block, ensure_ascii=False), "a": annotator, "t": time.time()},
    ).scalar()
    sync_story_turns(connection)
    return {"id": row_id, **block}


def update_block(connection: Connection, part: str, block_id: int, block: dict, annotator: str | None) -> dict:
    get_block(connection, part, block_id)
    name = block[BLOCK_NAME[part]]
    _name_taken(connection, part, name, block_id)
    connection.execute(
        sa.text("UPDATE story SET name = :n, story = :s, annotator_id = :a, annotated_at = :t, updated_at = now() WHERE id = :i"),
        {"n": name, "s": json.dumps(block, ensure_ascii=False), "a": annotator, "t": time.time(), "i": block_id},
    )
    sync_story_turns(connection)
    return {"id": block_id, **block}


def delete_block(connection: Connection, part: str, block_id: int) -> None:
    deleted = connection.execute(
        sa.text("DELETE FROM story WHERE kind = :k AND id = :i"), {"k": KIND_OF_PART[part], "i": block_id}
    ).rowcount
    if not deleted:
        raise Missing(f"no {BLOCK_NAME[part]} {block_id}")
    sync_story_turns(connection)
