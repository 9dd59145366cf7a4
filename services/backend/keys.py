"""The RS256 key pair that signs user and guest JWTs.

From JWT_PRIVATE_KEY_PATH / JWT_PUBLIC_KEY_PATH when `init` wrote them; otherwise one pair is
created on first start and kept in table rsa_key_pair, so every replica and every gunicorn
worker signs with the same key. An advisory lock makes the first creation single even when
several workers start at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine

from services.common.config import Settings

_KEY_LOCK = 0x5241_584B  # "RAXK"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def generate_key_pair() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return KeyPair(private_pem, public_pem)


def _stored(connection) -> KeyPair | None:
    row = connection.execute(sa.text("SELECT private_key, public_key FROM rsa_key_pair ORDER BY id LIMIT 1")).first()
    return KeyPair(row.private_key, row.public_key) if row else None


def load_key_pair(settings: Settings, engine: Engine) -> KeyPair:
    if settings.jwt_private_key_path and settings.jwt_public_key_path:
        with open(settings.jwt_private_key_path) as private, open(settings.jwt_public_key_path) as public:
            pair = KeyPair(private.read(), public.read())
        # Fail at start, not at the first login, when the files do not form a pair.
        serialization.load_pem_private_key(pair.private_pem.encode(), password=None)
        serialization.load_pem_public_key(pair.public_pem.encode())
        return pair
    with engine.connect() as connection:
        pair = _stored(connection)
    if pair:
        return pair
    with engine.begin() as connection:
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _KEY_LOCK})
        pair = _stored(connection)
        if pair is None:
            pair = generate_key_pair()
            connection.execute(
                sa.text("INSERT INTO rsa_key_pair (private_key, public_key) VALUES (:private, :public)"),
                {"private": pair.private_pem, "public": pair.public_pem},
            )
    return pair
