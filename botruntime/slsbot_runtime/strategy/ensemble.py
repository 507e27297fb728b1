"""The ensemble: several strategy components voting on one symbol's direction.

Built from the API's ``Ensemble`` (members, voting, correlationPenalty, minAgreement). Per candle each
member is asked through its ``SafeComponent``; its effective weight is

    member weight  x  correlation factor  (x  max(rolling Sharpe, 0) with sharpe voting)

and the votes are combined by ``voting.combine``. Votes per method: majority, the sign of the direction;
confidence, direction x confidence; sharpe, the direction. The correlation factor and the Sharpe ratios
only apply once their windows are full (``EnsembleSettings``); with sharpe voting the first window is a
plain weighted vote, and after it a member whose own signal lost money over the window gets no weight.

A member whose component can leave the vote (``StrategyComponent.in_vote``: a model that is missing, failed,
stale or drifted) has weight 0 while it is out and counts in no one's correlation penalty: the others decide as
if it were not there, and the attribution still sums to the net vote.

``decide`` is the step path (live and step backtests). ``decide_batch`` computes the same decisions for a
whole history when every member has a vectorized form, for all three voting methods.

One ``Ensemble`` holds per-symbol state: build one per symbol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import copysign

import numpy as np

from slsbot.api import Ensemble as EnsembleSpec
from slsbot.api import Voting
from slsbot_runtime.domain.types import Candle
from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.strategy.base import StrategyComponent
from slsbot_runtime.strategy.member_stats import MemberSharpe, SignalCorrelation, correlation_factors, member_sharpes
from slsbot_runtime.strategy.registry import LIBRARY, ComponentRegistry
from slsbot_runtime.strategy.voting import combine, combine_batch, combine_one
from slsbot_runtime.strategy.wrapper import ErrorHook, SafeComponent


@dataclass(frozen=True, slots=True)
class EnsembleSettings:
    #: Candles of member direction history behind the correlation penalty.
    correlation_window: int = 100
    #: Candles of member signal returns behind the Sharpe weights.
    sharpe_window: int = 168


class EnsembleDecision:
    """What the ensemble wants after one candle.

    ``direction`` in [-1, 1] is the net vote, or 0 below ``min_agreement``. ``attribution`` maps every
    member to its contribution; the contributions sum to ``net_vote``. ``driver`` is the member that
    contributed most on the side of the decision ("" when flat). ``weights`` are the effective weights,
    normalised to sum to 1 (all 0 when no member has weight). The two mappings are built when first read:
    the trading loop reads only the direction, the confidence and the driver.
    """

    __slots__ = ("_attribution", "_contributions", "_names", "_raw_weights", "_weights")
    __slots__ += ("confidence", "direction", "driver", "net_vote")

    def __init__(
        self,
        direction: float,
        confidence: float,
        driver: str,
        net_vote: float,
        names: tuple[str, ...],
        contributions: list[float],
        weights: list[float],
    ) -> None:
        self.direction = direction
        self.confidence = confidence
        self.driver = driver
        self.net_vote = net_vote
        self._names = names
        self._contributions = contributions
        self._raw_weights = weights
        self._attribution: dict[str, float] | None = None
        self._weights: dict[str, float] | None = None

    @property
    def attribution(self) -> dict[str, float]:
        if self._attribution is None:
            self._attribution = dict(zip(self._names, self._contributions, strict=True))
        return self._attribution

    @property
    def weights(self) -> dict[str, float]:
        if self._weights is None:
            names, weights = self._names, self._raw_weights
            total = sum(weights)
            self._weights = (
                {name: w / total for name, w in zip(names, weights, strict=True)}
                if total > 0
                else dict.fromkeys(names, 0.0)
            )
        return self._weights

    def _fields(self) -> tuple[object, ...]:
        return (self.direction, self.confidence, self.attribution, self.driver, self.net_vote, self.weights)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnsembleDecision):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # holds dicts, like the NamedTuple it replaced

    def __repr__(self) -> str:
        return (
            f"EnsembleDecision(direction={self.direction!r}, confidence={self.confidence!r}, "
            f"attribution={self.attribution!r}, driver={self.driver!r}, net_vote={self.net_vote!r}, "
            f"weights={self.weights!r})"
        )


@dataclass(frozen=True, slots=True)
class EnsembleBatch:
    """``decide_batch``'s answer: one row per candle, one column per member (in ``names`` order)."""

    names: tuple[str, ...]
    direction: np.ndarray
    confidence: np.ndarray
    net_vote: np.ndarray
    contributions: np.ndarray
    driver: np.ndarray  # member index, -1 when flat

    def attribution(self, t: int) -> dict[str, float]:
        return dict(zip(self.names, self.contributions[t].tolist(), strict=True))

    def driver_name(self, t: int) -> str:
        index = int(self.driver[t])
        return self.names[index] if index >= 0 else ""


class Ensemble:
    """Members voting on one symbol; holds their state, the trackers and the error counts.

    ``Ensemble(spec)`` builds fresh components for every member of the API's ``Ensemble`` (a bad member is
    a ConfigError naming it); ``Ensemble.from_members(...)`` takes members already wrapped.
    """

    def __init__(
        self,
        spec: EnsembleSpec,
        *,
        registry: ComponentRegistry = LIBRARY,
        settings: EnsembleSettings | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        members = [
            SafeComponent(member.name, registry.build(member), member.weight, on_error=on_error)
            for member in spec.members
        ]
        self._setup(members, Voting(spec.voting), spec.correlation_penalty, spec.min_agreement, settings)

    @classmethod
    def from_members(
        cls,
        members: Sequence[SafeComponent],
        *,
        voting: Voting | str = Voting.MAJORITY,
        correlation_penalty: float = 0.5,
        min_agreement: float = 0.0,
        settings: EnsembleSettings | None = None,
    ) -> Ensemble:
        ensemble = cls.__new__(cls)
        ensemble._setup(list(members), Voting(voting), correlation_penalty, min_agreement, settings)
        return ensemble

    def _setup(
        self,
        members: list[SafeComponent],
        voting: Voting,
        correlation_penalty: float,
        min_agreement: float,
        settings: EnsembleSettings | None,
    ) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        names = [member.name for member in members]
        if len(set(names)) != len(names):
            raise ValueError(f"ensemble member names must be unique, got {', '.join(names)}")
        self.members = tuple(members)
        self.names = tuple(names)
        self.voting = voting
        self.correlation_penalty = float(correlation_penalty)
        self.min_agreement = float(min_agreement)
        self.settings = settings or EnsembleSettings()
        self._base = [member.weight for member in members]
        count = len(members)
        penalised = self.correlation_penalty > 0 and count > 1
        self._correlation = SignalCorrelation(count, self.settings.correlation_window) if penalised else None
        self._sharpe = MemberSharpe(count, self.settings.sharpe_window) if voting == Voting.SHARPE else None
        #: Members that can leave the vote (their component overrides ``in_vote``), asked after every candle.
        self._optional = tuple(
            i
            for i, member in enumerate(members)
            if getattr(type(member.component), "in_vote", StrategyComponent.in_vote) is not StrategyComponent.in_vote
        )
        self._lone = members[0] if count == 1 and self._sharpe is None and not self._optional else None
        self._by_sign = voting == Voting.MAJORITY
        self._by_confidence = voting == Voting.CONFIDENCE
        #: The lone member's decision for a vote of +0.0 (no opinion: most candles), which depends on nothing else
        #: (``combine_one`` of a +0.0 vote ignores the confidence): built once by the same arithmetic, handed out
        #: again. Decisions are not changed after they are returned.
        self._lone_flat = self._vote_alone(0.0, 0.0) if self._lone is not None else None

    @property
    def required_features(self) -> tuple[str, ...]:
        """Feature-engine names any member reads (the caller computes these and passes them in)."""
        names: dict[str, None] = {}
        for member in self.members:
            names.update(dict.fromkeys(getattr(member.component, "required_features", ())))
        return tuple(names)

    @property
    def warmup(self) -> int:
        return max(member.warmup for member in self.members)

    @property
    def errors(self) -> dict[str, int]:
        """StrategyErrors counted per member."""
        return {member.name: member.errors for member in self.members}

    def decide(self, candle: Candle, features: Mapping[str, float]) -> EnsembleDecision:
        lone = self._lone
        if lone is not None:  # one member without Sharpe weights (no weight factor applies): the same vote, shorter
            signal = lone.on_candle(candle, features)
            direction = signal.direction
            if self._by_sign:
                if direction > 0:
                    vote = 1.0
                elif direction < 0:
                    vote = -1.0
                else:  # a vote of +0.0
                    return self._lone_flat  # type: ignore[return-value]  # what _vote_alone(+0.0, confidence) gives
            else:
                vote = direction * signal.confidence if self._by_confidence else direction
                if vote == 0.0 and copysign(1.0, vote) > 0.0:
                    return self._lone_flat  # type: ignore[return-value]
            return self._vote_alone(vote, signal.confidence)
        directions: list[float] = []
        confidences: list[float] = []
        for member in self.members:
            signal = member.on_candle(candle, features)
            directions.append(signal.direction)
            confidences.append(signal.confidence)
        weights = self._base
        active: list[bool] | None = None
        if self._optional:
            members = self.members
            out = [i for i in self._optional if not members[i].in_vote()]
            if out:
                active = [True] * len(members)
                for i in out:
                    active[i] = False
        if self._correlation is not None:
            self._correlation.update(tuple(directions))
            factors = self._correlation.factors(self.correlation_penalty, active)
            if factors is not None:
                weights = [w * f for w, f in zip(weights, factors, strict=True)]
        if self._sharpe is not None:
            self._sharpe.update(candle.close, tuple(directions))
            ratios = self._sharpe.ratios()
            if ratios is not None:
                weights = [w * (r if r > 0 else 0.0) for w, r in zip(weights, ratios, strict=True)]
        if active is not None:
            weights = [w if on else 0.0 for w, on in zip(weights, active, strict=True)]
        if self._by_sign:
            votes = [1.0 if d > 0 else (-1.0 if d < 0 else 0.0) for d in directions]
        elif self._by_confidence:
            votes = [d * c for d, c in zip(directions, confidences, strict=True)]
        else:
            votes = directions
        vote = combine(votes, confidences, weights, self.min_agreement)
        names = self.names
        return EnsembleDecision(
            vote.direction,
            vote.confidence,
            names[vote.driver] if vote.driver >= 0 else "",
            vote.net,
            names,
            vote.contributions,
            weights,
        )

    def _vote_alone(self, vote: float, confidence: float) -> EnsembleDecision:
        """The lone member's decision for ``vote``: ``combine_one``, the vote of a single member."""
        weights = self._base
        result = combine_one(vote, confidence, weights[0], self.min_agreement)
        names = self.names
        return EnsembleDecision(
            result.direction,
            result.confidence,
            names[0] if result.driver == 0 else "",
            result.net,
            names,
            result.contributions,
            weights,
        )

    def supports_batch(self) -> bool:
        """Whether every member overrides ``signals`` or ``signal_arrays`` (so ``decide_batch`` can run)."""
        return all(
            type(member.component).signals is not StrategyComponent.signals
            or type(member.component).signal_arrays is not StrategyComponent.signal_arrays
            for member in self.members
        )

    def decide_batch(self, history: OHLCV, features: Mapping[str, np.ndarray]) -> EnsembleBatch:
        """Every decision over ``history`` at once, equal to calling ``decide`` candle by candle on fresh
        members. Raises ValueError naming the members that have no vectorized form."""
        arrays = [member.signal_arrays(history, features) for member in self.members]
        missing = [member.name for member, pair in zip(self.members, arrays, strict=True) if pair is None]
        if missing:
            raise ValueError(
                f"decide_batch needs every member to compute signals for a whole history; "
                f"{', '.join(missing)} cannot: run the step mode (decide per candle) instead"
            )
        directions = np.column_stack([pair[0] for pair in arrays])  # type: ignore[index]
        confidences = np.column_stack([pair[1] for pair in arrays])  # type: ignore[index]
        n = len(history)
        weights = np.tile(np.asarray(self._base, dtype=np.float64), (n, 1))
        active = None
        for i in self._optional:
            mask = self.members[i].vote_mask(history, features)
            if mask is not None:
                if active is None:
                    active = np.ones(weights.shape, dtype=bool)
                active[:, i] = mask
        if self._correlation is not None:
            window, penalty = self.settings.correlation_window, self.correlation_penalty
            weights *= correlation_factors(directions, window, penalty, active)
        if self.voting == Voting.MAJORITY:
            votes = np.sign(directions)
        elif self.voting == Voting.CONFIDENCE:
            votes = directions * confidences
        else:
            votes = directions
            ratios = member_sharpes(history.close, directions, self.settings.sharpe_window)
            weights = np.where(np.isnan(ratios), weights, weights * np.maximum(ratios, 0.0))
        if active is not None:
            weights = np.where(active, weights, 0.0)
        vote = combine_batch(votes, confidences, weights, self.min_agreement)
        return EnsembleBatch(self.names, vote.direction, vote.confidence, vote.net, vote.contributions, vote.driver)
