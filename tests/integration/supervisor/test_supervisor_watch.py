"""`slsbot up` watches its folder and applies changes as `kubectl apply` would, with real runtimes: an edited file
rolls its runtime out with the new config, an added file starts a new bot, a broken file is reported and leaves the
running bot as it was, a deleted file drains and stops its bot (its state file is retired). An object that is not
Ready is named in the log after the load, and its standing problem is one event, not one per pass. Started from
another working directory, the committed examples/local runs its bots (their dataDir is relative to the YAML)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.supervisor.manifests import DATA

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: paper-binance}
spec:
  exchange: binance
  mode: paper
  paper: {startingBalance: 10000, quoteCurrency: USDT}
"""
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: %(name)s}
spec:
  accountRef: {name: %(account)s}
  allocationPercent: 50  # two Strategies share the account
  symbols: [%(symbol)s]
  ensemble:
    members:
      - {name: sma, strategy: sma_cross, params: {fast: %(fast)d, slow: 15}}
  marketData: {source: replay, dataDir: %(data)s, secondsPerCandle: 0.05, warmupCandles: 20, loop: true}
  onDelete: {cancelOrders: true, flatten: true}
"""


def strategy(name: str, symbol: str, *, fast: int = 5, account: str = "paper-binance") -> str:
    return STRATEGY % {"name": name, "symbol": symbol, "fast": fast, "account": account, "data": DATA}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat_file = Path(f"/proc/{pid}/stat")
    return stat_file.exists() and stat_file.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def running(supervisor: Any, name: str, **expected: Any) -> Any:
    item = supervisor.strategies().get(name)
    if item is None or item["phase"] != "Running":
        return None
    return item if all(item[key] == value for key, value in expected.items()) else None


@pytest.mark.long  # in make test-long: about 17 s
def test_edits_additions_deletions_and_broken_files_apply_while_it_runs(tmp_path: Path, kit: Any) -> None:
    folder, state = tmp_path / "manifests", tmp_path / "state"
    folder.mkdir()
    (folder / "10-account.yaml").write_text(ACCOUNT)
    btc_file = folder / "30-btc.yaml"
    btc_file.write_text(strategy("btc-trend", "BTC/USDT"))
    (folder / "40-typo.yaml").write_text(strategy("typo", "BTC/USDT", account="paper-binanc"))
    supervisor = kit.start(folder, state, kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token))

    def log() -> str:
        return supervisor.log_path.read_text()

    try:
        kit.wait_for(
            lambda: (
                "Strategy default/typo is not ready (WaitingForDependency): spec.accountRef.name: "
                "TradingAccount 'paper-binanc' does not exist" in log()
            ),
            timeout=60,
            what="a warning naming the strategy that cannot start",
        )
        assert "Strategy default/btc-trend is not ready" not in log()  # starting is not a problem
        first = kit.wait_for(lambda: running(supervisor, "btc-trend"), timeout=120, interval=0.25, what="btc Running")

        # An edit rolls the runtime out with the new config.
        btc_file.write_text(strategy("btc-trend", "BTC/USDT", fast=7))
        rolled = kit.wait_for(
            lambda: (s := running(supervisor, "btc-trend", generation=2)) and s["pid"] != first["pid"] and s,
            timeout=120,
            interval=0.25,
            what="btc-trend rolled out at generation 2",
        )
        assert rolled["config_hash"] != first["config_hash"]
        config = yaml.safe_load((state / "default" / "btc-trend" / "runtime.yaml").read_text())
        assert config["ensemble"]["members"][0]["params"]["fast"] == 7
        assert "folder changed; applied: 1 changed" in log()

        # An added file starts a new bot.
        (folder / "31-eth.yaml").write_text(strategy("eth-trend", "ETH/USDT"))
        eth = kit.wait_for(lambda: running(supervisor, "eth-trend"), timeout=120, interval=0.25, what="eth Running")

        # A broken file is reported, and the bot it declares keeps running as it was.
        btc_file.write_text(strategy("btc-trend", "btc-usdt", fast=9))
        kit.wait_for(
            lambda: (
                f"refused: {btc_file}, document 1 (Strategy btc-trend): spec.symbols[0]: String should match" in log()
            ),
            timeout=30,
            what="the broken file reported",
        )
        assert "refused: 30-btc.yaml (its objects keep their last good spec)" in log()
        kit.wait_for(
            lambda: (s := running(supervisor, "btc-trend")) and s["trade_count"] > (rolled["trade_count"] or 0) and s,
            timeout=60,
            interval=0.5,
            what="btc-trend trading on",
        )
        kept = supervisor.strategies()["btc-trend"]
        assert (kept["generation"], kept["pid"], kept["config_hash"]) == (2, rolled["pid"], rolled["config_hash"])

        # A deleted file drains and stops its bot, and retires its state file.
        (folder / "31-eth.yaml").unlink()
        kit.wait_for(
            lambda: "eth-trend" not in supervisor.strategies(), timeout=120, interval=0.25, what="eth-trend gone"
        )
        kit.wait_for(lambda: not alive(eth["pid"]), timeout=30, what="eth-trend's runtime stopped")
        with supervisor.client() as client:
            eth_events = client.get("/api/v1/events", params={"name": "eth-trend"}).json()
            typo_events = client.get("/api/v1/events", params={"name": "typo"}).json()
        assert running(supervisor, "btc-trend", pid=rolled["pid"])  # the other bot was left alone
    finally:
        supervisor.stop()

    assert {"Draining", "Deleting"} <= {e["reason"] for e in eth_events}
    eth_folder = state / "default" / "eth-trend"
    assert not (eth_folder / "state.db").exists()
    assert [p for p in eth_folder.iterdir() if p.name.startswith("state.db.retired-")]
    # The strategy that never started: one event for its standing problem, however many passes saw it.
    assert [(e["reason"], e["count"]) for e in typo_events] == [("WaitingForDependency", 1)]


@pytest.mark.long
def test_the_local_examples_run_when_started_from_another_folder(tmp_path: Path, kit: Any) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    supervisor = kit.start(
        REPO / "examples" / "local",
        tmp_path / "state",
        kit.environment(SLSBOT_ADMIN_TOKEN=kit.operator_token),
        cwd=elsewhere,
    )
    try:
        both = kit.wait_for(
            lambda: (
                (s := supervisor.strategies())
                and all(item["phase"] == "Running" and item["restarts"] == 0 for item in s.values())
                and s
            ),
            timeout=120,
            interval=0.25,
            what="every example strategy Running",
        )
        # eth-trend's two models train in its runtime's training process and join the vote: the control plane
        # turns ModelsDegraded (missing until the first version) to False
        in_vote = kit.wait_for(
            lambda: next(
                (
                    c
                    for c in supervisor.strategies()["eth-trend"]["conditions"]
                    if c["type"] == "ModelsDegraded" and c["status"] == "False"
                ),
                None,
            ),
            timeout=150,
            interval=0.5,
            what="eth-trend's models in the vote",
        )
    finally:
        supervisor.stop()
    assert in_vote["reason"] == "ModelsInVote" and in_vote["message"] == "all 2 signal models vote"
    assert (tmp_path / "state" / "default" / "eth-trend" / "models" / "logit" / "v0001" / "model.skops").exists()
    assert set(both) == {"btc-trend", "btc-trend-candidate", "eth-trend"}
    config = yaml.safe_load((tmp_path / "state" / "default" / "btc-trend" / "runtime.yaml").read_text())
    assert config["marketData"]["dataDir"] == str(DATA)
