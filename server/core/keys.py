"""API keys: generated once, shown once, stored as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "dfk_"


def hash_key(key: str) -> str:
    """The digest kept in the database. Keys carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str, str]:
    """A new key as ``(plaintext, display prefix, digest)``."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[: len(KEY_PREFIX) + 6], hash_key(key)
