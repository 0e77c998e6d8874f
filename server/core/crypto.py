"""Encryption at rest (Fernet) under keys derived from ``DEALFLOW_SECRET_KEY`` and, while a
key is being rotated, ``DEALFLOW_SECRET_KEY_PREVIOUS``."""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.core.errors import ConfigError

# Webhook signing secrets and per-team plugin credentials. The Fernet key is derived with
# HKDF-SHA256 under a fixed label, so the configured secret can be any string and never
# serves as a key directly.
INFO = b"dealflow:encryption-at-rest:v1"
"""HKDF info label: a key derived for another purpose from the same secret differs."""

MISSING_KEY = (
    "DEALFLOW_SECRET_KEY is not set: set it to a long random string (for example the output "
    "of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) before storing "
    "secrets, and keep it: what it encrypted cannot be read without it"
)
UNREADABLE = (
    "a stored secret cannot be decrypted with the configured DEALFLOW_SECRET_KEY (or any key "
    "in DEALFLOW_SECRET_KEY_PREVIOUS): it was encrypted with another key (restore that key, "
    "as DEALFLOW_SECRET_KEY_PREVIOUS during a rotation) or the stored value was altered "
    "(create or rotate the secret again)"
)


class HasSecretKey(Protocol):
    secret_key: str | None


def _keys_of(settings_or_key: HasSecretKey | str | None) -> tuple[str, ...]:
    """The current key first, then the previous ones still accepted for reading."""
    if isinstance(settings_or_key, str) or settings_or_key is None:
        key, previous = settings_or_key, ()
    else:
        key = settings_or_key.secret_key
        previous = tuple(getattr(settings_or_key, "secret_key_previous", ()) or ())
    if not key:
        raise ConfigError(MISSING_KEY)
    return (key, *(p for p in previous if p and p != key))


@lru_cache(maxsize=16)
def _fernet(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@lru_cache(maxsize=16)
def _ring(keys: tuple[str, ...]) -> MultiFernet:
    """Encrypts with the first key, decrypts with any."""
    return MultiFernet([_fernet(key) for key in keys])


def encrypt(settings_or_key: HasSecretKey | str | None, text: str) -> str:
    """``text`` encrypted (and authenticated) with the current secret key, as ASCII.

    ``settings_or_key`` is the settings (their ``secret_key``, and ``secret_key_previous``
    for reading) or the key itself; a missing key raises :class:`ConfigError` saying to set
    ``DEALFLOW_SECRET_KEY``.
    """
    return _fernet(_keys_of(settings_or_key)[0]).encrypt(text.encode()).decode("ascii")


def decrypt(settings_or_key: HasSecretKey | str | None, token: str) -> str:
    """The text :func:`encrypt` turned into ``token``, under the current or a previous key;
    :class:`ConfigError` when the key is missing, when none of the keys encrypted it, or
    when the stored value was altered."""
    try:
        return _ring(_keys_of(settings_or_key)).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise ConfigError(UNREADABLE) from exc


def is_current(settings_or_key: HasSecretKey | str | None, token: str) -> bool:
    """Whether ``token`` was encrypted under the current key (rotation has nothing to do)."""
    try:
        _fernet(_keys_of(settings_or_key)[0]).decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


def reencrypt(settings_or_key: HasSecretKey | str | None, token: str) -> str:
    """``token``'s text encrypted again under the current key; :class:`ConfigError` as
    :func:`decrypt` when no configured key reads it."""
    try:
        return _ring(_keys_of(settings_or_key)).rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise ConfigError(UNREADABLE) from exc


__all__ = ["decrypt", "encrypt", "is_current", "reencrypt"]
