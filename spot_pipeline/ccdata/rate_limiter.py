"""Thread-safe pacing of API calls shared by every worker thread of one client."""

import math
import threading
import time
from collections import deque
from collections.abc import Callable

# The window is a little longer than one second so that the jitter between granting a call and the
# request reaching the provider cannot squeeze one call too many into the provider's one-second window.
WINDOW_SECONDS = 1.01


class RateLimiter:
    """Let at most `calls_per_second` calls start in any one-second window, across all threads.

    Calls get evenly spaced start slots (first come, first served), so a busy pool never bursts. Every
    grant is also checked against the actual start times of the previous calls, so late wake-ups cannot
    bunch calls together. `pause(seconds)` pushes back every thread's next call, including calls that
    already reserved a slot and are waiting for it.
    """

    def __init__(
        self,
        calls_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not calls_per_second > 0:
            raise ValueError(f"calls_per_second must be positive, got {calls_per_second}")
        self._calls_per_second = calls_per_second
        self._interval = WINDOW_SECONDS / calls_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._calls_per_window = max(1, math.floor(calls_per_second))
        self._recent_starts: deque[float] = deque(maxlen=self._calls_per_window)
        self._next_slot = -math.inf
        self._paused_until = -math.inf

    @property
    def calls_per_second(self) -> float:
        """The configured limit."""
        return self._calls_per_second

    @property
    def interval(self) -> float:
        """Seconds between two consecutive start slots."""
        return self._interval

    def acquire(self) -> None:
        """Block until the calling thread may start one call."""
        with self._lock:
            slot = self._reserve_slot()
        while True:
            self._sleep_until(slot)
            with self._lock:
                now = self._clock()
                if self._paused_until > slot:
                    # A pause arrived while this call was waiting: queue again behind the pause.
                    slot = self._reserve_slot()
                    continue
                earliest = self._earliest_start_within_window()
                if now >= earliest:
                    self._recent_starts.append(now)
                    return
                slot = earliest

    def pause(self, seconds: float) -> None:
        """Delay every thread's next call start until `seconds` from now (pauses never shorten)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _reserve_slot(self) -> float:
        slot = max(self._clock(), self._next_slot, self._paused_until)
        self._next_slot = slot + self._interval
        return slot

    def _earliest_start_within_window(self) -> float:
        if len(self._recent_starts) < self._calls_per_window:
            return -math.inf
        return self._recent_starts[0] + WINDOW_SECONDS

    def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            self._sleep(delay)
