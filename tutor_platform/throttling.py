"""Rate limits counted atomically in the cache, and failing open without it.

DRF's own throttles keep a list of timestamps that every request reads and
writes back: two requests at once both read "29 of 30" and both pass (120
simultaneous sends let 71 through a budget of 30). These count with one
atomic increment instead (Redis `INCR`, or the local-memory cache's lock),
in a window that opens with a client's first request and lasts the rate's
period, so a budget of N lets exactly N through per window.

Losing the cache must not take the API down with it: when the cache cannot
be reached the request is allowed, a warning is logged and
`FAIL_OPEN_COUNT` grows.
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
FAIL_OPEN_COUNT = 0


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
            global FAIL_OPEN_COUNT
            FAIL_OPEN_COUNT += 1
            logger.warning(
                "Throttle %s failing open: cache unavailable (%s); fail-open count %d",
                self.scope,
                type(exc).__name__,
                FAIL_OPEN_COUNT,
            )
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


class LoginRateThrottle(AtomicRateThrottle):
    """Login attempts (API and admin), per client address and per account.

    Counted per address so one client cannot try many accounts, and per
    account so many addresses cannot try one. The account's key is a hash
    of the identifier, so no email address is written to the cache.
    """

    scope = "login"
    part = "address"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if self.part == "address":
            ident = self.get_ident(request)
        else:
            identifier = login_identifier(request)
            if not identifier:
                return None
            ident = hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:32]
        return self.cache_format % {"scope": f"{self.scope}_{self.part}", "ident": ident}


def login_identifier(request: Any) -> str:
    """The email or username a login request names (API JSON or admin form)."""
    data = getattr(request, "data", None)
    if data is None:
        data = request.POST
    if not hasattr(data, "get"):
        return ""
    value = data.get("email") or data.get("username") or ""
    return value if isinstance(value, str) else ""


class LoginAccountThrottle(LoginRateThrottle):
    part = "account"


LOGIN_THROTTLES = (LoginRateThrottle, LoginAccountThrottle)


class PasswordCheckThrottle(AtomicRateThrottle):
    """Password checks by a signed-in user (erasing the account): the login
    budget, per user, so a stolen access token cannot guess the password."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": "login_user", "ident": request.user.pk}


class TryItThrottle(AtomicRateThrottle):
    """The admin's try-it panel, per editor: each try costs model time."""

    scope = "try_it"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class ExportRateThrottle(AtomicRateThrottle):
    """Data exports, per user: each one reads everything the user has."""

    scope = "export"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


def login_wait(request: Any) -> float | None:
    """Seconds to wait when a login attempt is over budget, else None."""
    throttles = [throttle_class() for throttle_class in LOGIN_THROTTLES]
    waits = [t.wait() for t in throttles if not t.allow_request(request, None)]
    return max(waits) if waits else None
