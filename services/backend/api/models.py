"""Models: upload, list, tag, delete, and the model server Rasa OSS pulls from (docs/design.md §4)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
import time
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request, send_file

from . import with_total
from ..auth import check_rasa_x_token, requires
from ..context import backend
from ..errors import ApiError, bad_request, not_found

bp = Blueprint("models", __name__, url_prefix="/api")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_METADATA_FILES = ("metadata.json", "fingerprint.json")  # Rasa 3 / Rasa 2 model archives
_MAX_METADATA_BYTES = 1 << 20


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value or ""):
        raise bad_request(f"{what} must be 1-200 letters, digits, '.', '_' or '-'", f"bad_{what}")
    return value


def _model_dict(row, tags: list[str]) -> dict:
    return {
        "model": row.name,
        "project": row.project_id,
        "hash": row.hash,
        "size": row.size,
        "version": row.version,
        "trained_at": row.trained_at,
        "data_version": row.data_version,
        "tags": tags,
    }


def _inspect_archive(path: str) -> dict:
    """Reject anything that is not a Rasa model archive; return what its metadata says."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for member in archive:
                if os.path.basename(member.name) in _METADATA_FILES and member.isfile():
                    if member.size > _MAX_METADATA_BYTES:
                        break
                    metadata = json.load(archive.extractfile(member))
                    return metadata if isinstance(metadata, dict) else {}
    except (tarfile.TarError, OSError, EOFError, ValueError, UnicodeDecodeError):
        raise bad_request("the file is not a gzipped tar archive of a Rasa model", "bad_model") from None
    raise bad_request("the archive has no metadata.json: not a Rasa model", "bad_model")


def _trained_at(metadata: dict) -> float:
    value = metadata.get("trained_at")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    return time.time()


@bp.get("/models")
@requires("models.view")
def list_models():
    with backend().engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM model ORDER BY trained_at DESC NULLS LAST, id DESC")).all()
        tags = connection.execute(sa.text("SELECT model_id, tag FROM model_tag ORDER BY tag")).all()
    by_model: dict[int, list[str]] = {}
    for model_id, tag in tags:
        by_model.setdefault(model_id, []).append(tag)
    return with_total([_model_dict(row, by_model.get(row.id, [])) for row in rows], len(rows))


def store_model(temporary: str, name: str, *, data_version: str | None = None):
    """Keep the model archive at `temporary` (a file in the model folder) as model `name`: checked,
    hashed, recorded and renamed in one step, or refused with nothing stored. Returns its row."""
    metadata = _inspect_archive(temporary)
    digest = hashlib.sha256()
    with open(temporary, "rb") as model_file:
        while chunk := model_file.read(1 << 20):
            digest.update(chunk)
    final = os.path.join(backend().settings.model_dir, f"{name}.tar.gz")
    with backend().engine.begin() as connection:
        row = connection.execute(
            sa.text(
                "INSERT INTO model (name, hash, path, size, version, trained_at, data_version) "
                "VALUES (:n, :h, :p, :s, :v, :t, :d) ON CONFLICT (name) DO NOTHING RETURNING *"
            ),
            {
                "n": name,
                "h": digest.hexdigest(),
                "p": final,
                "s": os.path.getsize(temporary),
                "v": str(metadata.get("rasa_open_source_version") or metadata.get("version") or "") or None,
                "t": _trained_at(metadata),
                "d": data_version,
            },
        ).first()
        if row is None:
            raise ApiError(409, f"a model named {name!r} exists", "model_exists")
        os.replace(temporary, final)
    return row


@bp.post("/models")
@requires("models.modify")
def upload_model():
    upload = request.files.get("model")
    if upload is None:
        raise bad_request("send the model as multipart/form-data field 'model'", "missing_model")
    filename = os.path.basename(upload.filename or "")
    name = request.form.get("name") or re.sub(r"\.tar\.gz$|\.tgz$", "", filename)
    _check_name(name, "model_name")
    model_dir = backend().settings.model_dir
    os.makedirs(model_dir, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=model_dir, prefix=".upload-", suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.stream.read(1 << 20):
                out.write(chunk)
        return jsonify(_model_dict(store_model(temporary, name), [])), 201
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _model_row(connection, name: str):
    row = connection.execute(sa.text("SELECT * FROM model WHERE name = :n"), {"n": name}).first()
    if row is None:
        raise not_found(f"no model {name!r}")
    return row


def _send_model(row, etag: str):
    if not os.path.isfile(row.path):
        raise ApiError(404, f"the file of model {row.name!r} is missing on disk", "model_file_missing")
    response = send_file(row.path, mimetype="application/gzip", conditional=False, etag=False, max_age=0)
    response.headers["ETag"] = etag
    response.headers["filename"] = os.path.basename(row.path)
    response.headers["Content-Disposition"] = f'attachment; filename="{os.path.basename(row.path)}"'
    return response


@bp.get("/models/<name>")
@requires("models.view")
def download_model(name: str):
    with backend().engine.connect() as connection:
        row = _model_row(connection, name)
    return _send_model(row, row.hash)


@bp.delete("/models/<name>")
@requires("models.modify")
def delete_model(name: str):
    with backend().engine.begin() as connection:
        row = _model_row(connection, name)
        connection.execute(sa.text("DELETE FROM model WHERE id = :i"), {"i": row.id})
    if os.path.isfile(row.path):
        os.unlink(row.path)
    return "", 204


def set_tag(connection, model_id: int, tag: str) -> None:
    # A tag names one model: moving "production" to a new model is how a model goes live.
    connection.execute(
        sa.text(
            "INSERT INTO model_tag (tag, model_id) VALUES (:t, :m) "
            "ON CONFLICT (tag) DO UPDATE SET model_id = EXCLUDED.model_id, created_at = now()"
        ),
        {"t": tag, "m": model_id},
    )


@bp.put("/models/<name>/tags/<tag>")
@requires("models.modify")
def tag_model(name: str, tag: str):
    _check_name(tag, "tag")
    with backend().engine.begin() as connection:
        set_tag(connection, _model_row(connection, name).id, tag)
    return "", 204


@bp.delete("/models/<name>/tags/<tag>")
@requires("models.modify")
def untag_model(name: str, tag: str):
    with backend().engine.begin() as connection:
        row = _model_row(connection, name)
        deleted = connection.execute(
            sa.text("DELETE FROM model_tag WHERE tag = :t AND model_id = :m"), {"t": tag, "m": row.id}
        ).rowcount
    if not deleted:
        raise not_found(f"model {name!r} has no tag {tag!r}")
    return "", 204


def _etag_values(header: str) -> set[str]:
    # Rasa echoes the ETag it got verbatim; other clients quote it or mark it weak.
    return {v.strip().removeprefix("W/").strip('"') for v in header.split(",") if v.strip()}


@bp.get("/models/tags/<tag>")
@bp.get("/projects/default/models/tags/<tag>", endpoint="pull_model_legacy")
def pull_model(tag: str):
    check_rasa_x_token(request.args.get("token"))
    with backend().engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT m.* FROM model m JOIN model_tag t ON t.model_id = m.id WHERE t.tag = :t"), {"t": tag}
        ).first()
    if row is None:
        raise not_found(f"no model is tagged {tag!r}", "no_model_for_tag")
    if row.hash in _etag_values(request.headers.get("If-None-Match", "")):
        return Response(status=204, headers={"ETag": row.hash})
    return _send_model(row, row.hash)
