"""``KeyRotation``: carries out ``domain.key_rotation``'s steps on the loop thread, between candles.

Every ``rotation.checkEvery`` it keeps the Vault token alive and reads the secret's metadata (never the secret);
a newer version (and an open window, when one is set) starts a rotation:

1. new entries stop: the trading guard's ``safe`` mode, held in this process only (``hold_entries``);
2. it waits, candle after candle, until no order is in flight (at most ``settleTimeout``);
3. it reads the new version and switches the exchange's key in place (``RotatableKeys.use_credentials``: same
   client, same time offset and nonce), then checks it with an authenticated read-only call (the balances);
4. the check passes: it reconciles with the exchange and gives back the mode that was in force (``succeeded``);
   it is refused: the old key again, the mode given back, the version not tried again (``rolled_back``).

Since it runs on the loop thread, no order is ever signed while the key changes. The rotation's state and last
result are in ``/status`` (``health.credentials``) and in the metrics (rotations by outcome, the pause).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from slsbot.api.account import ROTATION_HOLD_REASON, VaultRotation
from slsbot_runtime.domain.errors import AuthenticationError, ExchangeError, StateError
from slsbot_runtime.domain.key_rotation import (
    RotationAction,
    RotationObserved,
    RotationOutcome,
    RotationPhase,
    RotationStep,
    next_rotation_step,
    window_is_open,
)
from slsbot_runtime.domain.strategy_log import StrategyLog
from slsbot_runtime.domain.trading_mode import TradingModeState
from slsbot_runtime.engine.trading_guard import TradingModeGuard
from slsbot_runtime.exchange.base import RotatableKeys
from slsbot_runtime.exchange.credentials import ExchangeCredentials
from slsbot_runtime.execution.order_manager import OrderManager
from slsbot_runtime.execution.reconcile import reconcile
from slsbot_runtime.metrics import RuntimeMetrics

HOLD_REASON = ROTATION_HOLD_REASON  # the control plane's healing knows it: a hold is no fault


class SecretVersionLike(Protocol):
    credentials: ExchangeCredentials
    version: int


class CredentialSource(Protocol):
    """Where the keys come from (``exchange.vault.VaultCredentialSource``)."""

    data_path: str

    def keep_alive(self) -> None: ...

    def current_version(self) -> int: ...

    def read(self, version: int | None = None) -> SecretVersionLike: ...


@dataclass(frozen=True, slots=True)
class RotationResult:
    at: datetime
    from_version: int
    to_version: int
    outcome: RotationOutcome
    reason: str
    pause_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "from_version": self.from_version,
            "to_version": self.to_version,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "pause_seconds": round(self.pause_s, 3),
        }


class KeyRotation:
    def __init__(
        self,
        *,
        source: CredentialSource,
        exchange: RotatableKeys,
        in_use: SecretVersionLike,
        settings: VaultRotation,
        orders: OrderManager,
        modes: TradingModeGuard,
        on_mismatch: Callable[[str], None],
        log: StrategyLog,
        metrics: RuntimeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.exchange = exchange
        self.settings = settings
        self.orders = orders
        self.modes = modes
        self.on_mismatch = on_mismatch
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.wall = wall
        self.in_use = in_use
        self.phase = RotationPhase.IDLE
        self.newest: int | None = in_use.version
        self.refused: int | None = None
        self.last: RotationResult | None = None
        self.last_error: str | None = None
        self.checked_at: float | None = None  # wall clock of the last metadata read
        self._next_check = clock() + settings.check_every_s
        self._phase_since = clock()
        self._paused_at: float | None = None
        self._held: TradingModeState | None = None
        self._candidate: SecretVersionLike | None = None  # the new version, once read
        self._switched = False
        if metrics is not None:
            metrics.credential_version.set(in_use.version)
        self._shown = self._status_now()  # what /status reads: replaced whole, after each tick

    # -- the loop thread ------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One look: read the metadata when it is due (idle), else carry the rotation in progress one step on."""
        now = self.clock()
        if self.phase in (RotationPhase.IDLE, RotationPhase.WAITING_WINDOW):
            if now < self._next_check:
                return
            self._next_check = now + self.settings.check_every_s
            self._look()
        for _ in range(3):  # a switch is checked at once, and a passed check resumes at once
            check_ok = self._attempt() if self.phase is RotationPhase.CHECKING else None
            step = next_rotation_step(self._observed(check_ok))
            if not self._do(step):
                break
        self._shown = self._status_now()

    def _look(self) -> None:
        try:
            self.source.keep_alive()
            self.newest = self.source.current_version()
            self.last_error = None
        except ExchangeError as error:  # Vault unreachable or refusing: the key in use stays, looked at again later
            shown = f"{type(error).__name__}: {error}"
            if shown != self.last_error:
                self.log.warning("credentials: could not read the secret's metadata: %s", shown)
            self.last_error = shown
        self.checked_at = self.wall()

    def _observed(self, check_ok: bool | None) -> RotationObserved:
        window = self.settings.window
        return RotationObserved(
            phase=self.phase,
            version_in_use=self.in_use.version,
            newest_version=self.newest,
            refused_version=self.refused,
            in_flight=len(self.orders.unfinished()),
            elapsed_s=self.clock() - self._phase_since,
            settle_timeout_s=self.settings.settle_timeout_s,
            window_open=window_is_open(window, self.settings.window_length_s, datetime.fromtimestamp(self.wall(), UTC)),
            check_ok=check_ok,
        )

    def _do(self, step: RotationStep) -> bool:
        """Carry out ``step``; True when the next step is to be decided at once."""
        action = step.action
        if action is RotationAction.NOTHING:
            self._enter(step.phase)
            return False
        if action is RotationAction.WAIT_FOR_WINDOW:
            if self.phase is not RotationPhase.WAITING_WINDOW:
                self.log.info("credentials: %s (%s)", step.reason, self.settings.window)
            self._enter(step.phase)
            return False
        if action is RotationAction.STOP_ENTRIES:
            self.log.info("credentials: %s", step.reason)
            self._paused_at = self.clock()
            self._held = self.modes.hold_entries(HOLD_REASON)
            self._enter(step.phase)
            return True
        if action is RotationAction.SWITCH:
            self._enter(step.phase)
            return True
        if action is RotationAction.RESUME:
            self._resume(step)
        else:
            self._roll_back(step)
        return False

    def _enter(self, phase: RotationPhase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self._phase_since = self.clock()

    def _attempt(self) -> bool | None:
        """Checking: read the new version (once) and use it, then the read-only call. True: the exchange took the
        key; False: the version or the key is refused; None: it could not be made now."""
        try:
            if self._candidate is None:
                self._candidate = self.source.read(self.newest)
            if not self._switched:
                self.exchange.use_credentials(self._candidate.credentials)
                self._switched = True
            self.exchange.fetch_balances()
        except AuthenticationError as error:
            self.last_error = f"{type(error).__name__}: {error}"
            return False
        except ExchangeError as error:
            self.last_error = f"{type(error).__name__}: {error}"
            self.log.warning("credentials: the new key could not be checked now: %s", self.last_error)
            return None
        return True

    def _resume(self, step: RotationStep) -> None:
        candidate = self._candidate
        assert candidate is not None
        before = self.in_use.version
        problem: str | None = None
        try:
            reconcile(self.orders)
        except AuthenticationError as error:  # the key reads balances but may not read orders or trades
            self.last_error = f"{type(error).__name__}: {error}"
            refused = "the new key was refused while reconciling (it lacks a permission the bot needs)"
            self._roll_back(RotationStep(step.action, step.phase, refused, refuse_version=True))
            return
        except StateError as error:
            problem = str(error)
        except ExchangeError as error:  # the books are checked again with the next candle's refresh
            self.log.warning("credentials: reconcile after the switch failed, trading on: %s", error)
        self.in_use = candidate
        self.last_error = None
        self._finish(before, candidate.version, RotationOutcome.SUCCEEDED, step.reason)
        if problem is not None:
            self.on_mismatch(problem)  # the runtime's own safe mode, after the hold is given back

    def _roll_back(self, step: RotationStep) -> None:
        to = self.newest or self.in_use.version
        reason = step.reason + (f": {self.last_error}" if self.last_error else "")
        if self._switched:
            self.exchange.use_credentials(self.in_use.credentials)
        if step.refuse_version:
            self.refused = to
        self._finish(self.in_use.version, to, RotationOutcome.ROLLED_BACK, reason)

    def _finish(self, before: int, to: int, outcome: RotationOutcome, reason: str) -> None:
        pause = self.clock() - (self._paused_at if self._paused_at is not None else self.clock())
        self.modes.release_entries(self._held)
        self._held, self._candidate, self._switched, self._paused_at = None, None, False, None
        self.last = RotationResult(datetime.fromtimestamp(self.wall(), UTC), before, to, outcome, reason[:500], pause)
        self._enter(RotationPhase.IDLE)
        self._next_check = self.clock() + self.settings.check_every_s
        if outcome is RotationOutcome.SUCCEEDED:
            self.log.info("credentials: now on version %d (was %d); entries stood still %.2fs", to, before, pause)
        else:
            self.log.error(
                "credentials: rotation to version %d rolled back, version %d stays in use: %s", to, before, reason
            )
        if self.metrics is not None:
            self.metrics.credential_rotations.labels(str(outcome)).inc()
            self.metrics.credential_rotation_pause.observe(pause)
            self.metrics.credential_version.set(self.in_use.version)

    # -- /status (any thread) -------------------------------------------------------------------------------------

    def status_json(self) -> dict[str, Any]:
        """``health.credentials``: the source, the version in use and the newest seen, the phase, the last result
        (as of the last tick: never half a step)."""
        return dict(self._shown)

    def _status_now(self) -> dict[str, Any]:
        last = self.last
        return {
            "source": "vault",
            "path": self.source.data_path,
            "version": self.in_use.version,
            "newest_version": self.newest,
            "phase": str(self.phase),
            "checked_at": None if self.checked_at is None else datetime.fromtimestamp(self.checked_at, UTC).isoformat(),
            "last_error": self.last_error,
            "last_rotation": None if last is None else last.to_json(),
        }
