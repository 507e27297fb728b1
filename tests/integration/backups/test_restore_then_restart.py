"""A restored, older state file meets an exchange that moved on: ``slsbot restore`` puts back a snapshot taken before
the bot's last trades, the runtime starts against the (fake) exchange and reconciles before it trades.

What happens to orders the exchange knows but the restored state does not: the restart reconcile
(``execution/reconcile.py``) adopts every order whose client id carries this strategy's tag from the fills and open
orders the exchange has since the restored cursor, and books their fills once; the runtime then replays its candles
from the restored cursor, and an order it decides again gets the same client id (ids are derived from the decision),
which the state now knows: it is not sent again. The state ends equal to the exchange, whether one order or a whole
round trip was made after the backup. No client id is ever sent twice."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.test_secrets import RESTORE_RESTART_RESTIC_PASSWORD as RESTIC_PASSWORD  # noqa: E402
from tests.integration.runtime.test_live_runtime_fake_exchange import (  # noqa: E402
    WIRES,
    LiveRuntime,
    caught_up,
    clock,  # noqa: F401 - fixture
    fake,  # noqa: F401 - fixture
    posted_client_ids,
    recorded_klines,  # noqa: F401 - fixture
    start_runtime,  # noqa: F401 - fixture
    step,
    stored_orders,
    wait_for,
    write_config,
    write_credentials,
)

from slsbot.adapters.restic import ResticRepository  # noqa: E402
from slsbot.adapters.sqlite_snapshot import SqliteCopies  # noqa: E402
from slsbot.api.backup import BackupScheduleSpec, JobOutcome  # noqa: E402
from slsbot.services.backups import BackupService, BackupSource, restore_state  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.long,  # three runtime starts against the fake exchange and restic: about 40 s each case
    pytest.mark.skipif(shutil.which("restic") is None, reason="no restic binary: apt-get install restic"),
]


def trade_until(runtime: LiveRuntime, clock, fake, count: int) -> None:  # noqa: F811
    wire = WIRES["binance"]
    for _ in range(120):
        if len(posted_client_ids(fake, wire)) >= count:
            return
        step(runtime, clock)
    raise AssertionError(f"fewer than {count} orders within 120 candles")


def stop(runtime: LiveRuntime) -> None:
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.process.wait(timeout=60) == 0


@pytest.mark.parametrize("orders_after_backup", [1, 2])
def test_a_restored_older_state_reconciles_before_trading_and_sends_nothing_twice(
    orders_after_backup: int,
    fake,  # noqa: F811
    clock,  # noqa: F811
    start_runtime: Callable[..., LiveRuntime],  # noqa: F811
    tmp_path: Path,
) -> None:
    wire = WIRES["binance"]
    config = write_config(tmp_path, credentials=write_credentials(tmp_path / "credentials"))
    state = tmp_path / "trading" / "btc" / "state.db"
    state.parent.mkdir(parents=True)
    repository = ResticRepository(str(tmp_path / "repo"), SecretStr(RESTIC_PASSWORD), cache_dir=tmp_path / "cache")
    backups = BackupService(
        namespace="trading",
        schedule="hourly",
        spec=BackupScheduleSpec.model_validate({"repository": "x", "passwordSecretRef": {"name": "r", "key": "p"}}),
        repository=repository,
        databases=SqliteCopies(),
        sources=lambda: [BackupSource("state", "btc", state, account="acct")],
        work_dir=tmp_path / "work",
    )

    first = start_runtime(config, state, "first.log")
    wait_for(lambda: caught_up(first, clock), what="the first catch-up")
    trade_until(first, clock, fake, 2)
    stop(first)
    assert backups.run("backup").outcome == JobOutcome.SUCCEEDED
    at_backup = stored_orders(state)

    second = start_runtime(config, state, "second.log")
    wait_for(lambda: caught_up(second, clock), what="the second catch-up")
    trade_until(second, clock, fake, len(at_backup) + orders_after_backup)  # the bot trades on after the backup
    stop(second)
    assert len(stored_orders(state)) > len(at_backup)

    restored = restore_state(
        repository, SqliteCopies(), namespace="trading", strategy="btc", state_file=state, now=datetime.now(UTC)
    )
    assert stored_orders(state) == at_backup
    assert restored.kept_aside

    third = start_runtime(config, state, "third.log")
    wait_for(lambda: caught_up(third, clock), what="the restored runtime's catch-up")
    for _ in range(3):
        step(third, clock)
    status = third.status()
    posted = posted_client_ids(fake, wire)
    assert len(posted) == len(set(posted)), "a client order id reached the exchange twice"
    assert "reconciled after replaying" in third.log_text()
    assert status["trading_mode"] == "normal" and status["error"] is None
    theirs = {o.client_order_id: (o.status.lower(), pytest.approx(o.filled)) for o in fake.account.orders}
    assert stored_orders(state) == theirs, "the restored state does not hold every order the exchange knows"
    assert status["cash"] == pytest.approx(fake.account.balances["USDT"])
    stop(third)
