"""Console passwords: stdlib scrypt hashes, a random salt per user, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1
"""scrypt's cost parameters (about 16 MiB of memory and a few tens of ms per check)."""
MIN_LENGTH = 8
MAX_LENGTH = 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_derive(password, salt, N, R, P))}"


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; False for no or a malformed hash. Without a
    stored hash a dummy one is still computed, so timing does not tell whether the user
    has a password (or exists)."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        params = int(n), int(r), int(p)
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        _derive(password[:MAX_LENGTH], b"0" * 16, N, R, P)
        return False
    return hmac.compare_digest(_derive(password[:MAX_LENGTH], salt_bytes, *params), expected)


def check_new_password(password: str) -> str | None:
    """Why ``password`` cannot be set, or None when it can."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    return None
