"""Encryption at rest (Fernet) under a key derived from ``DEALFLOW_SECRET_KEY``."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.core.errors import ConfigError

# Webhook signing secrets now, per-team plugin credentials later. The Fernet key is derived
# with HKDF-SHA256 under a fixed label, so the configured secret can be any string and never
# serves as a key directly.
INFO = b"dealflow:encryption-at-rest:v1"
"""HKDF info label: a key derived for another purpose from the same secret differs."""

MISSING_KEY = (
    "DEALFLOW_SECRET_KEY is not set: set it to a long random string (for example the output "
    "of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) before storing "
    "secrets, and keep it: what it encrypted cannot be read without it"
)


class HasSecretKey(Protocol):
    secret_key: str | None


def _secret_of(settings_or_key: HasSecretKey | str | None) -> str:
    key = (
        settings_or_key
        if isinstance(settings_or_key, str) or settings_or_key is None
        else (settings_or_key.secret_key)
    )
    if not key:
        raise ConfigError(MISSING_KEY)
    return key


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(settings_or_key: HasSecretKey | str | None, text: str) -> str:
    """``text`` encrypted (and authenticated) with the configured secret key, as ASCII.

    ``settings_or_key`` is the settings (their ``secret_key``) or the key itself; a missing
    key raises :class:`ConfigError` saying to set ``DEALFLOW_SECRET_KEY``.
    """
    return _fernet(_secret_of(settings_or_key)).encrypt(text.encode()).decode("ascii")


def decrypt(settings_or_key: HasSecretKey | str | None, token: str) -> str:
    """The text :func:`encrypt` turned into ``token``; :class:`ConfigError` when the key is
    missing or is not the one that encrypted it (or the stored value was altered)."""
    try:
        return _fernet(_secret_of(settings_or_key)).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise ConfigError(
            "a stored secret cannot be decrypted with the configured DEALFLOW_SECRET_KEY: "
            "it was encrypted with another key (restore that key) or the stored value was "
            "altered (create or rotate the secret again)"
        ) from exc


__all__ = ["decrypt", "encrypt"]
