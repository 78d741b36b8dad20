"""Request counts, failures and latencies per app version, shared by every traffic thread.

Each simulated instance records every request it makes here; the live view and
the summary read snapshots. Latencies are kept whole (an ``array('d')`` per
version, 8 bytes a request), so percentiles are exact, not estimated.
"""

from __future__ import annotations

import math
import threading
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class VersionTraffic:
    """What one app version's requests came to, so far."""

    version: str
    requests: int
    failed: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: Requests per second over the last few seconds.
    rate: float
    #: The most frequent error messages, with their counts.
    errors: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version, "requests": self.requests, "failed_requests": self.failed,
            "p50_latency_ms": round(self.p50_ms, 2), "p99_latency_ms": round(self.p99_ms, 2),
            "max_latency_ms": round(self.max_ms, 2),
            "errors": [{"message": m, "count": n} for m, n in self.errors],
        }


@dataclass
class _Series:
    latencies: array = field(default_factory=lambda: array("d"))  # type: ignore[type-arg]
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    recent: list[float] = field(default_factory=list)


class TrafficStats:
    """Thread-safe counters: `record` from traffic threads, `snapshot` from anywhere."""

    RATE_WINDOW = 3.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def record(self, version: str, seconds: float, error: BaseException | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            series = self._series.setdefault(version, _Series())
            series.latencies.append(seconds * 1000.0)
            series.recent.append(now)
            if len(series.recent) > 4096:
                cutoff = now - self.RATE_WINDOW
                series.recent = [t for t in series.recent if t >= cutoff]
            if error is not None:
                series.failed += 1
                series.errors[_first_line(error)] += 1

    def versions(self) -> list[str]:
        with self._lock:
            return list(self._series)

    def snapshot(self, version: str) -> VersionTraffic:
        now = time.monotonic()
        with self._lock:
            series = self._series.get(version) or _Series()
            values = sorted(series.latencies)
            recent = sum(1 for t in series.recent if t >= now - self.RATE_WINDOW)
            failed, errors = series.failed, tuple(series.errors.most_common(5))
        return VersionTraffic(
            version, len(values), failed, percentile(values, 0.50), percentile(values, 0.99),
            values[-1] if values else 0.0, recent / self.RATE_WINDOW, errors,
        )

    def total(self) -> VersionTraffic:
        """Every version together."""
        with self._lock:
            values = sorted(v for s in self._series.values() for v in s.latencies)
            failed = sum(s.failed for s in self._series.values())
            errors: Counter[str] = Counter()
            for s in self._series.values():
                errors.update(s.errors)
        return VersionTraffic(
            "all", len(values), failed, percentile(values, 0.50), percentile(values, 0.99),
            values[-1] if values else 0.0, 0.0, tuple(errors.most_common(5)),
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]
