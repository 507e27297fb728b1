"""How much a choice among candidates (ensemble members, parameter sets) can be trusted. Pure numpy and scipy.

* **Probabilistic Sharpe ratio** (Bailey and Lopez de Prado, 2012): the probability that the true Sharpe ratio
  exceeds a benchmark SR*, given the observed SR, the number of returns T, their skewness g3 and kurtosis g4
  (3 for a normal, not the excess):

      PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

  with SR per period (not annualised) and Phi the standard normal CDF.
* **Deflated Sharpe ratio** (Bailey and Lopez de Prado, 2014): the PSR against SR0, the Sharpe ratio the best of
  N candidates with no edge would show by luck alone,

      SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

  with gamma the Euler-Mascheroni constant and V the variance of the candidates' per-period Sharpe ratios.
  With one candidate there is no selection: SR0 = 0.
* **Probability of backtest overfitting** by combinatorially symmetric cross-validation (Bailey, Borwein,
  Lopez de Prado and Zhu, 2015): the T x N matrix of per-period returns (one column per candidate) is cut into
  S blocks of rows; for each of the C(S, S/2) ways of taking half of them as in-sample and the rest as
  out-of-sample, the candidate with the best in-sample Sharpe ratio is found, its out-of-sample rank w among the
  N (1 worst, N best, ties averaged) is turned into the logit l = ln(w' / (1 - w')) with w' = w / (N + 1), and
  PBO is the fraction of splits with l <= 0: the in-sample winner did no better than the median out of sample.
  Rows that do not divide evenly go to the first blocks (``numpy.array_split``). With an odd N the median rank
  gives l = 0 and counts as overfit, so pure noise scores (N + 1) / 2N rather than 1/2.

Sharpe ratios here are per period: mean / standard deviation (ddof 1) of simple returns, 0 where the deviation is
0 (a candidate that never moves has no edge). Skewness and kurtosis are the plain moment estimators.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.stats import norm

EULER_GAMMA = 0.5772156649015329


def sharpe_ratio(returns: Sequence[float] | np.ndarray) -> float:
    """Per-period Sharpe ratio: mean over standard deviation (ddof 1); 0 for a flat series; NaN below 2 returns."""
    values = np.asarray(returns, dtype=np.float64)
    if len(values) < 2:
        return math.nan
    deviation = float(np.std(values, ddof=1))
    return float(np.mean(values)) / deviation if deviation > 0 else 0.0


def moments(returns: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """``(skewness, kurtosis)`` of the returns, plain moment estimators; kurtosis is 3 for a normal. A flat series
    has neither: ``(0, 3)``, the normal's, so that it adds nothing to the PSR's denominator."""
    values = np.asarray(returns, dtype=np.float64)
    centred = values - values.mean()
    variance = float(np.mean(centred**2))
    if variance <= 0:
        return 0.0, 3.0
    return float(np.mean(centred**3)) / variance**1.5, float(np.mean(centred**4)) / variance**2


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, *, observations: int, skewness: float, kurtosis: float
) -> float:
    """PSR: the probability that the true per-period Sharpe ratio exceeds ``benchmark`` (see the module doc)."""
    if observations < 2 or not math.isfinite(sharpe):
        return math.nan
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0:  # only for moments no sample has (kurtosis >= 1 + skewness² always)
        return math.nan
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread)))


def expected_maximum_sharpe(sharpe_variance: float, trials: int) -> float:
    """SR0: the Sharpe ratio the best of ``trials`` candidates with no edge is expected to show (per period)."""
    if trials < 1:
        raise ValueError(f"trials: at least one candidate is needed, got {trials}")
    if trials == 1 or sharpe_variance <= 0:
        return 0.0
    quantiles = (1 - EULER_GAMMA) * norm.ppf(1 - 1 / trials) + EULER_GAMMA * norm.ppf(1 - 1 / (trials * math.e))
    return math.sqrt(sharpe_variance) * float(quantiles)


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    sharpe: float  # per period
    benchmark: float  # SR0, per period
    trials: int
    sharpe_variance: float  # of the candidates' per-period Sharpe ratios
    observations: int
    skewness: float
    kurtosis: float
    probability: float  # the DSR: PSR(SR0)

    def to_json(self) -> dict[str, Any]:
        return {
            "dsr": _finite(self.probability),
            "sharpe_per_period": _finite(self.sharpe),
            "expected_max_sharpe_per_period": _finite(self.benchmark),
            "trials": self.trials,
            "sharpe_variance": _finite(self.sharpe_variance),
            "observations": self.observations,
            "skewness": _finite(self.skewness),
            "kurtosis": _finite(self.kurtosis),
        }


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray, *, trials: int, sharpe_variance: float
) -> DeflatedSharpe:
    """The DSR of a candidate's per-period ``returns``, chosen among ``trials`` candidates whose per-period Sharpe
    ratios have variance ``sharpe_variance``."""
    values = np.asarray(returns, dtype=np.float64)
    sharpe = sharpe_ratio(values)
    skewness, kurtosis = moments(values)
    benchmark = expected_maximum_sharpe(sharpe_variance, trials)
    probability = probabilistic_sharpe_ratio(
        sharpe, benchmark, observations=len(values), skewness=skewness, kurtosis=kurtosis
    )
    return DeflatedSharpe(sharpe, benchmark, trials, sharpe_variance, len(values), skewness, kurtosis, probability)


def deflated_sharpe_ratios(columns: np.ndarray) -> list[DeflatedSharpe]:
    """The DSR of every column of a T x N return matrix, each deflated for the choice among all N columns."""
    matrix = np.asarray(columns, dtype=np.float64)
    trials = matrix.shape[1]
    sharpes = [sharpe_ratio(matrix[:, k]) for k in range(trials)]
    variance = float(np.var(sharpes, ddof=1)) if trials > 1 else 0.0
    return [deflated_sharpe_ratio(matrix[:, k], trials=trials, sharpe_variance=variance) for k in range(trials)]


@dataclass(frozen=True, slots=True)
class Overfitting:
    pbo: float  # fraction of splits whose in-sample winner ranks at or below the median out of sample
    logits: np.ndarray  # λ of every split, in ``itertools.combinations`` order
    chosen: np.ndarray  # the in-sample winner's column, per split
    oos_sharpe: np.ndarray  # the winner's out-of-sample Sharpe ratio (per period), per split
    blocks: int
    candidates: int
    observations: int

    @property
    def splits(self) -> int:
        return len(self.logits)

    @property
    def probability_of_oos_loss(self) -> float:
        """The fraction of splits in which the in-sample winner lost money out of sample (Sharpe below 0)."""
        return float(np.mean(self.oos_sharpe < 0))

    def to_json(self, names: Sequence[str] | None = None) -> dict[str, Any]:
        counts = np.bincount(self.chosen, minlength=self.candidates)
        labels = list(names) if names is not None else [str(k) for k in range(self.candidates)]
        return {
            "pbo": self.pbo,
            "blocks": self.blocks,
            "splits": self.splits,
            "candidates": self.candidates,
            "observations": self.observations,
            "median_logit": float(np.median(self.logits)),
            "probability_of_oos_loss": self.probability_of_oos_loss,
            "in_sample_winners": {label: int(n) for label, n in zip(labels, counts, strict=True) if n},
        }


def backtest_overfitting(returns: np.ndarray, *, blocks: int = 16) -> Overfitting:
    """PBO by CSCV over a T x N matrix of per-period returns (one column per candidate; see the module doc)."""
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ValueError("returns: CSCV needs a T x N matrix with at least two candidates (columns)")
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks: CSCV needs an even number of blocks (at least 2), got {blocks}")
    observations, candidates = matrix.shape
    if observations < 2 * blocks:
        raise ValueError(f"returns: {observations} rows cannot make {blocks} blocks of at least two")
    parts = np.array_split(matrix, blocks, axis=0)
    sums = np.stack([part.sum(axis=0) for part in parts])  # blocks x N
    squares = np.stack([(part**2).sum(axis=0) for part in parts])
    counts = np.array([len(part) for part in parts], dtype=np.float64)
    membership = _splits(blocks)
    in_sharpe = _block_sharpes(membership, sums, squares, counts)
    out_sharpe = _block_sharpes(1.0 - membership, sums, squares, counts)
    winners = np.argmax(in_sharpe, axis=1)  # the first of equals
    winner_oos = out_sharpe[np.arange(len(winners)), winners]
    below = (out_sharpe < winner_oos[:, None]).sum(axis=1)
    equal = (out_sharpe == winner_oos[:, None]).sum(axis=1)  # the winner itself included
    rank = below + (equal + 1) / 2.0  # 1 = worst, N = best; ties share the average rank
    share = rank / (candidates + 1)
    logits = np.log(share / (1.0 - share))
    return Overfitting(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        chosen=winners,
        oos_sharpe=winner_oos,
        blocks=blocks,
        candidates=candidates,
        observations=observations,
    )


@functools.cache
def _splits(blocks: int) -> np.ndarray:
    """One row per split, in ``itertools.combinations`` order: 1.0 for the blocks in sample (read-only)."""
    chosen = np.array(list(combinations(range(blocks), blocks // 2)), dtype=np.int64)
    membership = np.zeros((len(chosen), blocks))
    np.put_along_axis(membership, chosen, 1.0, axis=1)
    membership.flags.writeable = False
    return membership


def _block_sharpes(membership: np.ndarray, sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sharpe ratio (ddof 1) of every column over the blocks each row of ``membership`` selects; 0 where flat."""
    n = (membership @ counts)[:, None]
    total = membership @ sums
    mean = total / n
    variance = np.maximum((membership @ squares - total * mean) / (n - 1), 0.0)
    deviation = np.sqrt(variance)
    # a deviation at rounding level of the mean (a flat column: every return equal) is no deviation
    flat = deviation <= 1e-7 * np.abs(mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat | (deviation == 0), 0.0, mean / np.where(deviation > 0, deviation, 1.0))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
