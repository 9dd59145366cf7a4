"""The backup archive without Docker: what `write` puts in it, and what `extract_verified` and
`check_compatible` refuse. The dumps here are byte streams; the real pg_dump and pg_restore run in
tests/e2e/test_backup_restore.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from deploy import backup
from deploy.backup import BackupError
from deploy.install import initialize
from deploy.layout import Layout
from services import __version__

FACTS = {"project": "rxunit", "postgres_major": 15, "rasa_version": "3.6.21"}


@pytest.fixture
def layout(tmp_path) -> Layout:
    layout = Layout(tmp_path / "rasa")
    initialize(layout, "rxunit")
    (layout.root / "models" / "bot.tar.gz").write_bytes(os.urandom(3000))
    (layout.override_file).write_text("services: {}\n")
    return layout


def chunks(data: bytes, size: int = 700):
    return (data[i:i + size] for i in range(0, len(data), size))


def make(tmp_path: Path, layout: Layout, dumps=None, **kwargs) -> tuple[Path, dict]:
    output = tmp_path / "out" / "b.tar"
    dumps = {"rasa": ("rasa", chunks(b"R" * 1234)), "tracker": None} if dumps is None else dumps
    return output, backup.write(output, layout, dumps, FACTS, note=lambda _: None, **kwargs)


def test_streamed_dumps_and_files_are_members_with_their_checksums(tmp_path, layout):
    rasa, tracker = os.urandom(5000), b""  # not a multiple of 512, and an empty one
    output, manifest = make(tmp_path, layout, {"rasa": ("rasa", chunks(rasa)), "tracker": ("tracker", iter([tracker]))})
    assert output.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in output.parent.iterdir()] == ["b.tar"]  # no partial file left
    with tarfile.open(output) as tar:
        assert tar.extractfile("databases/rasa.dump").read() == rasa
        assert tar.extractfile("databases/tracker.dump").read() == tracker
        names = tar.getnames()
        assert json.loads(tar.extractfile("manifest.json").read()) == manifest
    assert names[-1] == "manifest.json" and set(names[:-1]) == set(manifest["members"])
    assert manifest["members"]["databases/rasa.dump"] == {"sha256": hashlib.sha256(rasa).hexdigest(), "size": 5000}
    secret = (layout.credentials / "DB_PASSWORD").read_bytes()
    assert manifest["members"]["credentials/DB_PASSWORD"]["sha256"] == hashlib.sha256(secret).hexdigest()
    assert {".env", "auth/jwt_private_key.pem", "models/bot.tar.gz", "docker-compose.override.yml",
            "actions"} <= set(names)
    assert manifest["databases"] == {"rasa": {"name": "rasa", "member": "databases/rasa.dump"},
                                     "tracker": {"name": "tracker", "member": "databases/tracker.dump"}}
    assert manifest["rasax_deploy_version"] == __version__ and manifest["postgres_major"] == 15


def test_exclude_models_leaves_them_out_and_says_so(tmp_path, layout):
    _, manifest = make(tmp_path, layout, exclude=["models"])
    assert not any(name.startswith("models") for name in manifest["members"])
    assert manifest["excluded"] == ["models"]
    with pytest.raises(BackupError, match="cannot exclude credentials"):
        make(tmp_path, layout, exclude=["credentials"])


def test_a_failing_dump_leaves_no_archive(tmp_path, layout):
    def broken():
        yield b"x" * 100
        raise RuntimeError("pg_dump died")

    with pytest.raises(RuntimeError, match="pg_dump died"):
        make(tmp_path, layout, {"rasa": ("rasa", broken())})
    assert list((tmp_path / "out").iterdir()) == []


def test_extract_verified_gives_back_every_member_with_its_mode(tmp_path, layout):
    output, manifest = make(tmp_path, layout)
    into = tmp_path / "into"
    into.mkdir()
    got, modes = backup.extract_verified(output, into)
    assert got == manifest
    assert (into / "databases/rasa.dump").read_bytes() == b"R" * 1234
    assert (into / "models/bot.tar.gz").read_bytes() == (layout.root / "models/bot.tar.gz").read_bytes()
    assert modes["credentials/DB_PASSWORD"][0] == 0o600 and modes["auth/jwt_private_key.pem"][0] == 0o600


def rewrite(archive: Path, target: Path, change) -> Path:
    """A copy of `archive` with `change(name, data) -> (name, data) | None` applied to each member."""
    with tarfile.open(archive) as source, tarfile.open(target, "w") as tar:
        for member in source:
            data = source.extractfile(member).read() if member.isreg() else None
            changed = change(member.name, data)
            if changed is None:
                continue
            member.name, data = changed
            if data is not None:
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    return target


def refusal(tmp_path, archive: Path) -> str:
    into = tmp_path / "refused"
    into.mkdir(exist_ok=True)
    with pytest.raises(BackupError) as caught:
        backup.extract_verified(archive, into)
    return str(caught.value)


def test_corrupt_incomplete_tampered_and_foreign_archives_are_refused(tmp_path, layout):
    output, _ = make(tmp_path, layout)
    flipped = rewrite(output, tmp_path / "flipped.tar",
                      lambda n, d: (n, b"S" + d[1:]) if n == "databases/rasa.dump" else (n, d))
    assert "is corrupt: the checksum of databases/rasa.dump differs" in refusal(tmp_path, flipped)
    dropped = rewrite(output, tmp_path / "dropped.tar", lambda n, d: None if n == ".env" else (n, d))
    assert "is incomplete: .env missing" in refusal(tmp_path, dropped)
    added = rewrite(output, tmp_path / "added.tar",
                    lambda n, d: ("models/extra.tar.gz", d) if n == "models/bot.tar.gz" else (n, d))
    assert "tampered with: models/extra.tar.gz not in its manifest" in refusal(tmp_path, added)
    escaping = rewrite(output, tmp_path / "escaping.tar", lambda n, d: ("../evil", d) if n == ".env" else (n, d))
    assert "'../evil' is unsafe" in refusal(tmp_path, escaping)
    assert not (tmp_path / "evil").exists()
    foreign = rewrite(output, tmp_path / "foreign.tar", lambda n, d: None if n == "manifest.json" else (n, d))
    assert "is not a rasax-deploy backup: it has no manifest.json" in refusal(tmp_path, foreign)
    other = rewrite(output, tmp_path / "other.tar", lambda n, d: (n, json.dumps({"format": "x"}).encode())
                    if n == "manifest.json" else (n, d))
    assert "not a rasax-deploy backup (its manifest's format is 'x'" in refusal(tmp_path, other)
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(output.read_bytes()[:3000])
    assert "truncated" in refusal(tmp_path, truncated) or "incomplete" in refusal(tmp_path, truncated)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 200)
    assert "not a readable tar archive" in refusal(tmp_path, text)


def test_archives_of_a_newer_version_or_postgresql_are_refused(tmp_path):
    archive = tmp_path / "b.tar"
    manifest = {"rasax_deploy_version": __version__, "postgres_major": 15}
    backup.check_compatible(manifest, archive, "rasax/postgres:15")
    backup.check_compatible(dict(manifest, rasax_deploy_version="0.0.9", postgres_major=14), archive,
                            "rasax/postgres:15")
    newer = ".".join(str(n + 1) for n in backup.version_tuple(__version__))
    with pytest.raises(BackupError, match=f"made by rasax-deploy {newer}, newer than this one"):
        backup.check_compatible(dict(manifest, rasax_deploy_version=newer), archive, "rasax/postgres:15")
    with pytest.raises(BackupError, match="PostgreSQL 16 dumps; this stack runs PostgreSQL 15"):
        backup.check_compatible(dict(manifest, postgres_major=16), archive, "rasax/postgres:15")


def test_keep_deletes_the_oldest_archives_of_that_project_only(tmp_path):
    names = [f"rasax-backup-rxunit-2026120{d}T010000Z.tar" for d in range(1, 6)]
    others = ["rasax-backup-other-20261201T010000Z.tar", "notes.txt"]
    for name in names + others:
        (tmp_path / name).write_text("x")
    removed = backup.prune(tmp_path, "rxunit", 2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[3:] + others)
    with pytest.raises(BackupError, match="at least 1"):
        backup.prune(tmp_path, "rxunit", 0)
