"""Failed console sign-ins, limited per client address and per email."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from server.core.ratelimit import LocalBuckets

FAILURES_BURST = 10
"""Failed sign-ins allowed at once from one address, or for one email..."""
FAILURES_PER_SECOND = 1 / 30
"""...and then one every 30 seconds."""


class SignInLimiter:
    """Each failed sign-in takes a token from its address's and its email's bucket; once one
    is empty, sign-ins from that address (or for that email) are refused until it refills.
    Successful sign-ins cost nothing."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.buckets = LocalBuckets(FAILURES_PER_SECOND, FAILURES_BURST, clock=clock)
        self.clock = clock
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _keys(self, client: str, email: str) -> list[str]:
        return [f"ip:{client}"] + ([f"email:{email.lower()}"] if email else [])

    def allowed(self, client: str, email: str) -> bool:
        """Whether a sign-in from ``client`` for ``email`` may be tried now."""
        now = self.clock()
        with self._lock:
            return all(self._blocked.get(key, 0.0) <= now for key in self._keys(client, email))

    def failed(self, client: str, email: str) -> None:
        """Called after a failed sign-in."""
        for key in self._keys(client, email):
            decision = self.buckets.take_now(key)
            if not decision.allowed:
                with self._lock:
                    self._blocked[key] = self.clock() + decision.retry_after
