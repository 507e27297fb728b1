"""Account and global headroom: what the control plane says this runtime may still add, enforced on new entries.

A RiskPolicy with ``scope: account`` (or ``global``) holds limits across every Strategy of an account (or every
account using it). The control plane aggregates the runtimes' figures and pushes each runtime its share of what is
left (``POST /headroom``, docs/concepts/risk.md#scope): in quote currency, how much more exposure it may add per
symbol and in total, whether entries are halted, a size multiplier, and the kill switch; with an ``expires_at``.

``parse_headroom`` checks a pushed body (``ValueError`` naming the field and the fix, nothing changed).
``HeadroomLimits`` enforces one pushed headroom: every entry approved since the push uses part of it (the notional
it adds), so two entries between pushes cannot each take the whole room; the next push starts again from the
control plane's fresh figures. After ``expires_at`` (the control plane is unreachable) nothing of the headroom is
enforced, its kill switch included, and the runtime's own policy limits, which are always enforced, are what is
left: never none. (A kill switch stays durable through the runtime's config: the control plane also puts the
policy's ``killSwitch`` in it, which restarts the runtime with the kill switch of its own policy.)

A push with ``scope: strategy`` carries only a kill switch: the control plane pushes it to the runtimes of a
``scope: strategy`` policy so that its kill switch acts before their restart with the new config.

Pure but for the clock it is given (wall seconds), read only when an entry is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.market_rules import MarketRules
from slsbot_runtime.risk.base import RiskEvent, RiskRule

META_KEY = "headroom"
SCOPES = ("account", "global", "strategy")
FIELDS = (
    "scope",
    "policy",
    "total_exposure",
    "symbol_exposure",
    "halt_entries",
    "size_multiplier",
    "kill_switch",
    "reason",
    "expires_at",
)
OPTIONAL = ("figures_at",)  # the heartbeat of the /status the control plane computed it from (ISO), or null
EXAMPLE = (
    'e.g. {"scope": "account", "policy": "acct-risk", "total_exposure": 5000, "symbol_exposure": {"BTC/USDT": 2500}, '
    '"halt_entries": false, "size_multiplier": 1, "kill_switch": false, "reason": "...", '
    '"expires_at": "2026-01-01T00:05:00Z"}'
)


@dataclass(frozen=True, slots=True)
class Headroom:
    """One push, as it was sent (amounts in quote currency, what this runtime may still add)."""

    scope: str
    policy: str
    total_exposure: float | None
    symbol_exposure: Mapping[str, float]
    halt_entries: bool
    size_multiplier: float
    kill_switch: bool
    reason: str
    expires_at: datetime  # timezone-aware, UTC
    figures_at: datetime | None = None  # the /status it was computed from: entries after it are not in its figures

    def expired(self, now_s: float) -> bool:
        return now_s >= self.expires_at.timestamp()

    def to_json(self) -> dict[str, Any]:
        """The body as pushed (what the state file keeps and ``/status`` shows)."""
        return {
            "scope": self.scope,
            "policy": self.policy,
            "total_exposure": self.total_exposure,
            "symbol_exposure": dict(sorted(self.symbol_exposure.items())),
            "halt_entries": self.halt_entries,
            "size_multiplier": self.size_multiplier,
            "kill_switch": self.kill_switch,
            "reason": self.reason,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
            "figures_at": None if self.figures_at is None else self.figures_at.isoformat().replace("+00:00", "Z"),
        }

    def status_json(self, now_s: float) -> dict[str, Any]:
        """The ``headroom`` block of ``/status``: as pushed, and whether it has expired."""
        return {**self.to_json(), "expired": self.expired(now_s)}


def parse_headroom(data: Any) -> Headroom:
    """A pushed body -> ``Headroom``; ``ValueError`` naming the field and the fix for anything else."""
    if not isinstance(data, dict):
        raise ValueError(f"body: expected a JSON object; {EXAMPLE}")
    unknown = sorted(set(data) - set(FIELDS) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field; /headroom takes {', '.join(FIELDS + OPTIONAL)}")
    missing = [name for name in FIELDS if name not in data]
    if missing:
        raise ValueError(f"{missing[0]}: missing; {EXAMPLE}")
    scope = data["scope"]
    if scope not in SCOPES:
        raise ValueError(f"scope: {scope!r} must be one of {', '.join(SCOPES)}")
    policy = data["policy"]
    if not isinstance(policy, str) or not policy:
        raise ValueError(f"policy: {policy!r} must be the RiskPolicy's name")
    total = data["total_exposure"]
    if total is not None:
        total = _amount(total, "total_exposure", "or null for no total limit")
    symbols = data["symbol_exposure"]
    if not isinstance(symbols, dict):
        raise ValueError('symbol_exposure: expected an object {"BTC/USDT": 2500.0, ...} ({} for none)')
    symbol_exposure = {}
    for symbol, amount in symbols.items():
        if not isinstance(symbol, str) or "/" not in symbol:
            raise ValueError(f"symbol_exposure: key {symbol!r} must be a market symbol such as BTC/USDT")
        symbol_exposure[symbol] = _amount(amount, f"symbol_exposure[{symbol!r}]", "")
    flags = {}
    for name in ("halt_entries", "kill_switch"):
        if not isinstance(data[name], bool):
            raise ValueError(f"{name}: must be true or false, got {data[name]!r}")
        flags[name] = data[name]
    multiplier = data["size_multiplier"]
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or not 0.0 < multiplier <= 1.0:
        raise ValueError(f"size_multiplier: {multiplier!r} must be a number above 0 and at most 1 (1: no cut)")
    reason = data["reason"]
    if not isinstance(reason, str):
        raise ValueError(f"reason: {reason!r} must be a string saying why")
    expires_at = _time(data["expires_at"], "expires_at")
    figures_at = None if data.get("figures_at") is None else _time(data["figures_at"], "figures_at")
    return Headroom(
        scope=scope,
        policy=policy,
        total_exposure=total,
        symbol_exposure=symbol_exposure,
        halt_entries=flags["halt_entries"],
        size_multiplier=float(multiplier),
        kill_switch=flags["kill_switch"],
        reason=reason[:500],
        expires_at=expires_at,
        figures_at=figures_at,
    )


def _time(value: Any, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{name}: {value!r} must be an ISO time with its zone, e.g. 2026-01-01T00:05:00Z")
    return parsed.astimezone(UTC)


#: How long a runtime under an account or global policy waits for its first headroom before it trades on its own
#: limits (a control plane that never comes is one that went away).
AWAIT_FIRST_S = 30.0


def awaiting_headroom(scope: str, now_s: float, wait_s: float = AWAIT_FIRST_S) -> Headroom | None:
    """For a runtime that starts under an account or global policy with no headroom kept: entries wait (halted) for
    the control plane's first push, at most ``wait_s``; then its own limits hold. None under ``scope: strategy``."""
    if scope not in ("account", "global"):
        return None
    return Headroom(
        scope=scope,
        policy="-",
        total_exposure=None,
        symbol_exposure={},
        halt_entries=True,
        size_multiplier=1.0,
        kill_switch=False,
        reason=f"waiting for the first headroom of the {scope} RiskPolicy from the control plane",
        expires_at=datetime.fromtimestamp(now_s + wait_s, UTC),
    )


def headroom_from_meta(meta: Mapping[str, Any]) -> Headroom | None:
    """The last push kept in the state file's meta (``StateStore.load_meta``); None when there is none. StateError
    naming the field when it is not what ``Headroom.to_json`` wrote."""
    stored = meta.get(META_KEY)
    if stored is None:
        return None
    try:
        return parse_headroom(stored)
    except ValueError as error:
        raise StateError(f"state meta {META_KEY}: {error}") from None


def _amount(value: Any, name: str, alternative: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        extra = f", {alternative}" if alternative else ""
        raise ValueError(f"{name}: {value!r} must be a number of at least 0 (quote currency){extra}")
    return float(value)


class HeadroomCut:
    """What the headroom does to one entry: the quantity left (0: refused) and the events that say why."""

    __slots__ = ("events", "quantity", "refused")

    def __init__(self, quantity: float, events: tuple[RiskEvent, ...], refused: bool) -> None:
        self.quantity, self.events, self.refused = quantity, events, refused


@dataclass(slots=True)
class HeadroomLimits:
    """One pushed headroom in force, and what the entries approved since the push used of it."""

    headroom: Headroom
    clock: Callable[[], float]
    used_symbol: dict[str, float] = field(default_factory=dict)
    used_total: float = 0.0
    uses: list[tuple[float, str, float]] = field(default_factory=list)  # (wall time, symbol, notional) per entry

    @classmethod
    def following(
        cls, previous: HeadroomLimits | None, headroom: Headroom, clock: Callable[[], float]
    ) -> HeadroomLimits:
        """The limits of a new push: the entries approved since the figures it was computed from (``figures_at``) are
        not in them, so they stay used; the earlier ones are in the figures, so they are not counted twice."""
        limits = cls(headroom, clock)
        if previous is not None and headroom.figures_at is not None:
            since = headroom.figures_at.timestamp()
            for at, symbol, notional in previous.uses:
                if at > since:
                    limits.use(symbol, notional, at=at)
        return limits

    @property
    def kill_switch(self) -> bool:
        """The pushed kill switch, while the headroom has not expired."""
        return self.headroom.kill_switch and self.active()

    def active(self) -> bool:
        """Whether the limits other than the kill switch are in force (not expired)."""
        return not self.headroom.expired(self.clock())

    def gates(self) -> list[RiskEvent]:
        """What forbids any entry now: entries halted by the control plane (until the headroom expires)."""
        headroom = self.headroom
        if headroom.halt_entries and self.active():
            message = (
                f"entries halted by the {headroom.scope} RiskPolicy {headroom.policy!r}: "
                f"{headroom.reason or 'no reason'}; entries resume when the control plane lifts it, or at its "
                "expiry on this runtime's own limits"
            )
            return [RiskEvent(RiskRule.ACCOUNT_HALT, message)]
        return []

    def cut(self, symbol: str, price: float, quantity: float, rules: MarketRules | None) -> HeadroomCut:
        """``quantity`` of an entry on ``symbol`` at ``price`` scaled by the size multiplier and cut to what is left
        of the symbol's and the total headroom; refused when nothing (or less than the market takes) is left.
        An approved entry uses its notional from the headroom."""
        if not self.active():
            return HeadroomCut(quantity, (), False)
        headroom = self.headroom
        events: list[RiskEvent] = []
        where = f"{headroom.scope} RiskPolicy {headroom.policy!r}"
        if headroom.size_multiplier < 1.0:
            before, quantity = quantity, quantity * headroom.size_multiplier
            message = (
                f"the {where} multiplies new sizes by {headroom.size_multiplier:.2f} ({headroom.reason or 'no reason'})"
                f": quantity {before:.8g} -> {quantity:.8g}"
            )
            events.append(RiskEvent(RiskRule.ACCOUNT_SIZE, message))
        limits: list[tuple[RiskRule, str, float, float]] = []
        symbol_room = headroom.symbol_exposure.get(symbol)
        if symbol_room is not None:
            used = self.used_symbol.get(symbol, 0.0)
            limits.append((RiskRule.ACCOUNT_SYMBOL_EXPOSURE, f"{symbol} exposure", symbol_room, used))
        if headroom.total_exposure is not None:
            limits.append((RiskRule.ACCOUNT_TOTAL_EXPOSURE, "total exposure", headroom.total_exposure, self.used_total))
        for rule, what, room, used in limits:
            left = max(room - used, 0.0)
            if quantity * price > left + 1e-9:
                cut = left / price
                message = (
                    f"the {where} leaves this runtime {left:.2f} of {what} to add (pushed {room:.2f}, "
                    f"{used:.2f} used since): quantity {quantity:.8g} -> {cut:.8g}"
                )
                events.append(RiskEvent(rule, message))
                quantity = cut
        if rules is not None and quantity > 0:
            quantity = rules.floor_amount(quantity)
            problem = rules.order_problem(quantity, price)
            if problem is not None:
                events.append(RiskEvent(RiskRule.MARKET_MINIMUM, f"entry cut to the {where}'s headroom: {problem}"))
                return HeadroomCut(0.0, tuple(events), True)
        if quantity <= 0:
            return HeadroomCut(0.0, tuple(events), True)
        return HeadroomCut(quantity, tuple(events), False)

    def use(self, symbol: str, notional: float, *, at: float | None = None) -> None:
        """An entry of ``notional`` was approved: it is taken from the headroom until a push whose figures hold it."""
        self.used_symbol[symbol] = self.used_symbol.get(symbol, 0.0) + notional
        self.used_total += notional
        self.uses.append((self.clock() if at is None else at, symbol, notional))
        if len(self.uses) > 10_000:  # bounded: a runtime never pushed to again keeps only its recent entries
            del self.uses[:5_000]
