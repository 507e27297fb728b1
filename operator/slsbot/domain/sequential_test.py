"""THROWAWAY STAND-IN, DELETE AT MERGE: P3's branch (sequential-stats) owns this file and replaces it whole.

It exists only so the rollout controller (P7) can run before P3's always-valid test lands. It has exactly the
interface the issue's contracts give P3 (``SequentialDesign``, ``SequentialState``, ``update_test``,
``decide_test``, ``TestDecision``, ``Verdict``) and a plain normal-mixture SPRT on block means of the paired
differences (candidate minus baseline), with no claim about its error rate under autocorrelation or fat tails.
When merging, take P3's version of this path and drop this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, Field


class Verdict(StrEnum):
    CONTINUE = "continue"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class SequentialDesign:
    alpha: float = 0.05
    periods_per_block: int = 24
    min_blocks: int = 4


class SequentialState(BaseModel):
    pending: list[float] = Field(default_factory=list)
    blocks: int = 0
    total: float = 0.0
    total_sq: float = 0.0


@dataclass(frozen=True, slots=True)
class TestDecision:
    verdict: Verdict
    statistic: float
    threshold: float
    blocks: int
    detail: str


def update_test(
    state: SequentialState, pairs: Sequence[tuple[float, float]], design: SequentialDesign
) -> SequentialState:
    pending = list(state.pending)
    blocks, total, total_sq = state.blocks, state.total, state.total_sq
    for baseline_r, candidate_r in pairs:
        pending.append(candidate_r - baseline_r)
        if len(pending) == design.periods_per_block:
            mean = sum(pending) / len(pending)
            blocks, total, total_sq = blocks + 1, total + mean, total_sq + mean * mean
            pending = []
    return SequentialState(pending=pending, blocks=blocks, total=total, total_sq=total_sq)


def decide_test(state: SequentialState, design: SequentialDesign) -> TestDecision:
    threshold = math.log(1 / design.alpha)
    n = state.blocks
    if n < max(design.min_blocks, 2):
        return TestDecision(Verdict.CONTINUE, 0.0, threshold, n, f"{n} blocks; at least {design.min_blocks} needed")
    mean = state.total / n
    variance = max((state.total_sq - n * mean * mean) / (n - 1), 1e-18)
    statistic = 0.5 * math.log(1 / (1 + n)) + n * n * mean * mean / (2 * variance * (1 + n))
    verdict = Verdict.CONTINUE
    if statistic >= threshold:
        verdict = Verdict.PROMOTE if mean > 0 else Verdict.ROLLBACK
    return TestDecision(verdict, statistic, threshold, n, f"mean block difference {mean:.3g} over {n} blocks")
