"""Password hashing: scrypt with a per-user random salt plus the deployment's PASSWORD_SALT.

The stored form names its parameters, so they can be raised later without breaking old hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _derive(password: str, pepper: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=pepper.encode() + salt, n=n, r=r, p=p, dklen=_LEN, maxmem=64 * 2**20)


def hash_password(password: str, pepper: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_derive(password, pepper, salt, _N, _R, _P))}"


def verify_password(password: str, stored: str | None, pepper: str) -> bool:
    if not stored:
        # Spend the same time as a real check, so a missing user is not told apart by timing.
        _derive(password, pepper, b"\0" * 16, _N, _R, _P)
        return False
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _derive(password, pepper, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(expected))
