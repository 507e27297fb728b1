"""Capital allocation across the Strategies of one TradingAccount: their ``allocationPercent`` may not exceed 100 in
sum. Pure.

Each Strategy claims its share; the claims of an account are taken in creation order (the creation timestamp, then
the name), and a Strategy whose share does not fit beside the shares of every Strategy created before it is refused
(InvalidSpec on ``spec.allocationPercent``). So the later-created Strategies are the refused ones and the running
ones keep running; a refused one starts by itself once the others make room (lower theirs, or are deleted). The
check is strict: a refused Strategy's share still counts for those created after it, because a runtime that was
running before its share was raised keeps trading its last good config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from slsbot.api import Strategy
from slsbot.domain.resolve import INVALID_SPEC, Problem

FULL = 100.0
TOLERANCE = 1e-9  # 33.3 + 33.3 + 33.4 is 100.00000000000001 in floats, and fits
_NEWEST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AllocationClaim:
    """One Strategy's share of its account's capital, with what orders it among the account's Strategies."""

    name: str
    account: str
    percent: float
    created: datetime | None = None  # unknown: counted as the newest

    @classmethod
    def of(cls, strategy: Strategy) -> AllocationClaim:
        return cls(
            name=strategy.name,
            account=strategy.spec.account_ref.name,
            percent=strategy.spec.allocation_percent,
            created=strategy.metadata.creation_timestamp,
        )


def _order(claim: AllocationClaim) -> tuple[datetime, str]:
    created = claim.created
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (created or _NEWEST, claim.name)


def account_claims(account: str, claims: Iterable[AllocationClaim]) -> list[AllocationClaim]:
    """The claims on ``account``, in creation order (the earliest first)."""
    return sorted((claim for claim in claims if claim.account == account), key=_order)


def allocated_percent(account: str, claims: Iterable[AllocationClaim]) -> float:
    """The sum of the shares the Strategies of ``account`` claim (for the account's status)."""
    return sum(claim.percent for claim in claims if claim.account == account)


def check_allocation(strategy: Strategy, claims: Iterable[AllocationClaim]) -> list[Problem]:
    """Whether ``strategy``'s share fits beside the Strategies of its account created before it. ``claims`` are the
    Strategies of the namespace (others' accounts are ignored); ``strategy``'s own claim is taken from it, not from
    ``claims``, which may lag behind its latest edit."""
    mine = AllocationClaim.of(strategy)
    ordered = account_claims(mine.account, [*(c for c in claims if c.name != mine.name), mine])
    earlier = ordered[: ordered.index(mine)]
    claimed = sum(claim.percent for claim in earlier)
    if claimed + mine.percent <= FULL + TOLERANCE:
        return []
    others = ", ".join(f"{claim.name} {claim.percent:g}%" for claim in ordered if claim is not mine)
    before = ", ".join(f"{claim.name} {claim.percent:g}%" for claim in earlier)
    room = max(FULL - claimed, 0.0)
    fix = (
        f"lower allocationPercent to at most {room:g}, or lower theirs"
        if room > 0
        else "lower theirs first (or delete one), or move this Strategy to another account"
    )
    message = (
        f"{mine.percent:g}% would bring TradingAccount {mine.account!r} to {claimed + mine.percent:g}% of its "
        f"capital, and its Strategies may claim 100% in sum: those created before this one claim {claimed:g}% "
        f"({before}); the account's other Strategies: {others}; {fix}"
    )
    return [Problem(INVALID_SPEC, "spec.allocationPercent", message)]


def over_allocation(account: str, claims: Iterable[AllocationClaim], changes: Mapping[str, float]) -> str | None:
    """Why giving the named Strategies of ``account`` the shares in ``changes`` (a controller moving capital between
    variants) would take the account over 100 %, the others keeping theirs; None when it fits."""
    shares = {claim.name: claim.percent for claim in claims if claim.account == account}
    shares.update(changes)
    total = sum(shares.values())
    if total <= FULL + TOLERANCE:
        return None
    listed = ", ".join(f"{name} {percent:g}%" for name, percent in sorted(shares.items()))
    return f"TradingAccount {account!r} would be {total:g}% allocated ({listed}); its Strategies may claim 100% in sum"
