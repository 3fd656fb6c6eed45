"""The API key's own limits (`GET /admin/v2/rate/limit`): what a run may spend, and how fast.

The provider limits a key per second, minute, hour, day and month. The second, minute and hour
windows set the pace (the client never starts more calls in a window than the key allows, and counts
what others already spent of it); the day and month windows set the budget a run may not exceed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spot_pipeline.ccdata.errors import CCDataPayloadError
from spot_pipeline.ccdata.vocabulary import RATE_LIMIT_PATH

# Seconds in each of the key's windows, by the names the provider uses.
WINDOW_SPANS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3_600, "DAY": 86_400, "MONTH": 30 * 86_400}
PACING_WINDOWS = ("SECOND", "MINUTE", "HOUR")
BUDGET_WINDOWS = ("DAY", "MONTH")


@dataclass(frozen=True)
class WindowLimit:
    """One window of the key: the most calls it allows, and how many are left in the current one."""

    name: str
    maximum: int
    remaining: int

    @property
    def seconds(self) -> int:
        return WINDOW_SPANS[self.name]

    @property
    def used(self) -> int:
        return max(0, self.maximum - self.remaining)


@dataclass(frozen=True)
class KeyLimits:
    """The key's windows as the provider reported them (windows it did not report are absent)."""

    windows: Mapping[str, WindowLimit]

    @classmethod
    def from_payload(cls, data: Any) -> KeyLimits:
        """Parse the `Data` of `/admin/v2/rate/limit`: `API_KEY.{MAX, REMAINING}.{SECOND, ..., MONTH}`."""
        key = data.get("API_KEY") if isinstance(data, dict) else None
        maxima = key.get("MAX") if isinstance(key, dict) else None
        remaining = key.get("REMAINING") if isinstance(key, dict) else None
        if not isinstance(maxima, dict) or not isinstance(remaining, dict):
            raise CCDataPayloadError("'Data' lacks API_KEY.MAX and API_KEY.REMAINING", path=RATE_LIMIT_PATH)
        # Above its maximum (the provider allows a soft cap) a key reports negative REMAINING: none left.
        windows = {
            name: WindowLimit(name, int(maxima[name]), max(0, int(remaining.get(name, maxima[name]))))
            for name in WINDOW_SPANS
            if _is_count(maxima.get(name)) and _is_number(remaining.get(name, 0))
        }
        return cls(windows)

    def calls_per_second(self, configured: float) -> float:
        """The pace of the second window: the key's maximum, never above the configured rate."""
        second = self.windows.get("SECOND")
        return min(configured, second.maximum) if second and second.maximum > 0 else configured

    def seconds_for(self, calls: int, configured: float) -> float:
        """How long `calls` calls take: at the second's pace, and once a minute's or an hour's
        remaining calls are spent, one more whole window for each further `maximum` calls, the last
        window's calls again at the second's pace (whole windows: an upper bound when the provider's
        windows are fixed and the current one is partly over)."""
        pace = self.calls_per_second(configured)
        seconds = calls / pace
        for window in self.pacing_windows():
            if calls > window.remaining:
                windows_to_wait = math.ceil((calls - window.remaining) / window.maximum)
                last_calls = calls - window.remaining - (windows_to_wait - 1) * window.maximum
                seconds = max(seconds, windows_to_wait * window.seconds + last_calls / pace)
        return seconds

    def shortfall(self, calls: int) -> WindowLimit | None:
        """The first budget window (day, then month) whose remaining calls cannot cover `calls`."""
        return next((window for window in self._windows(BUDGET_WINDOWS) if window.remaining < calls), None)

    def pacing_windows(self) -> list[WindowLimit]:
        """The minute and hour windows the client must also respect (the second is its pace)."""
        return [window for window in self._windows(PACING_WINDOWS[1:]) if window.maximum > 0]

    def _windows(self, names: tuple[str, ...]) -> list[WindowLimit]:
        return [self.windows[name] for name in names if name in self.windows]


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return _is_number(value) and value >= 0
