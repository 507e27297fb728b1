"""What the chaos run concludes, as pure functions over plain data: one bot's book against the exchange's (orders
lost or duplicated, fills booked twice or missing, a position that is not the balance), and the mean time to
detect and to recover per failure class from the control plane's Prometheus histograms."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

#: The control plane's MTTR histograms (issue 9's contract), by what the report calls them.
MTTR_HISTOGRAMS = {"detection": "slsbot_heal_detection_seconds", "recovery": "slsbot_heal_recovery_seconds"}
#: Bot statuses that say the exchange has (or had) the order.
AT_THE_EXCHANGE = {"open", "partially_filled", "filled"}
EXCHANGE_STATUS = {"new": "open"}  # the exchange's name -> the bot's, where they differ


@dataclass(frozen=True)
class BotBook:
    name: str
    orders: dict[str, tuple[str, float]]  # client id -> (status, filled quantity)
    fills: list[tuple[str, str]]  # (fill id, client id)
    positions: dict[str, float]  # symbol -> quantity


@dataclass(frozen=True)
class ExchangeBook:
    symbol: str  # the bot's one symbol, e.g. BTC/USDT
    orders: list[tuple[str, str, float]]  # (client id, status, filled quantity), every order accepted
    fills: list[tuple[str, str]]  # (trade id, client id)
    balance: float  # of the symbol's base asset


@dataclass
class BotCheck:
    sent: int = 0  # distinct client ids the exchange accepted
    lost: int = 0  # accepted but unknown to the bot, or the bot thinks sent and the exchange never took it
    duplicated: int = 0  # a client id accepted twice, or a fill booked twice
    pending: int = 0  # intents not sent yet (they will be, with the same id)
    problems: list[str] = field(default_factory=list)


def check_bot(bot: BotBook, exchange: ExchangeBook) -> BotCheck:
    result = BotCheck()
    accepted = Counter(cid for cid, _status, _filled in exchange.orders)
    result.sent = len(accepted)
    for cid, count in accepted.items():
        if count > 1:
            result.duplicated += count - 1
            result.problems.append(f"the exchange accepted {cid} {count} times")
    theirs = {cid: (EXCHANGE_STATUS.get(status, status), filled) for cid, status, filled in exchange.orders}
    for cid, (status, filled) in theirs.items():
        mine = bot.orders.get(cid)
        if mine is None:
            result.lost += 1
            result.problems.append(f"the exchange has {cid} ({status}), the bot does not know it")
        elif mine[0] != status or abs(mine[1] - filled) > 1e-9:
            result.problems.append(f"{cid}: the bot says {mine[0]} {mine[1]:g}, the exchange {status} {filled:g}")
    for cid, (status, _filled) in bot.orders.items():
        if cid in theirs:
            continue
        if status == "pending":
            result.pending += 1
        elif status in AT_THE_EXCHANGE:
            result.lost += 1
            result.problems.append(f"the bot has {cid} as {status}, the exchange never took it")
    booked = Counter(fill_id for fill_id, _cid in bot.fills)
    twice = [fill_id for fill_id, count in booked.items() if count > 1]
    result.duplicated += len(twice)
    result.problems += [f"fill {fill_id} booked twice" for fill_id in twice]
    exchange_fills = {fill_id for fill_id, _cid in exchange.fills}
    extra, missing = set(booked) - exchange_fills, exchange_fills - set(booked)
    if extra:
        result.problems.append(f"fills the exchange does not have: {sorted(extra)}")
    if missing:
        result.problems.append(f"fills not booked: {sorted(missing)}")
    position = bot.positions.get(exchange.symbol, 0.0)
    if abs(position - exchange.balance) > 1e-9:
        result.problems.append(f"position {position:g} {exchange.symbol}, balance {exchange.balance:g}")
    return result


def parse_histograms(text: str) -> dict[str, dict[str, tuple[float, float]]]:
    """``{"detection"|"recovery": {failure class: (mean seconds, count)}}`` from a Prometheus exposition; the
    histograms that are absent are left out (an empty dict when none is there)."""
    found: dict[str, dict[str, tuple[float, float]]] = {}
    wanted = {metric: label for label, metric in MTTR_HISTOGRAMS.items()}
    for family in text_string_to_metric_families(text):
        label = wanted.get(family.name)
        if label is None or family.type != "histogram":
            continue
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for sample in family.samples:
            cls = sample.labels.get("failure_class", "")
            if sample.name.endswith("_sum"):
                sums[cls] = sample.value
            elif sample.name.endswith("_count"):
                counts[cls] = sample.value
        found[label] = {cls: (sums.get(cls, 0.0) / n, n) for cls, n in counts.items() if n > 0}
    return found
