"""Thread-safe pacing of API calls shared by every worker thread of one client.

The provider counts the requests that reach it in any one-second window. The limiter cannot see
when a request reaches the provider, only when it was sent and when its answer came back, and on a
loaded machine the time between those can stretch. So a call may start only once the call
`calls_per_second` places before it has been answered, and a whole window after that answer: the
provider saw that earlier request before answering it, and sees this one after it is sent, so the
two are always more than a window apart at the provider, however late threads wake up or how slow
the network is. The margin is by design, not by timing luck.

The same limiter guards the key's longer windows (a minute, an hour) without spacing the calls, so a
run may use what is left of the minute at once, then waits for the window to pass.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Windows are counted a hundredth longer than they are, for the provider's clock granularity.
WINDOW_MARGIN = 1.01
WINDOW_SECONDS = 1.0 * WINDOW_MARGIN
# How often a call waiting for an earlier call's answer looks again (pauses included).
_WAIT_POLL_SECONDS = 0.05


@dataclass
class _Call:
    started: float
    answered: float | None = None


class RateLimiter:
    """At most `calls` calls in any window of `window_seconds` (default one second) at the provider,
    across all threads.

    With `spaced` (the default) calls get evenly spaced start slots (first come, first served), so a
    busy pool never bursts; every call also waits for the answer of the call `calls` places earlier
    (see the module docstring). `already_used` calls count as answered just now, for a window the key
    has partly spent elsewhere. `pause(seconds)` pushes back every thread's next call, including calls
    that already reserved a slot and are waiting for it.
    """

    def __init__(
        self,
        calls: float,
        window_seconds: float = 1.0,
        *,
        spaced: bool = True,
        already_used: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not calls > 0:
            raise ValueError(f"the calls allowed per window must be positive, got {calls}")
        self._calls_per_second = calls / window_seconds
        self._window = window_seconds * WINDOW_MARGIN
        self._interval = self._window / calls if spaced else 0.0
        self._clock = clock
        self._sleep = sleep
        self._condition = threading.Condition()
        self._calls_per_window = max(1, math.floor(calls))
        self._recent: deque[_Call] = deque(maxlen=self._calls_per_window)
        now = clock()
        for _ in range(min(already_used, self._calls_per_window)):
            self._recent.append(_Call(started=now, answered=now))
        self._next_slot = -math.inf
        self._paused_until = -math.inf

    @property
    def calls_per_second(self) -> float:
        """The limit's average rate."""
        return self._calls_per_second

    @property
    def interval(self) -> float:
        """Seconds between two consecutive start slots."""
        return self._interval

    @contextmanager
    def call(self) -> Iterator[None]:
        """Wait until the calling thread may send one request, and hold the slot until it is answered."""
        record = self._start()
        try:
            yield
        finally:
            with self._condition:
                record.answered = self._clock()
                self._condition.notify_all()

    def pause(self, seconds: float) -> None:
        """Delay every thread's next call start until `seconds` from now (pauses never shorten)."""
        with self._condition:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _start(self) -> _Call:
        with self._condition:
            slot = self._reserve_slot()
        while True:
            self._sleep_until(slot)
            with self._condition:
                if self._paused_until > slot:
                    # A pause arrived while this call was waiting: queue again behind the pause.
                    slot = self._reserve_slot()
                    continue
                earlier = self._recent[0] if len(self._recent) == self._calls_per_window else None
                if earlier is not None and earlier.answered is None:
                    self._condition.wait(_WAIT_POLL_SECONDS)
                    slot = self._clock()
                    continue
                now = self._clock()
                if earlier is None or now >= earlier.answered + self._window:
                    record = _Call(started=now)
                    self._recent.append(record)
                    return record
                slot = earlier.answered + self._window

    def _reserve_slot(self) -> float:
        slot = max(self._clock(), self._next_slot, self._paused_until)
        self._next_slot = slot + self._interval
        return slot

    def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            self._sleep(delay)
