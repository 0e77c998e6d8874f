"""API keys: generated once, shown once, stored as a SHA-256 digest found by its prefix."""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "dfk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 6
"""Length of the prefix kept in plain beside the digest: it names the key in listings and is
the indexed column a presented key is looked up by (6 random characters, so rows sharing one
are rare, and each candidate's digest is compared anyway)."""

SCOPES = ("ingest", "read")
"""Scopes that narrow a key below its user's role; a key without one acts with the role."""


def hash_key(key: str) -> str:
    """The digest kept in the database. Keys carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def prefix_of(key: str) -> str:
    """The display and lookup prefix of ``key`` (``dfk_`` and 6 characters)."""
    return key[:PREFIX_LENGTH]


def digest_matches(stored: str, key: str) -> bool:
    """Whether ``key`` hashes to the ``stored`` digest, compared in constant time."""
    return hmac.compare_digest(stored.encode(), hash_key(key).encode())


def generate_key() -> tuple[str, str, str]:
    """A new key as ``(plaintext, display prefix, digest)``."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, prefix_of(key), hash_key(key)
