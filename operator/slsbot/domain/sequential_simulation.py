"""Simulated A/B experiments over real market returns, to measure the sequential test's error rate and power. Pure:
the caller passes the hourly returns (``slsbot.bench.ab_test.hourly_returns`` reads them from recorded candles).

The design, in plain words:

* **Market.** Each experiment trades one market (the markets passed take turns: BTC, ETH, BTC, ...) along a path
  resampled from its real hourly returns with the stationary bootstrap (Politis & Romano 1994): runs of
  consecutive real hours, of random length with mean ``bootstrap_block_hours`` (a week), joined end to end. Runs
  keep what a week of real crypto holds: fat tails, calm and wild stretches, and the hour-to-hour dependence.
* **Variants.** Both variants hold the market with all their capital (the position both versions of a strategy
  share) and each adds an **overlay** of its own: ``±overlay`` extra exposure, redrawn at random moments (on
  average every ``mean_hold_hours``), independently for each variant, paying ``fee`` on each change of exposure.
  So the two trade the same market with independent noise, as two versions of one strategy that differ in their
  timing. Their hourly returns are correlated at about ``1 / (1 + overlay²)``: 0.99 for an overlay of 0.1.
  Returns are per unit of the variant's own capital, as the runtimes report them.
* **Candidate equal to baseline:** ``sharpe_gap = 0``; the two are the same random process.
* **Candidate better:** ``sharpe_gap = 1.0`` adds to each of the candidate's hourly returns a constant
  ``1.0 * sd / sqrt(8760)``, where ``sd`` is a variant's hourly standard deviation over the whole market series: its
  annualised Sharpe ratio rises by 1.0 and its volatility is unchanged (a steady edge, earned every hour).
* **Looks.** After every block (a day) the test looks; the first verdict ends the experiment. The same blocks go
  to a naive test for comparison: a one-sided t-test of the block differences at every look from
  ``min_blocks`` on, promoting at the first p < alpha; and to the same t-test looked at once, on the last day.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from slsbot.domain.sequential_test import SequentialDesign, SequentialTestInputError, first_verdicts

HOURS_PER_YEAR = 24 * 365
CHUNK_HOURS = 500 * 90 * 24  # experiment-hours simulated at once (memory: a few float64 arrays of this size)
# Another test to run on the same blocks: block sums (experiments, blocks) -> the 1-based block at which it promotes.
Comparator = Callable[[np.ndarray, SequentialDesign], np.ndarray]


@dataclass(frozen=True, slots=True)
class Scenario:
    """How two variants' per-period returns are made from a market's (see the module's docstring)."""

    sharpe_gap: float = 0.0  # the candidate's annualised Sharpe ratio minus the baseline's
    overlay: float = 0.1  # each variant's own extra exposure: +/- this share of its capital
    mean_hold_hours: float = 24.0  # mean time before an overlay is drawn again
    fee: float = 0.001  # share of the traded exposure paid on each change (Binance spot taker fee: 0.1 %)
    bootstrap_block_hours: float = 168.0  # mean length of the runs of real hours joined into a path


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What happened in each simulated experiment; blocks are 1-based, 0 where it did not happen."""

    days: int
    promoted: np.ndarray  # the block at which the sequential test promoted (its first verdict)
    rolled_back: np.ndarray  # the block at which it rolled back (its first verdict)
    naive_promoted: np.ndarray  # the first block at which the repeated t-test had p < alpha
    fixed_horizon_promoted: np.ndarray  # whether the t-test looked at once, on the last block, had p < alpha
    correlation: float  # mean correlation of the two variants' hourly returns within an experiment
    sharpe_baseline: float  # realised annualised Sharpe ratio, all experiments' hours pooled
    sharpe_candidate: float
    compared: dict[str, np.ndarray] = field(default_factory=dict)  # each comparator's block of promotion

    @property
    def experiments(self) -> int:
        return len(self.promoted)

    def promotion_rate(self, within_blocks: int | None = None) -> float:
        return _rate(self.promoted, within_blocks)

    def rollback_rate(self, within_blocks: int | None = None) -> float:
        return _rate(self.rolled_back, within_blocks)

    def naive_promotion_rate(self, within_blocks: int | None = None) -> float:
        return _rate(self.naive_promoted, within_blocks)

    def mean_blocks_to_promote(self, within_blocks: int | None = None) -> float:
        """Mean block of promotion over the experiments promoted (within ``within_blocks``); nan if none."""
        hit = self.promoted[(self.promoted > 0) & (self.promoted <= (within_blocks or self.days))]
        return float(hit.mean()) if hit.size else float("nan")


def simulate(
    markets: Sequence[np.ndarray],
    *,
    experiments: int,
    days: int,
    scenario: Scenario,
    design: SequentialDesign,
    seed: int,
    comparators: Mapping[str, Comparator] | None = None,
) -> SimulationResult:
    """Run ``experiments`` simulated A/B experiments of ``days`` blocks each over the hourly returns in ``markets``
    (one array per market, each at least a few thousand hours). Deterministic for a given seed. ``comparators``
    are other tests judged on the same blocks (their promotions land in ``SimulationResult.compared``)."""
    if design.periods_per_block != 24:
        raise SequentialTestInputError("periods_per_block: the simulation resamples hourly returns into days; use 24")
    rng = np.random.default_rng(seed)
    parts: list[dict[str, np.ndarray]] = []
    comparators = comparators or {}
    chunk = max(1, CHUNK_HOURS // (days * 24))
    for start in range(0, experiments, chunk):
        count = min(chunk, experiments - start)
        baseline, candidate = simulate_returns(
            markets, experiments=count, hours=days * 24, scenario=scenario, rng=rng, first=start
        )
        blocks = (candidate - baseline).reshape(count, days, 24).sum(axis=2)
        promoted, rolled_back = first_verdicts(blocks, design)
        promote_first = (promoted > 0) & ((rolled_back == 0) | (promoted < rolled_back))
        rollback_first = (rolled_back > 0) & ~promote_first
        naive = naive_promotions(blocks, design)
        parts.append(
            {
                "promoted": np.where(promote_first, promoted, 0),
                "rolled_back": np.where(rollback_first, rolled_back, 0),
                "naive": naive,
                "fixed": _one_sided_p(blocks) < design.alpha,
                **{f"compared:{name}": test(blocks, design) for name, test in comparators.items()},
                "correlation": _row_correlations(baseline, candidate),
                "moments": np.array(
                    [baseline.sum(), (baseline**2).sum(), candidate.sum(), (candidate**2).sum(), baseline.size]
                ),
            }
        )
    joined = {key: np.concatenate([part[key] for part in parts]) for key in ("promoted", "rolled_back", "naive")}
    moments = np.sum([part["moments"] for part in parts], axis=0)
    return SimulationResult(
        days=days,
        promoted=joined["promoted"],
        rolled_back=joined["rolled_back"],
        naive_promoted=joined["naive"],
        fixed_horizon_promoted=np.concatenate([part["fixed"] for part in parts]),
        correlation=float(np.concatenate([part["correlation"] for part in parts]).mean()),
        sharpe_baseline=_sharpe(moments[0], moments[1], moments[4]),
        sharpe_candidate=_sharpe(moments[2], moments[3], moments[4]),
        compared={name: np.concatenate([part[f"compared:{name}"] for part in parts]) for name in comparators},
    )


def simulate_returns(
    markets: Sequence[np.ndarray],
    *,
    experiments: int,
    hours: int,
    scenario: Scenario,
    rng: np.random.Generator,
    first: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The hourly (baseline, candidate) returns of ``experiments`` experiments, each of shape
    ``(experiments, hours)``; experiment ``first + i`` trades ``markets[(first + i) % len(markets)]``."""
    market_of = (first + np.arange(experiments)) % len(markets)
    baseline = np.empty((experiments, hours))
    candidate = np.empty((experiments, hours))
    for index, returns in enumerate(markets):
        rows = np.flatnonzero(market_of == index)
        if rows.size == 0:
            continue
        path = stationary_bootstrap(returns, rows.size, hours, scenario.bootstrap_block_hours, rng)
        baseline[rows] = _variant(path, scenario, rng)
        edge = scenario.sharpe_gap * _variant_sd(returns, scenario.overlay) / np.sqrt(HOURS_PER_YEAR)
        candidate[rows] = _variant(path, scenario, rng) + edge
    return baseline, candidate


def stationary_bootstrap(
    returns: np.ndarray, paths: int, hours: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """``paths`` resampled paths of ``hours`` hours: runs of consecutive hours of ``returns`` (wrapping at its end)
    starting at random hours, each hour starting a new run with probability ``1 / mean_block``."""
    length = len(returns)
    new_run = rng.random((paths, hours)) < 1.0 / mean_block
    new_run[:, 0] = True
    starts = rng.integers(0, length, size=(paths, hours))
    hour = np.arange(hours)
    run_began = np.maximum.accumulate(np.where(new_run, hour, 0), axis=1)
    first_index = np.take_along_axis(starts, run_began, axis=1)
    return np.asarray(returns)[(first_index + hour - run_began) % length]


def naive_promotions(block_sums: np.ndarray, design: SequentialDesign) -> np.ndarray:
    """The first 1-based block at which a one-sided t-test of the block differences so far has p < alpha, looking
    at every block from ``design.min_blocks`` on (at least 2 blocks); 0 where it never does."""
    count = block_sums.shape[1]
    n = np.arange(1, count + 1)
    total = np.cumsum(block_sums, axis=1)
    squares = np.cumsum(block_sums * block_sums, axis=1)
    mean = total / n
    variance = np.maximum(squares - n * mean * mean, 0.0) / np.maximum(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean / np.sqrt(variance / n)
    p = stats.t.sf(np.nan_to_num(t, nan=0.0), np.maximum(n - 1, 1))
    crossed = (p < design.alpha) & (n >= max(design.min_blocks, 2))
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, 0)


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) binomial confidence interval of a rate."""
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="exact")
    return float(interval.low), float(interval.high)


def _variant(path: np.ndarray, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Returns of a variant holding the market plus its own overlay, redrawn at random moments, net of fees."""
    paths, hours = path.shape
    redraw = rng.random((paths, hours)) < 1.0 / scenario.mean_hold_hours
    redraw[:, 0] = True
    drawn = np.where(rng.random((paths, hours)) < 0.5, -scenario.overlay, scenario.overlay)
    hour = np.arange(hours)
    overlay = np.take_along_axis(drawn, np.maximum.accumulate(np.where(redraw, hour, 0), axis=1), axis=1)
    traded = np.abs(np.diff(overlay, axis=1, prepend=overlay[:, :1]))
    return (1.0 + overlay) * path - scenario.fee * traded


def _variant_sd(returns: np.ndarray, overlay: float) -> float:
    """Hourly standard deviation of ``(1 +/- overlay) * return`` over the whole series (the overlay's sign a fair
    coin, independent of the return)."""
    returns = np.asarray(returns)
    return float(np.sqrt((1.0 + overlay**2) * np.mean(returns**2) - np.mean(returns) ** 2))


def _one_sided_p(block_sums: np.ndarray) -> np.ndarray:
    count = block_sums.shape[1]
    sd = block_sums.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = block_sums.mean(axis=1) / (sd / np.sqrt(count))
    return stats.t.sf(np.nan_to_num(t, nan=0.0), count - 1)


def _row_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _sharpe(total: float, squares: float, count: float) -> float:
    mean = total / count
    return float(mean / np.sqrt(squares / count - mean * mean) * np.sqrt(HOURS_PER_YEAR))


def _rate(blocks: np.ndarray, within: int | None) -> float:
    hit = blocks > 0 if within is None else (blocks > 0) & (blocks <= within)
    return float(hit.mean())
