"""A per-process circuit breaker: stop calling an AI-Core that keeps failing."""

import threading
import time
from collections.abc import Callable


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures for `reset_seconds`.

    While open, `allow()` is False. After `reset_seconds` one trial call is
    let through (half-open): its success closes the circuit, its failure
    opens it again for another period.
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial_in_flight or self._clock() - self._opened_at < self.reset_seconds:
                return False
            self._trial_in_flight = True
            return True

    def retry_after(self) -> int:
        with self._lock:
            if self._opened_at is None:
                return 0
            remaining = self.reset_seconds - (self._clock() - self._opened_at)
            return max(1, int(remaining + 0.999))

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_in_flight or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False
