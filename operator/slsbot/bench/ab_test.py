"""``python -m slsbot.bench.ab_test`` (``make bench``): the A/B rollout's sequential test, measured by simulation.

Simulated experiments (``slsbot.domain.sequential_simulation``: two variants holding the same market, each with an
independent timing overlay, over real BTC/USDT and ETH/USDT hourly returns resampled in runs of a week on average)
are looked at after every day with ``slsbot.domain.sequential_test`` at its default design. The hourly returns
are every pair of consecutive candles in ``data/market/binance-spot-1h-2017`` (2017-08 to 2022-10) and
``binance-spot-1h-2024`` (2024-09 to 2026-02): the whole BTC and ETH spot 1h series of the shared data set, which
the repository holds byte for byte (the shared set has no other spot 1h candles of these two). Figures:

* ``ab_false_promotion_percent``: share of ``NULL_EXPERIMENTS`` experiments with a candidate equal to the
  baseline that the test promotes within ``NULL_DAYS`` daily looks; ``_ci95_low`` / ``_ci95_high`` its exact
  (Clopper-Pearson) 95 % binomial interval; ``ab_false_rollback_percent`` the same for rollback.
* ``ab_naive_false_promotion_percent``: the same experiments judged by a one-sided t-test at every look
  (promote at the first p < 0.05), which is what the test replaces.
* ``ab_power_60d_percent``: share of ``POWER_EXPERIMENTS`` experiments whose candidate has an annualised Sharpe
  ratio higher by 1.0 (a constant hourly edge; the variants' hourly returns correlated at about 0.99) that the
  test promotes within 60 days; ``ab_mean_days_to_promote`` the mean day of promotion among those.
* comment lines: the realised correlation and Sharpe ratios, the t-test looked at once on the last day (the
  fixed-horizon reference), the rollback of a candidate worse by 1.0, the power for other correlations, the false
  promotions under harder conditions (``STRESS``: one and two years of looks, positions held for weeks, other bootstrap
  runs), other clipping levels (``CLIPS``), and two other always-valid tests on the same blocks
  (``COMPARATORS``): a Gaussian mixture SPRT with the variance estimated from the past, and the self-normalised
  normal mixture.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.special import log_ndtr

from slsbot.domain.sequential_simulation import Comparator, Scenario, SimulationResult, clopper_pearson, simulate
from slsbot.domain.sequential_test import SequentialDesign, standardised_blocks
from slsbot_runtime.bench import report
from slsbot_runtime.data.discovery import load_history

REPO = Path(__file__).resolve().parents[3]
HOURLY_FOLDERS = ("binance-spot-1h-2017", "binance-spot-1h-2024")
SYMBOLS = ("BTC/USDT", "ETH/USDT")
HOUR_MS = 3_600_000
NULL_EXPERIMENTS = 10_000
NULL_DAYS = 90
POWER_EXPERIMENTS = 10_000
POWER_DAYS = 60
OTHER_EXPERIMENTS = 2000  # for each comment line
OVERLAYS = (0.05, 0.2, 0.4)  # the power at other correlations between the variants: about 0.9975, 0.96, 0.86
STRESS = (  # candidate equal to the baseline, under conditions harder than the default scenario's
    ("a year of daily looks", 365, Scenario()),
    ("two years of daily looks", 730, Scenario()),
    ("overlays held a week on average (days depend on each other)", NULL_DAYS, Scenario(mean_hold_hours=168)),
    ("overlays held a month on average", NULL_DAYS, Scenario(mean_hold_hours=720)),
    ("overlays redrawn every hour on average", NULL_DAYS, Scenario(mean_hold_hours=1)),
    ("bootstrap runs of a day on average", NULL_DAYS, Scenario(bootstrap_block_hours=24)),
    ("bootstrap runs of a month on average", NULL_DAYS, Scenario(bootstrap_block_hours=720)),
)
CLIPS = (1.0, 3.0)  # other clip_scales: the trade-off of power against judging the mean
MIXTURE_BLOCKS = 30.0  # the normal mixtures of COMPARATORS are tightest after about this many tested blocks
TARGETS = {
    "ab_false_promotion_percent": ("<=", 5.0),
    "ab_false_promotion_percent_ci95_high": ("<=", 5.0),
    "ab_false_rollback_percent": ("<=", 5.0),
}


def hourly_returns(market_dir: Path, symbol: str) -> np.ndarray:
    """The close-to-close returns of every two consecutive 1h candles of ``symbol`` in the ``HOURLY_FOLDERS`` of
    ``market_dir``; the return across a missing hour (an exchange outage) is left out."""
    parts = []
    for folder in HOURLY_FOLDERS:
        history = load_history(market_dir / folder, symbol, "1h", interval_ms=HOUR_MS)
        consecutive = np.diff(history.ts) == HOUR_MS
        parts.append((np.diff(history.close) / history.close[:-1])[consecutive])
    return np.concatenate(parts)


def normal_mixture(*, self_normalised: bool) -> Comparator:
    """A one-sided normal-mixture test on the same standardised (unclipped) blocks as the default test. With the
    variance counted as one per block it is the Gaussian mixture SPRT with a variance estimated from the past
    (Johari et al. 2022); with the blocks' own squares it is the self-normalised mixture, valid for conditionally
    symmetric blocks (de la Peña 1999; Howard et al. 2021). Both mix over the normal prior that is about the
    tightest after ``MIXTURE_BLOCKS`` blocks (Howard et al. 2021)."""

    def promotions(block_sums: np.ndarray, design: SequentialDesign) -> np.ndarray:
        x, tested = standardised_blocks(block_sums, design)
        total = np.cumsum(x, axis=1)
        variance = np.cumsum(x * x if self_normalised else tested.astype(float), axis=1)
        log_threshold = math.log(design.threshold)
        rho = MIXTURE_BLOCKS / (2 * log_threshold + math.log(1 + 2 * log_threshold))
        spread = variance + rho
        log_evidence = (
            math.log(2) - 0.5 * np.log(spread / rho) + total**2 / (2 * spread) + log_ndtr(total / np.sqrt(spread))
        )
        crossed = (log_evidence >= log_threshold) & (np.arange(1, x.shape[1] + 1) >= design.min_blocks)
        return np.where(crossed.any(axis=1), crossed.argmax(axis=1) + 1, 0)

    return promotions


COMPARATORS = {
    "Gaussian mixture SPRT, variance from the past": normal_mixture(self_normalised=False),
    "self-normalised normal mixture": normal_mixture(self_normalised=True),
}


def bench_ab_test(market_dir: Path) -> None:
    markets = [hourly_returns(market_dir, symbol) for symbol in SYMBOLS]
    design = SequentialDesign()
    print(
        f"# {' and '.join(SYMBOLS)} hourly returns ({', '.join(f'{len(m):,}' for m in markets)} hours), "
        f"stationary bootstrap; design {design}",
        flush=True,
    )
    started = time.perf_counter()
    null = simulate(
        markets,
        experiments=NULL_EXPERIMENTS,
        days=NULL_DAYS,
        scenario=Scenario(),
        design=design,
        seed=1,
        comparators=COMPARATORS,
    )
    _describe("candidate equal to the baseline", null)
    promoted = int((null.promoted > 0).sum())
    low, high = clopper_pearson(promoted, null.experiments)
    print(
        f"# false promotion: {promoted} of {null.experiments} experiments over {NULL_DAYS} daily looks, "
        f"{100 * promoted / null.experiments:.2f} % (95 % CI {100 * low:.2f} to {100 * high:.2f} %)",
        flush=True,
    )
    report("ab_false_promotion_percent", 100 * null.promotion_rate(), TARGETS["ab_false_promotion_percent"])
    report("ab_false_promotion_percent_ci95_low", 100 * low)
    report("ab_false_promotion_percent_ci95_high", 100 * high, TARGETS["ab_false_promotion_percent_ci95_high"])
    report("ab_false_rollback_percent", 100 * null.rollback_rate(), TARGETS["ab_false_rollback_percent"])
    report("ab_naive_false_promotion_percent", 100 * null.naive_promotion_rate())
    print(
        f"# the t-test looked at once, on day {NULL_DAYS}: {100 * null.fixed_horizon_promoted.mean():.2f} % "
        "false promotions (valid when looked at once only)",
        flush=True,
    )

    better = simulate(
        markets,
        experiments=POWER_EXPERIMENTS,
        days=POWER_DAYS,
        scenario=Scenario(sharpe_gap=1.0),
        design=design,
        seed=2,
        comparators=COMPARATORS,
    )
    _describe("candidate's Sharpe ratio higher by 1.0", better)
    report("ab_power_60d_percent", 100 * better.promotion_rate())
    report("ab_mean_days_to_promote", better.mean_blocks_to_promote())
    print(
        f"# reference: the t-test looked at once, on day {POWER_DAYS}, promotes "
        f"{100 * better.fixed_horizon_promoted.mean():.1f} %; "
        f"looked at every day {100 * better.naive_promotion_rate():.1f} % (but see its false promotions)",
        flush=True,
    )
    worse = _simulate(markets, POWER_DAYS, Scenario(sharpe_gap=-1.0), design, seed=3)
    print(
        f"# candidate's Sharpe ratio lower by 1.0: rolled back within {POWER_DAYS} days in "
        f"{100 * worse.rollback_rate():.1f} % (promoted {100 * worse.promotion_rate():.2f} %), mean day "
        f"{np.mean(worse.rolled_back[worse.rolled_back > 0]):.1f}",
        flush=True,
    )
    for overlay in OVERLAYS:
        other = _simulate(markets, POWER_DAYS, Scenario(sharpe_gap=1.0, overlay=overlay), design, seed=4)
        print(
            f"# overlay {overlay}: variants correlated at {other.correlation:.4f}, power at {POWER_DAYS} days "
            f"{100 * other.promotion_rate():.1f} % (t-test looked at once: "
            f"{100 * other.fixed_horizon_promoted.mean():.1f} %)",
            flush=True,
        )
    for label, days, scenario in STRESS:
        stressed = _simulate(markets, days, scenario, design, seed=5)
        count = int((stressed.promoted > 0).sum())
        print(
            f"# equal candidate, {label}: false promotion {100 * count / stressed.experiments:.2f} % "
            f"(95 % CI up to {100 * clopper_pearson(count, stressed.experiments)[1]:.2f} %) over {days} looks, "
            f"false rollback {100 * stressed.rollback_rate():.2f} %",
            flush=True,
        )
    for clip in CLIPS:
        clipped = replace(design, clip_scales=clip)
        equal = _simulate(markets, NULL_DAYS, Scenario(), clipped, seed=6)
        ahead = _simulate(markets, POWER_DAYS, Scenario(sharpe_gap=1.0), clipped, seed=7)
        print(
            f"# clip_scales {clip}: false promotion {100 * equal.promotion_rate():.2f} % over {NULL_DAYS} looks, "
            f"power at {POWER_DAYS} days {100 * ahead.promotion_rate():.1f} %",
            flush=True,
        )
    for name in COMPARATORS:
        print(
            f"# {name}, on the same blocks: false promotion {100 * _rate(null.compared[name]):.2f} % over "
            f"{NULL_DAYS} looks, power at {POWER_DAYS} days {100 * _rate(better.compared[name]):.1f} %",
            flush=True,
        )
    print(f"# simulations took {time.perf_counter() - started:.1f} s", flush=True)


def _simulate(
    markets: list[np.ndarray], days: int, scenario: Scenario, design: SequentialDesign, *, seed: int
) -> SimulationResult:
    return simulate(markets, experiments=OTHER_EXPERIMENTS, days=days, scenario=scenario, design=design, seed=seed)


def _rate(promoted_at: np.ndarray) -> float:
    return float((promoted_at > 0).mean())


def _describe(label: str, result: SimulationResult) -> None:
    print(
        f"# {label}: {result.experiments} experiments of {result.days} days; hourly returns of the variants "
        f"correlated at {result.correlation:.4f}; realised annualised Sharpe ratio baseline "
        f"{result.sharpe_baseline:.2f}, candidate {result.sharpe_candidate:.2f}",
        flush=True,
    )


def main() -> int:
    print(f"# {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    bench_ab_test(REPO / "data" / "market")
    return 0


if __name__ == "__main__":
    sys.exit(main())
