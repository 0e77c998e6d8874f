"""Standard Webhooks signatures: the ``webhook-*`` headers checked for form, age and HMAC."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from server.core.errors import Unauthorized

SECRET_PREFIX = "whsec_"
TOLERANCE = dt.timedelta(minutes=5)
"""How far a ``webhook-timestamp`` may be from the server's clock, either way."""

_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
SIGNED_CONTENT = "'{webhook-id}.{webhook-timestamp}.' followed by the exact body bytes"


@dataclass(frozen=True)
class Signed:
    """The signature headers of a request, checked for form and freshness."""

    webhook_id: str
    timestamp: str
    signatures: tuple[bytes, ...]


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``v1,<base64>`` signature entry of ``body`` under ``secret`` (senders and tests)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def parse(headers: Mapping[str, str], now: dt.datetime) -> Signed:
    """The signature headers, or :class:`Unauthorized` saying which is missing, malformed
    or outside the replay window."""
    values = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not values.get(name, "").strip():
            raise Unauthorized(
                f"the {name} header is missing: sign the request as Standard Webhooks do "
                "(webhook-id, webhook-timestamp and webhook-signature headers)"
            )
    webhook_id = values["webhook-id"].strip()
    if not _ID_RE.match(webhook_id):
        raise Unauthorized("the webhook-id header must be 1 to 200 visible ASCII characters")
    timestamp = values["webhook-timestamp"].strip()
    if not _TIMESTAMP_RE.match(timestamp):
        raise Unauthorized(
            "the webhook-timestamp header must be the time in whole seconds since the Unix epoch"
        )
    skew = int(timestamp) - now.timestamp()
    window = int(TOLERANCE.total_seconds())
    if abs(skew) > window:
        where = "in the past" if skew < 0 else "in the future"
        raise Unauthorized(
            f"the webhook-timestamp is {abs(round(skew))} s {where}, more than the {window} s "
            "allowed: sign each attempt with the current time (and check the sender's clock)"
        )
    signatures = []
    for entry in values["webhook-signature"].split():
        version, comma, encoded = entry.partition(",")
        if version != "v1" or not comma or not encoded:
            continue  # other schemes are for other receivers
        try:
            signatures.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not signatures:
        raise Unauthorized("the webhook-signature header holds no 'v1,<base64 HMAC-SHA256>' entry")
    return Signed(webhook_id, timestamp, tuple(signatures))


def check(signed: Signed, body: bytes, secrets: Iterable[str]) -> None:
    """Pass when any signature entry is the HMAC of the request under any of ``secrets``."""
    content = f"{signed.webhook_id}.{signed.timestamp}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        expected = hmac.new(key, content, hashlib.sha256).digest()
        if any(hmac.compare_digest(expected, given) for given in signed.signatures):
            return
    raise Unauthorized(
        "no webhook-signature entry matches a live secret of the team: sign "
        f"{SIGNED_CONTENT} with HMAC-SHA256, keyed by the base64-decoded part of the "
        "secret after whsec_"
    )


def verify(
    headers: Mapping[str, str], body: bytes, secrets: Iterable[str], now: dt.datetime
) -> str:
    """Check a request's signature headers against ``secrets``; its ``webhook-id``."""
    signed = parse(headers, now)
    check(signed, body, secrets)
    return signed.webhook_id


__all__ = ["SECRET_PREFIX", "TOLERANCE", "Signed", "check", "parse", "sign", "verify"]
