"""The evaluation example does what its comment says, and gives the results the docs report
(docs/concepts/evaluation.md quotes their fingerprint)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.results,
    pytest.mark.timeout(900),
]  # 17 candidates x 6 folds, ~4 min

EXAMPLE = "examples/evaluate/ensemble-ml-btc-eth.yaml"


def test_the_example_evaluates_the_ensemble_its_sixteen_members_and_buy_and_hold_as_the_docs_report(repo_root):
    # the lookahead check with fewer cuts than the docs' command: the results and their fingerprint do not
    # depend on it (the docs' run passed it with 30 cuts per symbol)
    command = [sys.executable, "-m", "slsbot.interfaces.cli", "evaluate", "--config", EXAMPLE, "--json"]
    finished = subprocess.run(
        [*command, "--lookahead-cuts", "2", "--lookahead-random-cuts", "0"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    data = json.loads(finished.stdout)
    head = data["evaluation"]
    assert head["symbols"] == ["BTC/USDT", "ETH/USDT"] and head["timeframe"] == "1h"
    assert len(head["folds"]) == 6 and head["warmup_candles"] == 500  # the models' lookback
    assert head["held_out"] == {"from": "2024-10-04T20:00:00Z", "to": "2026-02-19T02:00:00Z"}
    assert head["folds"][0]["warmup_from"] == "2024-09-14T00:00:00Z"  # the first candle of the data
    models = ["gbm", "forest", "logit", "stack"]
    assert len(data["members"]) == 16 and list(data["members"])[12:] == models
    assert data["lookahead"]["passed"] and {f"ml.models[{m}]" for m in models} <= set(data["lookahead"]["units"])
    # fast mode reproduces Kelly sizing, the breakers and the volatility halt exactly, models or not (they retrain
    # in-process at the step mode's points)
    for result in (data["ensemble"], *data["members"].values()):
        assert {fold["mode"] for fold in result["folds"]} == {"fast"}
    for name in models:  # each model was trained and voted in every fold
        assert all(fold["metrics"]["trades"] > 0 for fold in data["members"][name]["folds"]), name
    assert data["buy_and_hold"]["overall"]["exposure_pct"] == 100.0
    assert len(data["selection"]["candidates"]) == 17 and data["selection"]["pbo"]["splits"] == 12_870
    assert data["record"]["seeds"]["models"] == {"gbm": 0, "forest": 0, "logit": None, "stack": None}
    docs = (repo_root / "docs/concepts/evaluation.md").read_text()
    (quoted,) = re.findall(r"Fingerprints: results `([0-9a-f]{64})`", docs)
    assert data["fingerprint"] == quoted, "the docs' results are not this code's: run the docs' command again"
    (data_quoted,) = re.findall(r"data\n`([0-9a-f]{64})`", docs)
    assert data["record"]["data"]["fingerprint"] == data_quoted
