"""What the ensemble tracks about its members, one candle at a time and over whole histories:

* ``SignalCorrelation`` / ``correlation_factors``: Pearson correlation of the members' direction series over
  the last ``window`` candles, turned into weight factors 1 / (1 + penalty * sum of positive correlations
  with the other members). With penalty 1, k identical members share the weight of one. A member whose
  direction did not change in the window has no defined correlation; it counts as 1 with a member whose
  series is identical over the window and 0 otherwise.
* ``MemberSharpe`` / ``member_sharpes``: each member's rolling Sharpe ratio (mean / std, per candle, within
  +-``SHARPE_CAP``) of the return its own signal earned: direction at t-1 times the close-to-close return
  at t.

Both are NaN-free only after their window is full; before that the ensemble does not use them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from slsbot_runtime.features.indicators import streaming as live
from slsbot_runtime.features.indicators import vectorized as vec

NAN = math.nan
#: Sharpe ratios (per candle) are capped at this size; a return series that never varied gets the cap
#: with the sign of its mean (0 if it earned nothing).
SHARPE_CAP = 1.0
#: A direction series whose variance is below this share of its mean square did not change.
_STILL = 1e-9
#: Directions whose sums are exact (checked first, as a set; any other integer counts too).
_UNIT_STEPS = frozenset((-1.0, 0.0, 1.0))


class SignalCorrelation:
    """Running sums of the members' directions and their pairwise products over the last ``window``."""

    __slots__ = ("_buf", "_exact", "_fraction_age", "_m", "_p", "_pending", "_s", "window")

    def __init__(self, members: int, window: int) -> None:
        self._m = members
        self.window = window
        self._buf: deque[Sequence[float]] = deque(maxlen=window)
        self._s = [0.0] * members
        self._p = [[0.0] * members for _ in range(members)]
        # Sums of -1, 0 and 1 (the library's directions) are exact. While a non-integer direction is in the
        # window the sums are recomputed from it once per window length, and once more when it leaves.
        self._fraction_age = window  # updates since a non-integer direction came in
        self._pending = 0  # inexact updates since the last recompute
        # True while every sum is the exact sum of integer directions: then only the members whose direction
        # changed between the row leaving and the row coming in need to move, to the same exact result.
        self._exact = True

    def update(self, directions: Sequence[float]) -> None:
        buf, s, p, m = self._buf, self._s, self._p, self._m
        integral = _UNIT_STEPS.issuperset(directions) or not any(d != int(d) for d in directions)
        age = self._fraction_age = self._fraction_age + 1 if integral else 0
        full = len(buf) == self.window
        if age > self.window and self._exact:
            old = buf[0] if full else None
            buf.append(directions)
            self._move_exact(old, directions)
            return
        if full:
            old = buf[0]
            for i in range(m):
                oi = old[i]
                s[i] -= oi
                row = p[i]
                for j in range(i, m):
                    row[j] -= oi * old[j]
        buf.append(directions)
        if age < self.window:
            self._exact = False
            self._pending += 1
            if self._pending >= self.window:
                self._recompute()
                return
        elif age == self.window and self._pending:
            self._recompute()
            self._exact = True  # the last non-integer direction has just left the window
            return
        for i in range(m):
            di = directions[i]
            s[i] += di
            row = p[i]
            for j in range(i, m):
                row[j] += di * directions[j]

    def _move_exact(self, old: Sequence[float] | None, new: Sequence[float]) -> None:
        """Exact integer sums: add ``new`` and take ``old`` out, touching only what changed."""
        m = self._m
        if old is None:
            old = (0.0,) * m
        elif old == new:
            return
        changed = [i for i in range(m) if old[i] != new[i]]
        if not changed:
            return
        s, p = self._s, self._p
        moved = set(changed)
        for i in changed:
            s[i] += new[i] - old[i]
        for i in range(m):
            row, ni, oi = p[i], new[i], old[i]
            for j in range(i, m) if i in moved else (j for j in changed if j >= i):
                row[j] += ni * new[j] - oi * old[j]

    def _recompute(self) -> None:
        columns = list(zip(*self._buf, strict=True))
        m = self._m
        self._s = [math.fsum(column) for column in columns]
        self._p = [
            [math.fsum(a * b for a, b in zip(columns[i], columns[j], strict=True)) if j >= i else 0.0 for j in range(m)]
            for i in range(m)
        ]
        self._pending = 0

    def factors(self, penalty: float, active: Sequence[bool] | None = None) -> list[float] | None:
        """Weight factor per member, or None until the window is full. Only pairs of ``active`` members count
        (a member out of the vote penalises no one)."""
        if len(self._buf) < self.window:
            return None
        m, s, p, n = self._m, self._s, self._p, float(self.window)
        # Pearson correlation from the sums (each member's variance term computed once); a member that did not
        # move counts as 1 with an identical series and 0 otherwise (``_pair_correlations`` is the array twin)
        variance = [n * p[i][i] - s[i] * s[i] for i in range(m)]
        still = [variance[i] <= _STILL * n * p[i][i] for i in range(m)]
        excess = [0.0] * m
        for i in range(m):
            row, s_i, p_ii, var_i, still_i = p[i], s[i], p[i][i], variance[i], still[i]
            for j in range(i + 1, m):
                if active is not None and not (active[i] and active[j]):
                    continue
                if still_i or still[j]:
                    p_jj = p[j][j]
                    distance = p_ii + p_jj - 2.0 * row[j]
                    rho = 1.0 if distance <= _STILL * (p_ii + p_jj) else 0.0
                else:
                    rho = (n * row[j] - s_i * s[j]) / math.sqrt(var_i * variance[j])
                if rho > 0:
                    excess[i] += rho
                    excess[j] += rho
        return [1.0 / (1.0 + penalty * e) for e in excess]


def correlation_factors(
    directions: np.ndarray, window: int, penalty: float, active: np.ndarray | None = None
) -> np.ndarray:
    """The array twin of ``SignalCorrelation.factors`` for an (n, members) array; 1 before the window fills.
    ``active`` (n, members) bools: only pairs of members both active at a candle count there."""
    n, m = directions.shape
    exact = bool(np.all(directions == np.round(directions)))

    def rolling(x: np.ndarray) -> np.ndarray:
        if not exact:
            return vec.rolling_sum(x, window)
        out = np.full(n, np.nan)
        if n >= window:
            total = np.concatenate([[0.0], np.cumsum(x)])
            out[window - 1 :] = total[window:] - total[:-window]
        return out

    s = [rolling(directions[:, i]) for i in range(m)]
    p = {(i, j): rolling(directions[:, i] * directions[:, j]) for i in range(m) for j in range(i, m)}
    excess = np.zeros((n, m))
    w = float(window)
    for i in range(m):
        for j in range(i + 1, m):
            rho = _pair_correlations(w, s[i], s[j], p[i, i], p[j, j], p[i, j])
            positive = np.where(rho > 0, rho, 0.0)
            if active is not None:
                positive = np.where(active[:, i] & active[:, j], positive, 0.0)
            excess[:, i] += positive
            excess[:, j] += positive
    factors = 1.0 / (1.0 + penalty * excess)
    factors[: window - 1] = 1.0
    return factors


def _pair_correlations(n: float, s_i, s_j, p_ii, p_jj, p_ij) -> np.ndarray:
    var_i = n * p_ii - s_i * s_i
    var_j = n * p_jj - s_j * s_j
    still = (var_i <= _STILL * n * p_ii) | (var_j <= _STILL * n * p_jj)
    identical = (p_ii + p_jj - 2.0 * p_ij) <= _STILL * (p_ii + p_jj)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (n * p_ij - s_i * s_j) / np.sqrt(np.where(still, 1.0, var_i * var_j))
    return np.where(still, np.where(identical, 1.0, 0.0), rho)


class MemberSharpe:
    """Rolling Sharpe ratio of each member's own signal returns."""

    __slots__ = ("_moments", "_previous_close", "_previous_directions")

    def __init__(self, members: int, window: int) -> None:
        self._moments = [live.RollingMoments(window) for _ in range(members)]
        self._previous_close = NAN
        self._previous_directions: Sequence[float] = ()

    def update(self, close: float, directions: Sequence[float]) -> None:
        """Book the return each member earned from the previous candle to this close."""
        previous_close, previous = self._previous_close, self._previous_directions
        self._previous_close, self._previous_directions = close, directions
        if previous_close != previous_close:
            return
        change = close / previous_close - 1.0
        for moments, direction in zip(self._moments, previous, strict=True):
            moments.update(direction * change)

    def ratios(self) -> list[float] | None:
        """Sharpe ratio per member (0 for a flat return series), or None until the window is full."""
        if not self._moments[0].full:
            return None
        out = []
        for moments in self._moments:
            mean, var = moments.mean(), moments.var()
            if live.is_flat(var, mean):
                out.append(math.copysign(SHARPE_CAP, mean) if mean != 0 else 0.0)
            else:
                out.append(min(max(mean / math.sqrt(var), -SHARPE_CAP), SHARPE_CAP))
        return out


def member_sharpes(close: np.ndarray, directions: np.ndarray, window: int) -> np.ndarray:
    """The array twin of ``MemberSharpe.ratios`` for an (n, members) array; NaN until the window fills."""
    change = close / vec.shift(close, 1) - 1.0
    out = np.full(directions.shape, np.nan)
    for i in range(directions.shape[1]):
        mean, var, _, _ = vec.rolling_moments(vec.shift(directions[:, i], 1) * change, window)
        flat = vec.is_flat(var, mean)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.clip(mean / np.sqrt(np.where(flat, 1.0, var)), -SHARPE_CAP, SHARPE_CAP)
        out[:, i] = np.where(flat, np.sign(mean) * SHARPE_CAP, ratio)
        out[np.isnan(mean), i] = np.nan
    return out
