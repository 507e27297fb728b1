"""``slsbot report --daily --kubernetes`` against the Kubernetes API emulator over HTTP, as its CronJob runs it: the
account, Strategies, RiskPolicy, Incidents and the receiver's Secret read from the API, the state file from
``--state-root``, the report posted to a real webhook receiver on 127.0.0.1; and ``--cronjob`` printing the CronJob for
the account's Strategies as they are on the cluster."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from tests.fakes.webhook_receiver import WebhookReceiver

from slsbot.adapters.kubernetes.client import KubernetesApi, load_client_configuration, resource_path
from slsbot.adapters.kubernetes.incidents import KubernetesIncidentStore
from slsbot.api.incident import IncidentSpec, IncidentStatus
from slsbot.domain.daily_report import day_bounds
from slsbot.domain.incidents import Incident
from slsbot.interfaces.cli import main
from slsbot.testing.kube_emulator import ClusterEmulator
from slsbot_runtime.domain.types import Fill, Side
from slsbot_runtime.persistence.store import StateStore

from .conftest import NAMESPACE

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 2)
START, _ = day_bounds(DAY)
H = 3_600_000
GROUP = ("slsbot.io", "v1alpha1")


def objects(url_secret: str) -> list[tuple[str, dict]]:
    strategy = {
        "accountRef": {"name": "main"},
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "ensemble": {"members": [{"name": "sma", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}}]},
        "marketData": {"source": "replay", "dataDir": "/data"},
    }
    return [
        (
            "riskpolicies",
            {
                "metadata": {"name": "risk"},
                "spec": {
                    "notifications": {
                        "receivers": [
                            {"name": "desk", "type": "slack", "urlSecretRef": {"name": url_secret, "key": "url"}}
                        ]
                    }
                },
            },
        ),
        (
            "tradingaccounts",
            {
                "metadata": {"name": "main"},
                "spec": {"exchange": "binance", "mode": "paper", "riskPolicyRef": {"name": "risk"}},
            },
        ),
        ("strategies", {"metadata": {"name": "btc-trend"}, "spec": strategy}),
        ("strategies", {"metadata": {"name": "other-account"}, "spec": {**strategy, "accountRef": {"name": "x"}}}),
    ]


def write_state(root: Path) -> None:
    store = StateStore.open(root / "btc-trend" / "state.db")
    store.stage_meta("starting_cash", 1000.0)
    store.stage_fill(Fill("f1", "o1", "BTC/USDT", Side.BUY, 1.0, 100.0, 0.0, "USDT", START + H))
    store.stage_fill(Fill("f2", "o2", "BTC/USDT", Side.SELL, 1.0, 90.0, 0.0, "USDT", START + 2 * H))
    for ts, equity in ((START + H, 1000.0), (START + 2 * H, 990.0)):
        store.stage_equity(ts, "BTC/USDT", equity, equity)
    store.commit()
    store.close()


async def test_the_cronjobs_command_reports_from_the_api_and_the_mounted_state(
    cluster: ClusterEmulator, kubeconfig: Path, tmp_path: Path, capsys
) -> None:
    api = KubernetesApi(load_client_configuration(kubeconfig=str(kubeconfig), context=None))
    with WebhookReceiver() as receiver:

        def scenario() -> None:
            for plural, body in objects("hooks"):
                kind = {"riskpolicies": "RiskPolicy", "tradingaccounts": "TradingAccount", "strategies": "Strategy"}
                body = {"apiVersion": "slsbot.io/v1alpha1", "kind": kind[plural], **body}
                body["metadata"]["namespace"] = NAMESPACE
                api.create(resource_path(*GROUP, plural, namespace=NAMESPACE), body)
            api.create(
                resource_path("", "v1", "secrets", namespace=NAMESPACE),
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "hooks", "namespace": NAMESPACE},
                    "data": {"url": base64.b64encode(receiver.url.encode()).decode()},
                },
            )
            KubernetesIncidentStore(api).save_incident(
                Incident(
                    id="drawdown-9f8e7d",
                    namespace=NAMESPACE,
                    spec=IncidentSpec(
                        cause="Drawdown:trading/btc-trend",
                        severity=2,
                        rule="Drawdown",
                        objects=["Strategy/btc-trend"],
                        runbook="runbooks/drawdown.md",
                    ),
                    status=IncidentStatus(opened_at=datetime(2026, 3, 2, 2, 0, tzinfo=UTC)),
                )
            )
            write_state(tmp_path / "state")
            code = main(
                [
                    "report",
                    "--daily",
                    "--kubernetes",
                    "--kubeconfig",
                    str(kubeconfig),
                    "--account",
                    f"{NAMESPACE}/main",
                    "--state-root",
                    str(tmp_path / "state"),
                    "--date",
                    DAY.isoformat(),
                    "--slack",
                ]
            )
            assert code == 0

        await asyncio.to_thread(scenario)
        out = capsys.readouterr().out
        assert "Daily report 2026-03-02: trading/main" in out
        assert "PnL: -10.00 (-1.00 %)" in out and "Win rate: 0.00 % of 1 closed trades" in out
        assert "Incidents: 1 opened, 0 resolved" in out
        [body] = receiver.bodies
        assert "*PnL:* -10.00 (-1.00 %)" in body["blocks"][1]["text"]["text"]

        def cronjob() -> dict:
            assert (
                main(
                    [
                        "report",
                        "--daily",
                        "--cronjob",
                        "ghcr.io/slsbot/slsbot:1",
                        "--kubeconfig",
                        str(kubeconfig),
                        "--account",
                        f"{NAMESPACE}/main",
                    ]
                )
                == 0
            )
            return yaml.safe_load(capsys.readouterr().out)

        manifest = await asyncio.to_thread(cronjob)
    assert manifest["metadata"]["name"] == "slsbot-report-main"
    assert manifest["metadata"]["ownerReferences"][0]["uid"]  # the account's, as the API server gave it
    assert manifest["spec"]["schedule"] == "5 0 * * *"
    volumes = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v] == [
        "slsbot-runtime-btc-trend"
    ]
