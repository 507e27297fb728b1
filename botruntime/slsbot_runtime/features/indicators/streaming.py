"""Indicator primitives one observation at a time, for the live decision path.

Each class is the twin of a function in ``vectorized`` and returns the same value (NaN while warming up).
Work per update is O(1) (amortized): ring buffers and running sums. Running sums are recomputed exactly
from their buffer once per window length, so rounding error cannot build up over a long run; in between a
sum is exact to a few ulps of the largest value that passed through its window. Plain floats
and ``collections.deque`` only; no numpy, no pandas.
"""

from __future__ import annotations

import math
from collections import deque
from operator import mul

from slsbot_runtime.features.indicators.vectorized import FLAT_ABSOLUTE, FLAT_RELATIVE, slope_weights

NAN = math.nan
_fsum = math.fsum


def is_flat(var: float, mean: float) -> bool:
    """True when a window's variance is too small to divide by (see ``vectorized.is_flat``)."""
    return var <= (FLAT_RELATIVE * abs(mean)) ** 2 + FLAT_ABSOLUTE


class Lag:
    """The value ``k`` observations ago."""

    __slots__ = ("_buf", "_k")

    def __init__(self, k: int) -> None:
        self._k = k
        self._buf: deque[float] = deque(maxlen=k + 1)

    def update(self, x: float) -> float:
        buf = self._buf
        buf.append(x)
        return buf[0] if len(buf) > self._k else NAN


class _Run:
    """How many times in a row the same value came. A window inside such a run is constant, and its
    statistics are then given exactly (a sum of zeros is 0, not the residue of earlier additions)."""

    __slots__ = ("length", "value")

    def __init__(self) -> None:
        self.value = NAN
        self.length = 0

    def see(self, x: float) -> int:
        if x == self.value:
            self.length += 1
        else:
            self.value, self.length = x, 1
        return self.length


class RollingSum:
    """Sum of the last ``window`` values."""

    __slots__ = ("_buf", "_full", "_run", "_since", "_sum", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._buf: deque[float] = deque(maxlen=window)
        self._full = False  # the buffer holds ``window`` values (and always will: it only grows)
        self._sum = 0.0
        self._since = 0
        self._run = _Run()

    def update(self, x: float) -> float:
        buf, window, run = self._buf, self.window, self._run
        if x == run.value:  # _Run.see, inline: this runs for every indicator on every candle
            run.length += 1
        else:
            run.value, run.length = x, 1
        total, since, full = self._sum, self._since + 1, self._full
        if full:
            total -= buf[0]
        buf.append(x)
        if since >= window:
            total, since = _fsum(buf), 0
        else:
            total += x
        self._sum, self._since = total, since
        if not full:
            if len(buf) < window:
                return NAN
            self._full = True
        return x * window if run.length >= window else total


class RollingMean(RollingSum):
    """Mean of the last ``window`` values."""

    __slots__ = ()

    def update(self, x: float) -> float:
        # RollingSum.update(self, x) / window, its body written out: a call less for each of the two averages of a
        # crossover strategy on every candle (a test holds the two classes to each other)
        buf, window, run = self._buf, self.window, self._run
        if x == run.value:
            run.length += 1
        else:
            run.value, run.length = x, 1
        total, since, full = self._sum, self._since + 1, self._full
        if full:
            total -= buf[0]
        buf.append(x)
        if since >= window:
            total, since = _fsum(buf), 0
        else:
            total += x
        self._sum, self._since = total, since
        if not full:
            if len(buf) < window:
                return NAN
            self._full = True
        return (x * window if run.length >= window else total) / window


class RollingMoments:
    """Mean, population variance, skewness and excess kurtosis of the last ``window`` values.

    Keeps power sums of the values minus an anchor (the window mean at the last exact recompute), which
    keeps cancellation small. ``order`` 2 tracks mean and variance only (cheaper); 4 adds the rest.
    """

    __slots__ = ("_anchor", "_buf", "_order", "_run", "_s1", "_s2", "_s3", "_s4", "_since", "window")

    def __init__(self, window: int, order: int = 2) -> None:
        self.window = window
        self._order = order
        self._buf: deque[float] = deque(maxlen=window)
        self._anchor = 0.0
        self._s1 = self._s2 = self._s3 = self._s4 = 0.0
        self._since = 0
        self._run = _Run()

    def update(self, x: float) -> bool:
        """Add ``x``; True once the window is full."""
        buf = self._buf
        self._run.see(x)
        k = self._anchor
        if len(buf) == self.window:
            o = buf[0] - k
            o2 = o * o
            self._s1 -= o
            self._s2 -= o2
            if self._order > 2:
                self._s3 -= o2 * o
                self._s4 -= o2 * o2
        buf.append(x)
        self._since += 1
        if self._since >= self.window:
            self._reanchor()
        else:
            d = x - k
            d2 = d * d
            self._s1 += d
            self._s2 += d2
            if self._order > 2:
                self._s3 += d2 * d
                self._s4 += d2 * d2
        return len(buf) == self.window

    def _reanchor(self) -> None:
        buf = self._buf
        k = self._anchor = _fsum(buf) / len(buf)
        devs = [v - k for v in buf]
        sq = [d * d for d in devs]
        self._s1 = _fsum(devs)
        self._s2 = _fsum(sq)
        if self._order > 2:
            self._s3 = _fsum(map(mul, sq, devs))
            self._s4 = _fsum(map(mul, sq, sq))
        self._since = 0

    @property
    def full(self) -> bool:
        return len(self._buf) == self.window

    @property
    def constant(self) -> bool:
        """Every value in the (full) window is the same."""
        return self._run.length >= self.window

    def mean(self) -> float:
        if not self.full:
            return NAN
        return self._run.value if self.constant else self._anchor + self._s1 / self.window

    def var(self, ddof: int = 0) -> float:
        if not self.full:
            return NAN
        if self.constant:
            return 0.0
        n = self.window
        d = self._s1 / n
        m2 = max(self._s2 / n - d * d, 0.0)
        return m2 * n / (n - ddof)

    def std(self, ddof: int = 0) -> float:
        return math.sqrt(self.var(ddof))

    def zscore(self, x: float) -> float:
        """(x - mean) / std; 0 when the window is flat."""
        if not self.full:
            return NAN
        mean, var = self.mean(), self.var()
        return 0.0 if is_flat(var, mean) else (x - mean) / math.sqrt(var)

    def skew_kurt(self) -> tuple[float, float]:
        if not self.full:
            return NAN, NAN
        if self.constant:
            return 0.0, 0.0
        n = self.window
        d = self._s1 / n
        d2 = d * d
        e2, e3, e4 = self._s2 / n, self._s3 / n, self._s4 / n
        m2 = max(e2 - d2, 0.0)
        if is_flat(m2, self._anchor + d):
            return 0.0, 0.0
        m3 = e3 - 3.0 * d * e2 + 2.0 * d2 * d
        m4 = e4 - 4.0 * d * e3 + 6.0 * d2 * e2 - 3.0 * d2 * d2
        return m3 / m2**1.5, m4 / (m2 * m2) - 3.0


class RollingCorr:
    """Pearson correlation of the last ``window`` pairs; 0 when either side is flat."""

    __slots__ = (
        "_ax",
        "_ay",
        "_bx",
        "_by",
        "_run_x",
        "_run_y",
        "_since",
        "_sx",
        "_sxx",
        "_sxy",
        "_sy",
        "_syy",
        "window",
    )

    def __init__(self, window: int) -> None:
        self.window = window
        self._run_x, self._run_y = _Run(), _Run()
        self._bx: deque[float] = deque(maxlen=window)
        self._by: deque[float] = deque(maxlen=window)
        self._ax = self._ay = 0.0
        self._sx = self._sy = self._sxx = self._syy = self._sxy = 0.0
        self._since = 0

    def update(self, x: float, y: float) -> float:
        constant = max(self._run_x.see(x), self._run_y.see(y)) >= self.window  # either side flat
        bx, by = self._bx, self._by
        ax, ay = self._ax, self._ay
        if len(bx) == self.window:
            ox, oy = bx[0] - ax, by[0] - ay
            self._sx -= ox
            self._sy -= oy
            self._sxx -= ox * ox
            self._syy -= oy * oy
            self._sxy -= ox * oy
        bx.append(x)
        by.append(y)
        self._since += 1
        if self._since >= self.window:
            self._reanchor()
        else:
            dx, dy = x - ax, y - ay
            self._sx += dx
            self._sy += dy
            self._sxx += dx * dx
            self._syy += dy * dy
            self._sxy += dx * dy
        if len(bx) < self.window:
            return NAN
        if constant:
            return 0.0
        n = self.window
        mx, my = self._sx / n, self._sy / n
        vx = max(self._sxx / n - mx * mx, 0.0)
        vy = max(self._syy / n - my * my, 0.0)
        if is_flat(vx, ax + mx) or is_flat(vy, ay + my):
            return 0.0
        return (self._sxy / n - mx * my) / math.sqrt(vx * vy)

    def _reanchor(self) -> None:
        bx, by = self._bx, self._by
        ax = self._ax = _fsum(bx) / len(bx)
        ay = self._ay = _fsum(by) / len(by)
        dx = [v - ax for v in bx]
        dy = [v - ay for v in by]
        self._sx, self._sy = _fsum(dx), _fsum(dy)
        self._sxx = _fsum(map(mul, dx, dx))
        self._syy = _fsum(map(mul, dy, dy))
        self._sxy = _fsum(map(mul, dx, dy))
        self._since = 0


class RollingSlope:
    """Least-squares slope of the last ``window`` values against 0..window-1 (a dot product per update)."""

    __slots__ = ("_buf", "_weights", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._weights = slope_weights(window).tolist()
        self._buf: deque[float] = deque(maxlen=window)

    def update(self, x: float) -> float:
        buf = self._buf
        buf.append(x)
        return sum(map(mul, self._weights, buf)) if len(buf) == self.window else NAN


class RollingMax:
    """Largest of the last ``window`` values (monotonic deque, amortized O(1))."""

    __slots__ = ("_dq", "_i", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._dq: deque[tuple[int, float]] = deque()
        self._i = 0

    def update(self, x: float) -> float:
        dq, i = self._dq, self._i
        self._i = i + 1
        while dq and dq[-1][1] <= x:
            dq.pop()
        dq.append((i, x))
        if dq[0][0] <= i - self.window:
            dq.popleft()
        return dq[0][1] if i >= self.window - 1 else NAN


class RollingMin(RollingMax):
    """Smallest of the last ``window`` values."""

    __slots__ = ()

    def update(self, x: float) -> float:
        return -RollingMax.update(self, -x)


class Ema:
    """Exponential moving average seeded with the mean of the first ``period`` values (see ``vectorized.ema``).

    NaN inputs before the first value are skipped, as the vectorized twin skips leading NaNs.
    """

    __slots__ = ("_alpha", "_keep", "_seed", "period", "value")

    def __init__(self, period: int, alpha: float | None = None) -> None:
        self.period = period
        self._alpha = 2.0 / (period + 1.0) if alpha is None else alpha
        self._keep = 1.0 - self._alpha
        self._seed: list[float] | None = []
        self.value = NAN

    def update(self, x: float) -> float:
        seed = self._seed
        if seed is None:
            self.value = self._alpha * x + self._keep * self.value
        elif x == x:  # not NaN
            seed.append(x)
            if len(seed) == self.period:
                self.value = _fsum(seed) / self.period
                self._seed = None
        return self.value


class Wilder(Ema):
    """Wilder's smoothing: an EMA with alpha = 1 / period."""

    __slots__ = ()

    def __init__(self, period: int) -> None:
        super().__init__(period, alpha=1.0 / period)


class TrueRange:
    __slots__ = ("_prev",)

    def __init__(self) -> None:
        self._prev = NAN

    def update(self, high: float, low: float, close: float) -> float:
        prev = self._prev
        self._prev = close
        if prev != prev:
            return high - low
        return max(high - low, abs(high - prev), abs(low - prev))


class Rsi:
    """Wilder's RSI in [0, 100]; 50 while nothing moved, 100 with no losses."""

    __slots__ = ("_gain", "_loss", "_prev")

    def __init__(self, period: int) -> None:
        self._gain = Wilder(period)
        self._loss = Wilder(period)
        self._prev = NAN

    def update(self, close: float) -> float:
        prev = self._prev
        self._prev = close
        if prev != prev:
            return NAN
        change = close - prev
        gain = self._gain.update(change if change > 0 else 0.0)
        loss = self._loss.update(-change if change < 0 else 0.0)
        return rsi_from_averages(gain, loss)


def rsi_from_averages(avg_gain: float, avg_loss: float) -> float:
    total = avg_gain + avg_loss
    if total != total:
        return NAN
    return 100.0 * avg_gain / total if total > 0 else 50.0
