"""Training data: import and export of Rasa 3.x projects, NLU examples, intents, entities,
synonyms, regexes, lookup tables, stories, rules, responses, the domain and the config.

Paths follow Rasa X. Every body is checked against the schema the OpenAPI document publishes
(training_data/schemas.py), then, where it is Rasa content, by the same reader an import uses,
so a story the API accepts is one an import of the export accepts too.
"""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from flask import Blueprint, Response, g, jsonify, request

from . import with_total
from ..auth import requires
from ..context import backend
from ..errors import ApiError, bad_request, not_found
from ..params import int_arg, json_body
from ..training_data import annotation, rasa_yaml, schemas, store
from ..training_data.archive import export_archive, upload_files
from ..training_data.inbox import given_entities
from ..training_data.rasa_yaml import Example, FormatError, Project
from ..training_data.warnings import warnings as project_warnings

bp = Blueprint("training_data", __name__, url_prefix="/api")
PROJECT = "/projects/default"
MAX_IMPORT_BYTES = 64 * 2**20
IMPORT_MODES = ("merge", "replace")
# URL segment → the kind of NLU feature (Rasa X's names).
FEATURE_ROUTES = {"synonyms": "synonym", "regexes": "regex", "lookup_tables": "lookup"}
BLOCK_ROUTES = {"stories": "stories", "rules": "rules"}


# Cache aspects (services/backend/cache.py) our changes invalidate: the examples, stories and
# rules decide in_training_data of conversations, the examples what the inbox shows; archiving
# changes the inbox only.
TRAINING, INBOX = "training", "inbox"


@contextlib.contextmanager
def _transaction(invalidates: str | None = None):
    """One transaction; the store's refusals as 4xx; after a commit, the cache told which
    aspect changed."""
    ctx = backend()
    try:
        with ctx.engine.begin() as connection:
            yield connection
    except store.Conflict as exc:
        raise ApiError(409, str(exc), "duplicate") from None
    except sa.exc.IntegrityError:
        # A concurrent change took the same text or name between our check and our write.
        raise ApiError(409, "a concurrent change took the same text or name; reload and try again", "duplicate") from None
    except store.Missing as exc:
        raise not_found(str(exc)) from None
    except (store.Invalid, FormatError, annotation.AnnotationError) as exc:
        raise bad_request(str(exc), "invalid_training_data") from None
    if invalidates:
        ctx.cache.invalidate(invalidates)


def text_arg(name: str, max_length: int) -> str | None:
    """A search parameter: None when absent or empty; 400 when too long or holding NUL (which
    PostgreSQL's text cannot hold)."""
    value = request.args.get(name) or None
    if value is not None and (len(value) > max_length or "\x00" in value):
        raise bad_request(f"'{name}' must be at most {max_length} characters, without NUL")
    return value


def _read(reader):
    """What `reader(connection)` returns, read outside a transaction."""
    with backend().engine.connect() as connection:
        return reader(connection)


def _as_rasa(part: str, content) -> Project:
    """Body content checked by the import's reader (its lines are those of the YAML shown)."""
    project = Project()
    document = {part: content} if part in ("nlu", "stories", "rules") else content
    try:
        rasa_yaml.read_file(f"<{part}>", rasa_yaml.dump_yaml(document), project)
    except FormatError as exc:
        raise bad_request(str(exc), "invalid_training_data") from None
    if part in ("domain", "config") and part not in project.parts:
        raise bad_request(f"the body is not a Rasa {part}", "invalid_training_data")
    return project


# ----- import, export, version, warnings ----------------------------------------------------
@bp.post(f"{PROJECT}/import")
@requires("training_data.import")
def import_project():
    mode = request.args.get("mode") or "merge"
    if mode not in IMPORT_MODES:
        raise bad_request(f"'mode' must be one of {list(IMPORT_MODES)}, got {mode[:50]!r}")
    if (request.content_length or 0) > MAX_IMPORT_BYTES:
        raise ApiError(413, f"the upload is larger than {MAX_IMPORT_BYTES} bytes", "body_too_large")
    if not request.mimetype.startswith("multipart/form-data"):
        raise bad_request("expected multipart/form-data with YAML files or one .tar.gz/.zip in 'files'", "bad_body")
    uploads = [(f.filename or f.name or "upload", f.read()) for _, f in request.files.items(multi=True)]
    if not uploads:
        raise bad_request("no files: send YAML files or one .tar.gz/.zip as multipart field 'files'", "bad_body")
    project = Project()
    try:
        for name, content in upload_files(uploads):
            rasa_yaml.read_file(name, content, project)
    except FormatError as exc:
        raise bad_request(str(exc), "invalid_training_data") from None
    with _transaction(TRAINING) as connection:
        result = store.import_project(connection, project, mode, g.principal.username)
        stored = store.load_project(connection)
    return jsonify({**result, "version": store.version_of(stored), "warnings": project_warnings(stored)})


@bp.get(f"{PROJECT}/export")
@requires("training_data.view")
def export_project():
    project = _read(store.load_project)
    response = Response(export_archive(rasa_yaml.write(project)), mimetype="application/gzip")
    response.headers["Content-Disposition"] = 'attachment; filename="training-data.tar.gz"'
    response.headers["X-Data-Version"] = store.version_of(project)
    return response


@bp.get(f"{PROJECT}/data_version")
@requires("training_data.view")
def data_version():
    return jsonify(_read(store.data_version))


@bp.get(f"{PROJECT}/warnings")
@requires("training_data.view")
def training_data_warnings():
    found = project_warnings(_read(store.load_project))
    return with_total(found, len(found))


# ----- NLU examples -------------------------------------------------------------------------
def _example_from(body: dict) -> Example:
    try:
        return Example(body["text"], body["intent"], given_entities(body["text"], body.get("entities", [])), metadata=body.get("metadata"))
    except annotation.AnnotationError as exc:
        raise bad_request(str(exc), "bad_body") from None


@bp.get(f"{PROJECT}/training_examples")
@requires("training_data.view")
def list_examples():
    limit, offset = int_arg("limit", 100, 1, 10_000), int_arg("offset", 0)
    filters = {key: text_arg(key, rasa_yaml.MAX_EXAMPLE_LENGTH) for key in ("text", "intent", "entity")}
    items, total = _read(lambda c: store.find_examples(c, **filters, limit=limit, offset=offset))
    return with_total(items, total)


@bp.post(f"{PROJECT}/training_examples")
@requires("training_data.edit")
def create_examples():
    body = request.get_json(silent=True)
    if not isinstance(body, (dict, list)):
        raise bad_request("the body must be an example {text, intent, entities} or a JSON list of them", "bad_body")
    one = isinstance(body, dict)
    bodies = schemas.validate(body, schemas.EXAMPLE_IN if one else schemas.EXAMPLES_IN)
    examples = [_example_from(b) for b in ([bodies] if one else bodies)]
    with _transaction(TRAINING) as connection:
        created = store.create_examples(connection, examples, g.principal.username)
    return jsonify(created[0] if one else created), 201


@bp.get(f"{PROJECT}/training_examples/<int:example_id>")
@requires("training_data.view")
def get_example(example_id: int):
    with _transaction() as connection:
        return jsonify(store.get_example(connection, example_id))


@bp.put(f"{PROJECT}/training_examples/<int:example_id>")
@requires("training_data.edit")
def update_example(example_id: int):
    changes = schemas.validate(json_body(), schemas.EXAMPLE_CHANGE)
    with _transaction(TRAINING) as connection:
        if "entities" in changes:
            text = changes.get("text") or store.get_example(connection, example_id)["text"]
            changes = {**changes, "entities": _example_from({"text": text, "intent": "-", "entities": changes["entities"]}).entities}
        return jsonify(store.update_example(connection, example_id, changes, g.principal.username))


@bp.delete(f"{PROJECT}/training_examples/<int:example_id>")
@requires("training_data.edit")
def delete_example(example_id: int):
    with _transaction(TRAINING) as connection:
        store.delete_examples(connection, [example_id])
    return "", 204


@bp.post(f"{PROJECT}/training_examples/bulk_delete")
@requires("training_data.edit")
def delete_examples():
    ids = schemas.validate(json_body(), schemas.IDS)["ids"]
    with _transaction(TRAINING) as connection:
        return jsonify({"deleted": store.delete_examples(connection, ids)})


@bp.get(f"{PROJECT}/intents")
@requires("training_data.view")
def intents():
    items = _read(store.intents)
    return with_total(items, len(items))


@bp.get(f"{PROJECT}/entities")
@requires("training_data.view")
def entities():
    items = _read(store.entities)
    return with_total(items, len(items))


# ----- synonyms, regexes, lookup tables -----------------------------------------------------
def _feature_routes(segment: str, kind: str) -> None:
    @requires("training_data.view")
    def listed():
        items = _read(lambda c: store.features(c, kind))
        return with_total(items, len(items))

    @requires("training_data.edit")
    def put(name: str):
        body = schemas.validate(json_body(), schemas.FEATURE_IN)
        project = _as_rasa("nlu", [{kind: name, "examples": "".join(f"- {e}\n" for e in body["examples"])}])
        with _transaction() as connection:
            return jsonify(store.put_feature(connection, project.features[0]))

    @requires("training_data.edit")
    def delete(name: str):
        with _transaction() as connection:
            store.delete_feature(connection, kind, name)
        return "", 204

    bp.add_url_rule(f"{PROJECT}/{segment}", f"list_{segment}", listed, methods=["GET"])
    bp.add_url_rule(f"{PROJECT}/{segment}/<name>", f"put_{segment}", put, methods=["PUT"])
    bp.add_url_rule(f"{PROJECT}/{segment}/<name>", f"delete_{segment}", delete, methods=["DELETE"])


for _segment, _kind in FEATURE_ROUTES.items():
    _feature_routes(_segment, _kind)


# ----- stories and rules --------------------------------------------------------------------
def _block_routes(part: str) -> None:
    schema = schemas.STORY_IN if part == "stories" else schemas.RULE_IN

    def body() -> dict:
        block = schemas.validate(json_body(), schema)
        return getattr(_as_rasa(part, [block]), part)[0]

    @requires("training_data.view")
    def listed():
        items = _read(lambda c: store.blocks(c, part))
        return with_total(items, len(items))

    @requires("training_data.edit")
    def create():
        block = body()
        with _transaction(TRAINING) as connection:
            return jsonify(store.create_block(connection, part, block, g.principal.username)), 201

    @requires("training_data.view")
    def one(block_id: int):
        with _transaction() as connection:
            return jsonify(store.get_block(connection, part, block_id))

    @requires("training_data.edit")
    def update(block_id: int):
        block = body()
        with _transaction(TRAINING) as connection:
            return jsonify(store.update_block(connection, part, block_id, block, g.principal.username))

    @requires("training_data.edit")
    def delete(block_id: int):
        with _transaction(TRAINING) as connection:
            store.delete_block(connection, part, block_id)
        return "", 204

    name = rasa_yaml.BLOCK_NAME[part]
    bp.add_url_rule(f"/{part}", f"list_{part}", listed, methods=["GET"])
    bp.add_url_rule(f"/{part}", f"create_{name}", create, methods=["POST"])
    bp.add_url_rule(f"/{part}/<int:block_id>", f"get_{name}", one, methods=["GET"])
    bp.add_url_rule(f"/{part}/<int:block_id>", f"update_{name}", update, methods=["PUT"])
    bp.add_url_rule(f"/{part}/<int:block_id>", f"delete_{name}", delete, methods=["DELETE"])


for _part in BLOCK_ROUTES:
    _block_routes(_part)


# ----- responses, domain, config ------------------------------------------------------------
@bp.get("/responses")
@requires("training_data.view")
def responses():
    domain = _read(store.load_domain) or {}
    items = [{"name": name, "variations": variations} for name, variations in (domain.get("responses") or {}).items()]
    return with_total(items, len(items))


def _response_name(name: str) -> str:
    if not name.strip() or len(name) > rasa_yaml.MAX_NAME_LENGTH:
        raise bad_request(f"a response name must be 1 to {rasa_yaml.MAX_NAME_LENGTH} characters")
    return name


@bp.put("/responses/<name>")
@requires("training_data.edit")
def put_response(name: str):
    variations = schemas.validate(json_body(list), schemas.RESPONSE_IN)
    _as_rasa("domain", {"responses": {_response_name(name): variations}})
    with _transaction() as connection:
        domain = store.load_domain(connection, for_update=True) or {"version": rasa_yaml.FORMAT_VERSION}
        domain["responses"] = {**(domain.get("responses") or {}), name: variations}
        store.save_domain(connection, domain)
    return jsonify({"name": name, "variations": variations})


@bp.delete("/responses/<name>")
@requires("training_data.edit")
def delete_response(name: str):
    with _transaction() as connection:
        domain = store.load_domain(connection, for_update=True) or {}
        if name not in (domain.get("responses") or {}):
            raise not_found(f"no response {name!r}")
        del domain["responses"][name]
        store.save_domain(connection, domain)
    return "", 204


@bp.get("/domain")
@requires("training_data.view")
def get_domain():
    return jsonify(_read(store.load_domain) or {"version": rasa_yaml.FORMAT_VERSION})


@bp.put("/domain")
@requires("training_data.edit")
def put_domain():
    domain = _as_rasa("domain", schemas.validate(json_body(), schemas.DOMAIN)).domain
    with _transaction() as connection:
        store.save_domain(connection, domain)
    return jsonify(domain)


@bp.get(f"{PROJECT}/config")
@requires("training_data.view")
def get_config():
    project = Project(config=_read(store.load_config))
    return jsonify(rasa_yaml.documents(project)[rasa_yaml.EXPORT_FILES["config"]])


@bp.put(f"{PROJECT}/config")
@requires("training_data.edit")
def put_config():
    config = _as_rasa("config", schemas.validate(json_body(), schemas.CONFIG)).config
    with _transaction() as connection:
        store.save_config(connection, config)
    return jsonify(config)
