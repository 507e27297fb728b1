"""The runtime's state file: one SQLite database per bot.

Why sqlite3 and not sqlmodel: this store sits on the hot path of replays and backtests, where a candle
costs microseconds. Writes are *staged* in memory and flushed by ``commit()`` in one transaction with one
``executemany`` per table, which an ORM session (an object and an identity-map entry per row) would make
several times slower; the schema is small and fixed, so plain SQL stays readable. WAL mode lets
``slsbot report`` and the HTTP server read while the loop writes; ``synchronous=NORMAL`` keeps every
committed transaction through a process crash (only a power loss could drop the last ones).

What a commit guarantees is the caller's choice when it opens the store (``Durability``): a runtime's store
writes every ``commit()`` (the loop commits its intents before it sends them, and its state every candle or
batch of candles); a backtest's store writes nothing at all: everything the loop stages stays in memory, and the
backtest reads its results (the fills and the equity curve) from there (``staged_fills``, ``staged_equity``).

What is stored: orders (client order id is the key, creation order kept), fills (fill id is the key, so a
fill is stored once), positions with their trade statistics, the equity curve (one row per processed
candle; the older rows thinned once ``retain_equity`` was called, see ``equity_retention``), the cursor (last
processed candle per symbol), the risk manager's snapshot and every rejection or reduction it decided
(``risk_decisions``), free-form runtime metadata, and the paper exchange's own book in ``paper_*`` tables.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from slsbot_runtime.domain.errors import StateError
from slsbot_runtime.domain.types import Balance, Fill, Order
from slsbot_runtime.persistence.equity_retention import EquityRetentionPolicy, EquityThinner
from slsbot_runtime.persistence.schema import (
    DDL,
    FILL_FIELDS,
    ORDER_FIELDS,
    RISK_DECISION_FIELDS,
    SCHEMA_VERSION,
    fill_from_row,
    fill_row,
    order_from_row,
    order_row,
    upsert_sql,
)


class Durability(StrEnum):
    """What ``StateStore.commit`` guarantees, chosen when the store is opened."""

    #: Every ``commit()`` writes what is staged in one transaction before it returns: after a process crash the
    #: file holds the last commit whole and nothing of a later one. What a runtime needs for exactly-once: its
    #: intents are on disk before they are sent, its fills and cursor before the next candle is acted on.
    EVERY_COMMIT = "everyCommit"
    #: Nothing is ever written: ``commit()`` and ``flush()`` leave everything staged in memory for the store's life,
    #: and reads see the file as it was opened. A crash or ``close()`` loses all of it. For runs whose state is thrown
    #: away and rebuilt by running again: a backtest reads its fills and equity curve from memory (``staged_fills``,
    #: ``staged_equity``) instead of writing its run to SQLite only to read it back.
    NONE = "none"


@dataclass(slots=True)
class PositionRow:
    """A position and the track record of the trades closed on it."""

    symbol: str
    quantity: float = 0.0
    average_price: float = 0.0
    realized_pnl: float = 0.0
    wins: int = 0
    losses: int = 0
    gross_profit: float = 0.0
    gross_loss: float = 0.0


@dataclass(frozen=True, slots=True)
class StoredRiskDecision:
    """A risk decision as the state file keeps it: ``rule`` and ``message`` are the first event's, ``events``
    every (rule, message) the decision named."""

    ts: int
    symbol: str
    side: str
    is_entry: bool
    action: str
    rule: str
    message: str
    requested_quantity: float | None
    quantity: float
    events: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: int
    symbol: str
    equity: float
    cash: float


class BookChangesLike(Protocol):
    """What the paper exchange hands over to be stored (``exchange.base.BookChanges``)."""

    orders: list[Order]
    eligible_ts: dict[str, int]
    fills: list[Fill]
    balances: list[Balance]
    clock_ms: int


@dataclass(slots=True)
class StoredPaperBook:
    orders: list[Order]
    eligible_ts: dict[str, int]
    fills: list[Fill]
    balances: list[Balance]
    clock_ms: int


_ORDER_UPSERT = upsert_sql("orders", ORDER_FIELDS, "client_order_id")
_PAPER_ORDER_UPSERT = upsert_sql("paper_orders", (*ORDER_FIELDS, "eligible_ts"), "client_order_id")
_FILL_INSERT = f"INSERT OR IGNORE INTO fills ({', '.join(FILL_FIELDS)}) VALUES ({', '.join('?' * len(FILL_FIELDS))})"
_PAPER_FILL_INSERT = _FILL_INSERT.replace("INTO fills", "INTO paper_fills")
_RISK_DECISION_INSERT = (
    f"INSERT INTO risk_decisions ({', '.join(RISK_DECISION_FIELDS)}) "
    f"VALUES ({', '.join('?' * len(RISK_DECISION_FIELDS))})"
)
_POSITION_UPSERT = upsert_sql(
    "positions",
    ("symbol", "quantity", "average_price", "realized_pnl", "wins", "losses", "gross_profit", "gross_loss"),
    "symbol",
)


#: ``json.dumps(value, sort_keys=True)`` builds this encoder on every call (the risk snapshot: every commit).
_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def _json(value: Any) -> str:
    """``json.dumps(value)``, with the numbers written every commit (cash, counters, clocks) done directly."""
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)  # what json.dumps writes for them
    return json.dumps(value)


_EQUITY_INSERT = "INSERT OR REPLACE INTO equity (ts, symbol, equity, cash) VALUES (?, ?, ?, ?)"
#: Equity rows (one per candle: the bulk of every write) go in statements of this many rows, the widest first: the
#: per-statement work is shared by that many rows (a commit holds the rows of every candle since the last one; 128
#: rows bind 512 variables, under SQLite's limit of 999 before 3.32).
EQUITY_ROWS_PER_STATEMENT = (128, 16, 1)
_EQUITY_INSERTS = {
    rows: _EQUITY_INSERT.replace("(?, ?, ?, ?)", ", ".join(["(?, ?, ?, ?)"] * rows))
    for rows in EQUITY_ROWS_PER_STATEMENT
}


def _write_equity(db: sqlite3.Connection, values: list[Any]) -> None:
    """Insert the staged equity rows (four values each, flat) in order: the same rows, rowids and replacements
    as one statement per row."""
    start = 0
    for rows in EQUITY_ROWS_PER_STATEMENT:
        width = 4 * rows
        end = start + (len(values) - start) // width * width
        if end > start:
            db.executemany(_EQUITY_INSERTS[rows], [values[i : i + width] for i in range(start, end, width)])
        start = end


class StateStore:
    """Staged writes written by ``commit()`` or ``flush()`` in one transaction (with ``Durability.NONE``, never: they
    stay staged, ``staged_fills`` and ``staged_equity`` read them); reads straight from the file."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        path: str,
        readonly: bool,
        durability: Durability = Durability.EVERY_COMMIT,
    ) -> None:
        self._db = connection
        self.path = path
        self.readonly = readonly
        self._durability = durability
        #: Whether ``commit()`` writes (``Durability.EVERY_COMMIT``), as a plain attribute: asked at every commit.
        self.writes_commits = durability is Durability.EVERY_COMMIT
        #: Whether ``flush()`` writes: every durability but ``Durability.NONE``.
        self.writes = durability is not Durability.NONE
        #: Orders staged as themselves, their rows built by the commit that writes them: whoever changes an order stages
        #: it again (``OrderManager``: three times in an order's life), so the row of its state at the commit is the
        #: row of its last staging, built once instead of at every staging.
        self._orders: dict[str, Order] = {}
        self._fills: list[tuple[Any, ...]] = []
        self._positions: dict[str, tuple[Any, ...]] = {}
        self._equity: list[Any] = []  # ts, symbol, equity, cash of each staged candle, one after the other
        self._cursor: dict[str, int] = {}
        self._risk: tuple[int, str] | None = None
        self._risk_decisions: list[tuple[Any, ...]] = []
        self._meta: dict[str, str] = {}
        self._paper: list[BookChangesLike] = []
        # What this store's last commits wrote to the one-row-per-key tables: a value staged again unchanged
        # is not written again (the loop restages cash, counters and the risk snapshot at every commit, two
        # per order, and most of them have not moved since the last one). A state file has one writer, the
        # runtime that owns it, so what it wrote last is what the file holds.
        self._written_meta: dict[str, str] = {}
        self._written_risk: tuple[int, str] | None = None
        self._thinner: EquityThinner | None = None  # None: every equity row is kept

    @property
    def durability(self) -> Durability:
        """What a ``commit()`` guarantees, chosen when the store was opened."""
        return self._durability

    # -- opening ---------------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path, *, readonly: bool = False, durability: Durability = Durability.EVERY_COMMIT
    ) -> StateStore:
        """Open (and, unless ``readonly``, create) the state file at ``path``; ``:memory:`` for none. ``durability``
        says what a ``commit()`` writes (``Durability``): every one, as a runtime needs, unless the caller (a
        backtest) asks for ``Durability.NONE``."""
        text = str(path)
        if durability not in set(Durability):
            raise ValueError(f"durability: {durability!r} is not one of {', '.join(Durability)} (Durability)")
        try:
            if readonly:
                if text == ":memory:" or not Path(text).is_file():
                    raise StateError(f"state: {text} does not exist; pass the --state file a runtime wrote")
                connection = sqlite3.connect(
                    f"{Path(text).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
            else:
                if text != ":memory:":
                    Path(text).parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(text, check_same_thread=False, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=5000")
            store = cls(connection, path=text, readonly=readonly, durability=Durability(durability))
            store._check_schema()
        except sqlite3.Error as error:
            raise StateError(f"state: cannot open {text}: {error}") from error
        return store

    def _check_schema(self) -> None:
        if not self.readonly:
            self._db.executescript("BEGIN;" + DDL + "COMMIT;")
        try:
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError as error:
            raise StateError(f"state: {self.path} is not a slsbot state file ({error})") from error
        if row is None:
            if self.readonly:
                raise StateError(f"state: {self.path} has no schema version; it was never written by a runtime")
            self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise StateError(
                f"state: {self.path} has schema version {row[0]}, newer than this runtime's "
                f"{SCHEMA_VERSION}; run a newer slsbot"
            )
        elif row[0] < SCHEMA_VERSION and not self.readonly:
            # the DDL above already added the newer tables: the migrations are additive
            self._db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self._db.close()

    def retain_equity(self, policy: EquityRetentionPolicy | None) -> None:
        """Thin the equity curve from now on as ``policy`` says (None: keep every row, as backtests do). Where an
        earlier run of this file left the thinning (its bucket, how far it went) is taken from ``meta``."""
        self._thinner = None if policy is None else EquityThinner.from_meta(policy, self.load_meta())

    # -- staging -------------------------------------------------------------------------------------------

    def stage_order(self, order: Order) -> None:
        """Write ``order`` with the next commit, as it is then (it is staged again whenever it changes)."""
        self._orders[order.client_order_id] = order

    def stage_fill(self, fill: Fill) -> None:
        self._fills.append(fill_row(fill))

    def stage_position(self, row: PositionRow) -> None:
        self._positions[row.symbol] = (
            row.symbol,
            row.quantity,
            row.average_price,
            row.realized_pnl,
            row.wins,
            row.losses,
            row.gross_profit,
            row.gross_loss,
        )

    def stage_equity(self, ts: int, symbol: str, equity: float, cash: float) -> None:
        self._equity += (ts, symbol, equity, cash)

    def stage_cursor(self, symbol: str, ts: int) -> None:
        self._cursor[symbol] = ts

    def stage_candle(self, ts: int, symbol: str, equity: float, cash: float) -> None:
        """``stage_equity`` and ``stage_cursor`` of a processed candle, in one call (the loop's, every candle)."""
        self._equity += (ts, symbol, equity, cash)
        self._cursor[symbol] = ts

    def stage_risk(self, ts: int, snapshot: dict[str, Any]) -> None:
        self.stage_risk_json(ts, _SORTED_JSON.encode(snapshot))

    def stage_risk_json(self, ts: int, text: str) -> None:
        """The risk snapshot already as ``json.dumps(snapshot, sort_keys=True)`` (``RiskManager.snapshot_json``)."""
        risk = (ts, text)
        self._risk = None if risk == self._written_risk else risk

    def stage_risk_decision(
        self,
        *,
        ts: int,
        symbol: str,
        side: str,
        is_entry: bool,
        action: str,
        requested_quantity: float | None,
        quantity: float,
        events: Sequence[tuple[str, str]],
    ) -> None:
        """One risk decision (a rejection or a reduction) and the (rule, message) of each event it named."""
        rule, message = events[0] if events else ("", "")
        encoded = json.dumps([{"rule": str(r), "message": m} for r, m in events])
        self._risk_decisions.append(
            (ts, symbol, side, int(is_entry), action, str(rule), message, requested_quantity, quantity, encoded)
        )

    def stage_meta(self, key: str, value: Any) -> None:
        text = _json(value)
        if text == self._written_meta.get(key):
            self._meta.pop(key, None)  # what the file holds already (and no other value is to replace it)
        else:
            self._meta[key] = text

    def stage_paper_book(self, changes: BookChangesLike) -> None:
        self._paper.append(changes)
        self.stage_meta("paper_clock_ms", changes.clock_ms)  # the last book staged sets the clock

    @property
    def has_staged(self) -> bool:
        return bool(
            self._orders
            or self._fills
            or self._positions
            or self._equity
            or self._cursor
            or self._risk
            or self._risk_decisions
            or self._meta
            or self._paper
        )

    def commit(self) -> None:
        """Write everything staged in one transaction (all of it or, on a crash, none of it); with
        ``Durability.NONE``, nothing."""
        if self.writes_commits:
            self.flush()

    def flush(self) -> None:
        """Write everything staged in one transaction now, even if commits do not write (all of it or, on a crash, none
        of it); with ``Durability.NONE``, nothing: it stays staged. Raises StateError, with everything still staged,
        when the file cannot be written."""
        if not self.writes or not self.has_staged:
            return
        if self.readonly:
            raise StateError(f"state: {self.path} is open read-only")
        db = self._db
        thinner = self._thinner
        thinned = thinner.progress if thinner is not None else None
        try:
            db.execute("BEGIN IMMEDIATE")
            if self._orders:
                db.executemany(_ORDER_UPSERT, [order_row(order) for order in self._orders.values()])
            if self._fills:
                db.executemany(_FILL_INSERT, self._fills)
            if self._positions:
                db.executemany(_POSITION_UPSERT, self._positions.values())
            if self._equity:
                _write_equity(db, self._equity)
                if thinner is not None and thinner.due(self._equity[-4]):  # the newest row's ts: rows come in order
                    thinner.thin(db, self._equity[-4])
            if self._cursor:
                db.executemany("INSERT OR REPLACE INTO cursor (symbol, ts) VALUES (?, ?)", self._cursor.items())
            if self._risk is not None:
                db.execute("INSERT OR REPLACE INTO risk (id, ts, snapshot) VALUES (1, ?, ?)", self._risk)
            if self._risk_decisions:
                db.executemany(_RISK_DECISION_INSERT, self._risk_decisions)
            if self._meta:
                db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", self._meta.items())
            for changes in self._paper:
                self._write_paper_book(changes)
            db.execute("COMMIT")
        except sqlite3.Error as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if thinner is not None and thinned is not None:
                thinner.progress = thinned
            raise StateError(f"state: cannot write {self.path}: {error}") from error
        self._written_meta.update(self._meta)
        if self._risk is not None:
            self._written_risk = self._risk
        self._orders = {}
        self._fills = []
        self._positions = {}
        self._equity = []
        self._cursor = {}
        self._risk = None
        self._risk_decisions = []
        self._meta = {}
        self._paper = []

    def _write_paper_book(self, changes: BookChangesLike) -> None:
        db = self._db
        if changes.orders:
            db.executemany(
                _PAPER_ORDER_UPSERT,
                [(*order_row(o), changes.eligible_ts[o.client_order_id]) for o in changes.orders],
            )
        if changes.fills:
            db.executemany(_PAPER_FILL_INSERT, [fill_row(f) for f in changes.fills])
        if changes.balances:
            db.executemany(
                "INSERT OR REPLACE INTO paper_balances (currency, total) VALUES (?, ?)",
                [(b.currency, b.total) for b in changes.balances],
            )

    # -- what a store that never writes keeps (Durability.NONE) -------------------------------------------------

    def staged_fills(self) -> list[Fill]:
        """The fills staged and not written, as ``load_fills`` would read them once written: in the order staged, a
        fill id once (the first staging; the table ignores a fill it holds)."""
        rows: dict[str, tuple[Any, ...]] = {}
        for row in self._fills:
            rows.setdefault(row[0], row)
        return [fill_from_row(row) for row in rows.values()]

    def staged_equity(self) -> tuple[list[int], list[float]]:
        """(open times, equities) of the equity rows staged and not written, as ``load_equity`` would read them once
        written: in the order staged, a (ts, symbol) staged again replacing its earlier row, at the end (the table's
        ``INSERT OR REPLACE``). The loop never stages a candle twice (its open times rise per symbol); whoever else
        does gets the table's answer."""
        values = self._equity
        times, symbols, equities = values[0::4], values[1::4], values[2::4]
        keys = list(zip(times, symbols, strict=True))
        if len(set(keys)) == len(keys):
            return times, equities
        latest: dict[tuple[int, str], float] = {}
        for key, equity in zip(keys, equities, strict=True):
            latest.pop(key, None)  # a replaced row goes to the end, as its new rowid does
            latest[key] = equity
        return [ts for ts, _ in latest], list(latest.values())

    # -- reading --------------------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            raise StateError(f"state: cannot read {self.path}: {error}") from error

    def load_orders(self, *, newest_first: bool = False, limit: int | None = None) -> list[Order]:
        """Orders in creation order (or newest first)."""
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {', '.join(ORDER_FIELDS)} FROM orders ORDER BY rowid {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [order_from_row(row) for row in self._rows(sql)]

    def load_fills(self) -> list[Fill]:
        """Fills in the order they were applied."""
        return [fill_from_row(r) for r in self._rows(f"SELECT {', '.join(FILL_FIELDS)} FROM fills ORDER BY rowid")]

    def load_positions(self) -> dict[str, PositionRow]:
        rows = self._rows(
            "SELECT symbol, quantity, average_price, realized_pnl, wins, losses, gross_profit, "
            "gross_loss FROM positions ORDER BY symbol"
        )
        return {row[0]: PositionRow(*row) for row in rows}

    def load_equity(self) -> list[EquityPoint]:
        return [EquityPoint(*row) for row in self._rows("SELECT ts, symbol, equity, cash FROM equity ORDER BY rowid")]

    def load_equity_after(self, ts: int) -> list[EquityPoint]:
        """The equity rows of the candles after ``ts``, and of the last candle at or before it (the period before
        them), in the order written."""
        sql = (
            "SELECT ts, symbol, equity, cash FROM equity "
            "WHERE ts >= coalesce((SELECT max(ts) FROM equity WHERE ts <= ?), ?) ORDER BY rowid"
        )
        return [EquityPoint(*row) for row in self._rows(sql, (ts, ts))]

    def equity_watermark(self) -> tuple[float | None, float]:
        """(peak, deepest drawdown below the running peak in %) of the stored equity rows, in the order written;
        (None, 0.0) without rows. For a state file from before the loop kept these figures in ``meta``."""
        rows = self._rows(
            "SELECT max(equity), max(CASE WHEN peak > 0 THEN max(peak - equity, 0) / peak * 100.0 ELSE 0.0 END) "
            "FROM (SELECT equity, max(equity) OVER (ORDER BY rowid) AS peak FROM equity)"
        )
        peak, deepest = rows[0] if rows else (None, None)
        return (None if peak is None else float(peak)), float(deepest or 0.0)

    def load_cursor(self) -> dict[str, int]:
        return dict(self._rows("SELECT symbol, ts FROM cursor"))

    def load_risk(self) -> dict[str, Any] | None:
        rows = self._rows("SELECT snapshot FROM risk WHERE id = 1")
        return json.loads(rows[0][0]) if rows else None

    def load_risk_decisions(self, *, limit: int | None = None) -> list[StoredRiskDecision]:
        """The recorded risk decisions, oldest first (the newest ``limit`` of them when given). A file from
        before schema version 2, opened read-only, has none."""
        if not self._rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'risk_decisions'"):
            return []
        sql = f"SELECT {', '.join(RISK_DECISION_FIELDS)} FROM risk_decisions ORDER BY id"
        if limit is not None:
            sql = (
                f"SELECT {', '.join(RISK_DECISION_FIELDS)} FROM (SELECT id, {', '.join(RISK_DECISION_FIELDS)} "
                f"FROM risk_decisions ORDER BY id DESC LIMIT {max(int(limit), 0)}) ORDER BY id"
            )
        decisions = []
        for ts, symbol, side, entry, action, rule, message, requested, quantity, events in self._rows(sql):
            decisions.append(
                StoredRiskDecision(
                    ts, symbol, side, bool(entry), action, rule, message, requested, quantity, json.loads(events)
                )
            )
        return decisions

    def load_refused_entries(self) -> dict[str, tuple[int, int, list[tuple[str, str]]]]:
        """Per symbol, the entries the risk manager refused since the symbol's last entry order: (open time of the
        first refused candle, how many, the (rule, message) of each event of the latest). Symbols whose last entry
        was taken are left out. For a restarted loop's ``/status``; a file without ``risk_decisions`` has none."""
        if not self._rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'risk_decisions'"):
            return {}
        rows = self._rows(
            "SELECT d.symbol, min(d.ts), count(*), max(d.id) FROM risk_decisions d "
            "WHERE d.is_entry = 1 AND d.action = 'rejected' AND d.ts >= coalesce("
            "(SELECT max(o.created_ts) FROM orders o WHERE o.symbol = d.symbol AND o.reason LIKE 'enter %'), 0) "
            "GROUP BY d.symbol ORDER BY d.symbol"
        )
        refused = {}
        for symbol, first_ts, count, last_id in rows:
            [(events,)] = self._rows("SELECT events FROM risk_decisions WHERE id = ?", (last_id,))
            refused[symbol] = (first_ts, count, [(e["rule"], e["message"]) for e in json.loads(events)])
        return refused

    def load_meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._rows("SELECT key, value FROM meta")}

    def load_paper_book(self) -> StoredPaperBook | None:
        """The paper exchange's stored book, or None if none was ever stored."""
        meta = self.load_meta()
        if "paper_clock_ms" not in meta:
            return None
        rows = self._rows(f"SELECT {', '.join(ORDER_FIELDS)}, eligible_ts FROM paper_orders ORDER BY rowid")
        fills = self._rows(f"SELECT {', '.join(FILL_FIELDS)} FROM paper_fills ORDER BY rowid")
        balances = self._rows("SELECT currency, total FROM paper_balances ORDER BY rowid")
        return StoredPaperBook(
            orders=[order_from_row(row) for row in rows],
            eligible_ts={row[0]: row[13] for row in rows},
            fills=[fill_from_row(row) for row in fills],
            balances=[Balance(currency, total, total) for currency, total in balances],
            clock_ms=int(meta["paper_clock_ms"]),
        )
