"""Rate limits counted atomically in the cache, and failing open without it.

DRF's own throttles keep a list of timestamps that every request reads and
writes back: two requests at once both read "29 of 30" and both pass (120
simultaneous sends let 71 through a budget of 30). These count with one
atomic increment instead (Redis `INCR`, or the local-memory cache's lock),
in a window that opens with a client's first request and lasts the rate's
period, so a budget of N lets exactly N through per window.

Losing the cache must not take the API down with it: when the cache cannot
be reached the request is allowed and a warning is logged.
"""

import hashlib
import logging
import math
import time
from typing import Any

from django.core.cache import cache
from rest_framework import throttling

from .cache import redis_for

logger = logging.getLogger(__name__)

# Requests let through because the cache was unreachable, per process.


# INCR, the window's expiry set by its first hit (or put back on a key that
# lost it), the seconds left: one round trip, atomic, on any Redis version
# (EXPIRE ... NX would need Redis 7).
_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""
_hit_script: Any = None  # registered once per process; run with whichever client


def hit(key: str, window_seconds: int) -> tuple[int, float]:
    """Counts one more request in `key`'s window: the count so far, and the
    seconds until the window closes."""
    found = redis_for(key)
    if found is not None:
        client, full_key = found
        global _hit_script
        if _hit_script is None:  # two threads may both register it: the same script
            _hit_script = client.register_script(_HIT_SCRIPT)
        count, ttl = _hit_script(keys=[full_key], args=[window_seconds], client=client)
        return int(count), float(ttl)
    now = time.time()
    cache.add(f"{key}:closes", now + window_seconds, window_seconds)
    cache.add(key, 0, window_seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, window_seconds)
        count = 1
    return count, cache.get(f"{key}:closes", now + window_seconds) - now


def peek(key: str) -> tuple[int, float]:
    """What `hit` has counted in `key`'s window, and the seconds until it
    closes, counting nothing: (0, 0) when no window is open."""
    found = redis_for(key)
    if found is not None:
        client, full_key = found
        count, ttl = client.pipeline(transaction=False).get(full_key).ttl(full_key).execute()
        return int(count or 0), float(max(ttl, 0))
    count = cache.get(key, 0)
    closes = cache.get(f"{key}:closes")
    return count, (closes - time.time()) if closes is not None else 0.0


class AtomicRateThrottle(throttling.SimpleRateThrottle):
    """`SimpleRateThrottle` counted with `hit()`."""

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            count, self.closes_in = hit(self.key, self.duration)
        except Exception as exc:  # any cache failure degrades the same way
            logger.warning("Throttle %s failing open: cache unavailable (%s)", self.scope, type(exc).__name__)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return max(1, math.ceil(self.closes_in))


class AnonRateThrottle(AtomicRateThrottle, throttling.AnonRateThrottle):
    """Per client address (`NUM_PROXIES` says how many proxies to look through)."""


class UserRateThrottle(AtomicRateThrottle, throttling.UserRateThrottle):
    """Per user. Anonymous requests are AnonRateThrottle's (both are the
    defaults): counting them here too would cost a second cache round trip
    for every anonymous request, such as a catalogue read."""

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)


class LoginFailures:
    """Failed logins (API and admin alike), counted per client address
    (THROTTLE_LOGIN_ADDRESS_RATE) and per address and account
    (THROTTLE_LOGIN_RATE). Only failures count, and only this address's:
    nobody can lock a student or an admin out from elsewhere, and a correct
    password from an address within its budget always gets in, however
    many other addresses failed for the account. The account's key is a
    hash of the identifier, so no email address is written to the cache.
    """

    def __init__(self, request: Any) -> None:
        address = AnonRateThrottle().get_ident(request)
        self.budgets = [(f"throttle_login_address_{address}", "login_address")]
        identifier = login_identifier(request).strip().lower()
        if identifier:
            account = hashlib.sha256(identifier.encode()).hexdigest()[:32]
            self.budgets.append((f"throttle_login_{address}_{account}", "login"))

    def _limits(self) -> list[tuple[str, int, int]]:
        rates = throttling.SimpleRateThrottle.THROTTLE_RATES
        limits = []
        for key, scope in self.budgets:
            allowed, seconds = throttling.SimpleRateThrottle.parse_rate(None, rates.get(scope))
            if allowed is not None:
                limits.append((key, allowed, seconds))
        return limits

    def wait(self) -> float | None:
        """Seconds this address must wait before it may try this account again, else None."""
        waits = []
        try:
            for key, allowed, _seconds in self._limits():
                count, closes_in = peek(key)
                if count >= allowed:
                    waits.append(closes_in)
        except Exception as exc:  # the cache is down: fail open, as every throttle does
            logger.warning("Login throttle failing open: cache unavailable (%s)", type(exc).__name__)
            return None
        return max(1, math.ceil(max(waits))) if waits else None

    def record(self) -> None:
        """Counts one failed attempt against this address and this account from it."""
        try:
            for key, _allowed, seconds in self._limits():
                hit(key, seconds)
        except Exception as exc:
            logger.warning("Login failure not counted: cache unavailable (%s)", type(exc).__name__)


def login_identifier(request: Any) -> str:
    """The email or username a login request names (API JSON or admin form)."""
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    if not hasattr(data, "get"):
        return ""
    value = data.get("email") or data.get("username") or ""
    return value if isinstance(value, str) else ""


class PasswordCheckThrottle(AtomicRateThrottle):
    """Password checks by a signed-in user (erasing the account): the login
    budget, per user, so a stolen access token cannot guess the password."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": "login_user", "ident": request.user.pk}


class PerUserScopeThrottle(AtomicRateThrottle):
    """A budget of its own (`scope`) per signed-in user, for costly requests."""

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TryItThrottle(PerUserScopeThrottle):
    """The admin's try-it panel, per editor: each try costs model time."""

    scope = "try_it"


class ExportRateThrottle(PerUserScopeThrottle):
    """Data exports, per user: each one reads everything the user has."""

    scope = "export"


class UploadThrottle(PerUserScopeThrottle):
    """Uploads (attachments), per user: each one is decoded and stored."""

    scope = "upload"
