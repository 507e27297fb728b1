"""Drift: has what a model sees now moved away from what it was trained on?

Two measures per series (a feature, or a model's output), each comparing a rolling window of live values with a
reference sample (the training window's values, or a model's validation predictions):

* **Population stability index** (``psi``): the reference is cut into ``bins`` bins at its quantiles (deciles by
  default; repeated edges are merged, so a reference with many equal values has fewer, uneven bins), and
  ``PSI = sum((a - e) * ln(a / e))`` over the bins, where ``e`` and ``a`` are the reference's and the live
  window's share of values in each bin, each floored at ``PSI_FLOOR`` so that an empty bin counts as a large
  but finite change. Rules of thumb: below 0.1 stable, 0.1-0.25 a shift to watch, above 0.25 a real change.
* **Two-sample Kolmogorov-Smirnov test** (``ks_2samp``): the largest distance between the two empirical
  distribution functions and its two-sided p-value, exactly as ``scipy.stats.ks_2samp(..., method="asymp")``
  computes them (scipy's ``kstwo`` distribution at ``n = round(n1 * n2 / (n1 + n2))``).

``DriftMonitor`` keeps, per series, the last ``window`` live values and their bin counts, so a candle costs a
bisection and two counter updates per series, plus the PSI of one series in turn (a sum over the bins). A series
is *drifted* when its PSI is above the threshold (``ml.driftThreshold``); the KS p-value is reported alongside
and computed only when asked (``report``), for a few series at a time, since it is the costly part.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

PSI_BINS = 10
PSI_FLOOR = 1e-4
LIVE_WINDOW = 500  # live values compared with the reference
MIN_LIVE = 300  # live values needed before a series is judged (fewer make PSI noisy: see the docs)


def load_scipy() -> None:
    """Import scipy's statistics now (about 1.7 s once), where drift will be watched, so that the first KS test does
    not stall a trading loop mid-run; a runtime without models never pays it."""
    import scipy.stats  # noqa: F401


def bin_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The interior edges of the PSI bins: the reference's quantiles at 1/bins .. (bins-1)/bins, without repeats.
    A value equal to an edge belongs to the bin above it."""
    if bins < 2:
        raise ValueError(f"bins: {bins} must be at least 2")
    return np.unique(np.quantile(np.asarray(reference, dtype=np.float64), np.arange(1, bins) / bins))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of ``values`` fall in each of the ``len(edges) + 1`` bins."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi_from_counts(expected: Iterable[float], actual: Iterable[float]) -> float:
    """PSI between two histograms over the same bins (counts or shares; each is normalised to shares)."""
    e = np.asarray(list(expected), dtype=np.float64)
    a = np.asarray(list(actual), dtype=np.float64)
    if e.shape != a.shape or e.sum() <= 0 or a.sum() <= 0:
        raise ValueError("psi: two non-empty histograms over the same bins are needed")
    e = np.maximum(e / e.sum(), PSI_FLOOR)
    a = np.maximum(a / a.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: np.ndarray, live: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``live`` against ``reference`` (see the module doc)."""
    reference = _finite(reference)
    live = _finite(live)
    edges = bin_edges(reference, bins)
    return psi_from_counts(bin_counts(reference, edges), bin_counts(live, edges))


def ks_2samp(reference: np.ndarray, live: np.ndarray, *, reference_sorted: bool = False) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov-Smirnov statistic and p-value, as
    ``scipy.stats.ks_2samp(reference, live, method="asymp")``; pass ``reference_sorted`` to skip sorting it."""
    data1 = np.asarray(reference, dtype=np.float64) if reference_sorted else np.sort(reference)
    data2 = np.sort(np.asarray(live, dtype=np.float64))
    n1, n2 = len(data1), len(data2)
    if n1 == 0 or n2 == 0:
        raise ValueError("ks_2samp: both samples must be non-empty")
    data_all = np.concatenate([data1, data2])
    differences = np.searchsorted(data1, data_all, side="right") / n1 - (
        np.searchsorted(data2, data_all, side="right") / n2
    )
    below = float(np.clip(-differences.min(), 0.0, 1.0))
    above = float(differences.max())
    statistic = below if below > above else above
    m, n = sorted((float(n1), float(n2)), reverse=True)
    from scipy.stats import kstwo  # loaded by load_scipy() where drift is watched; never by a runtime without models

    pvalue = float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))
    return statistic, pvalue


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


@dataclass(frozen=True, slots=True)
class SeriesDrift:
    """The latest drift figures of one series. ``psi`` is None until the live window holds ``min_live`` values;
    ``ks_pvalue`` until a report has computed it."""

    name: str
    psi: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    drifted: bool
    live: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "psi": None if self.psi is None else round(self.psi, 6),
            "ks_statistic": None if self.ks_statistic is None else round(self.ks_statistic, 6),
            "ks_pvalue": self.ks_pvalue,
            "drifted": self.drifted,
            "live": self.live,
        }


class _Series:
    """One series' reference (sorted, binned) and live window: the last ``window`` values and their bins in ring
    buffers (numpy: 10 bytes a value, where a deque of floats takes 40), and the bin counts."""

    __slots__ = (
        "counts",
        "edges",
        "expected",
        "head",
        "ks",
        "ks_at",
        "observed",
        "psi",
        "reference",
        "size",
        "values",
        "where",
    )

    def __init__(self, reference: np.ndarray, window: int, bins: int) -> None:
        self.values = np.empty(window, dtype=np.float64)
        self.where = np.empty(window, dtype=np.int16)
        self.head = 0  # where the next value goes
        self.size = 0  # values in the window
        self.observed = 0  # values appended so far: tells whether the window changed since the KS was computed
        self.ks: tuple[float, float] | None = None
        self.ks_at = -1
        self.psi: float | None = None
        self.set_reference(reference, bins, keep_live=False)

    def live(self) -> np.ndarray:
        """The live window's values, oldest first."""
        if self.size < len(self.values):
            return self.values[: self.size].copy()
        return np.concatenate((self.values[self.head :], self.values[: self.head]))

    def set_reference(self, reference: np.ndarray, bins: int, *, keep_live: bool) -> None:
        reference = np.sort(_finite(reference))
        self.reference = reference
        edges = bin_edges(reference, bins) if len(reference) else np.empty(0)
        self.edges = edges.tolist()
        shares = bin_counts(reference, edges) / max(len(reference), 1)
        self.expected = np.maximum(shares, PSI_FLOOR).tolist()
        self.counts = [0] * (len(edges) + 1)
        self.psi, self.ks, self.ks_at = None, None, -1
        if not keep_live:
            self.head = self.size = 0
            return
        live = self.live()
        where = np.searchsorted(edges, live, side="right")
        self.values[: len(live)] = live
        self.where[: len(live)] = where
        self.head = len(live) % len(self.values)
        self.counts = np.bincount(where, minlength=len(edges) + 1).tolist()

    def add(self, value: float) -> None:
        where = bisect_right(self.edges, value)
        head = self.head
        if self.size == len(self.values):
            self.counts[int(self.where[head])] -= 1
        else:
            self.size += 1
        self.values[head] = value
        self.where[head] = where
        self.head = head + 1 if head + 1 < len(self.values) else 0
        self.counts[where] += 1
        self.observed += 1

    def evaluate_psi(self, min_live: int) -> None:
        n = self.size
        if n < min_live or not len(self.reference):
            self.psi = None
            return
        total = 0.0
        for count, e in zip(self.counts, self.expected, strict=True):
            a = count / n
            if a < PSI_FLOOR:
                a = PSI_FLOOR
            total += (a - e) * math.log(a / e)
        self.psi = total

    def evaluate_ks(self) -> None:
        if self.size and len(self.reference):
            self.ks = ks_2samp(self.reference, self.live(), reference_sorted=True)
        self.ks_at = self.observed


class DriftMonitor:
    """Live windows of several series compared with their reference samples (see the module doc). Pure and
    deterministic: the same values in the same order give the same figures and the same ``drifted``."""

    def __init__(
        self,
        reference: Mapping[str, np.ndarray],
        *,
        threshold: float,
        window: int = LIVE_WINDOW,
        min_live: int = MIN_LIVE,
        bins: int = PSI_BINS,
    ) -> None:
        if not 1 <= min_live <= window:
            raise ValueError(f"min_live: {min_live} must be within 1..window ({window})")
        self.threshold = threshold
        self.window = window
        self.min_live = min_live
        self.bins = bins
        self._series = {name: _Series(values, window, bins) for name, values in reference.items()}
        self._order = list(self._series)
        self._turn = 0

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._order)

    def observe(self, values: Mapping[str, float]) -> None:
        """Add one live value per series (a missing, NaN or infinite value is skipped), then bring the PSI of the
        next series in turn up to date."""
        series = self._series
        for name, value in values.items():
            state = series.get(name)
            if state is not None and value is not None and math.isfinite(value):
                state.add(float(value))
        if self._order:
            self._series[self._order[self._turn]].evaluate_psi(self.min_live)
            self._turn = (self._turn + 1) % len(self._order)

    def set_reference(self, name: str, reference: np.ndarray, *, keep_live: bool) -> None:
        """A new reference for ``name`` (the model was retrained): the live window is kept and binned again
        (``keep_live``, for an input whose live values do not depend on the model) or emptied (a model output)."""
        self._series[name].set_reference(reference, self.bins, keep_live=keep_live)
        self._series[name].evaluate_psi(self.min_live)

    @property
    def drifted(self) -> bool:
        threshold = self.threshold
        return any(s.psi is not None and s.psi > threshold for s in self._series.values())

    @property
    def within(self) -> bool:
        """Every series judged (enough live values for a PSI) and none above the threshold: no drift, as far as can
        be told (``not drifted`` is also true of series too young to judge)."""
        threshold = self.threshold
        return all(s.psi is not None and s.psi <= threshold for s in self._series.values())

    def drifted_series(self) -> list[SeriesDrift]:
        """The series whose PSI is above the threshold, the most drifted first."""
        found = [self._figures(name) for name in self._order]
        return sorted((s for s in found if s.drifted), key=lambda s: -(s.psi or 0.0))

    def check(self, name: str) -> SeriesDrift:
        """Every figure of ``name`` brought up to date now (PSI and KS)."""
        state = self._series[name]
        state.evaluate_psi(self.min_live)
        state.evaluate_ks()
        return self._figures(name)

    def refresh_ks(self, limit: int = 1) -> int:
        """Compute the KS test again for at most ``limit`` series whose live window changed since theirs was
        computed (the costly part, spread over calls); returns how many it computed."""
        refreshed = 0
        for name in self._order:
            if refreshed >= limit:
                break
            state = self._series[name]
            if state.ks_at != state.observed and state.size >= self.min_live:
                state.evaluate_ks()
                refreshed += 1
        return refreshed

    def report(self) -> list[SeriesDrift]:
        """Every series' latest figures (the KS figures as of their last ``refresh_ks`` or ``check``)."""
        return [self._figures(name) for name in self._order]

    def _figures(self, name: str) -> SeriesDrift:
        state = self._series[name]
        psi_value = state.psi
        ks = state.ks
        return SeriesDrift(
            name=name,
            psi=psi_value,
            ks_statistic=None if ks is None else ks[0],
            ks_pvalue=None if ks is None else ks[1],
            drifted=psi_value is not None and psi_value > self.threshold,
            live=state.size,
        )
