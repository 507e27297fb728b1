"""The documents the ``slsbot up`` tests share: the paper account their Strategies trade (it names the RiskPolicy
``local-risk``, which each test writes with its own healing and incident settings) and the recorded candles their
replays read."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "data" / "market" / "binance-spot-1h-2024"

PAPER_ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: paper-binance}
spec:
  exchange: binance
  mode: paper
  paper: {startingBalance: 10000, quoteCurrency: USDT}
  riskPolicyRef: {name: local-risk}
"""
