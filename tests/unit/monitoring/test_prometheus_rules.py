"""The alerts (charts/slsbot/files/prometheus-rules.yaml): valid for promtool, each fired and kept silent by
tests/monitoring/prometheus-rules.test.yaml (``promtool test rules``), each with a severity, a summary, a description
and a runbook that exists. promtool comes with Debian's prometheus package (``make promtool``); without it the promtool
tests skip, saying so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "charts" / "slsbot" / "files" / "prometheus-rules.yaml"
RULE_TESTS = ROOT / "tests" / "monitoring" / "prometheus-rules.test.yaml"
RUNBOOK_BASE = "https://github.com/slsbot/slsbot/blob/main/runbooks/"
SEVERITIES = ("critical", "warning", "info")
#: What issue 11 asks an operator of bots to be alerted on, and the alert that says it.
REQUIRED = {
    "runtime down": "SlsbotRuntimeDown",
    "crash-looping": "SlsbotRuntimeCrashLooping",
    "data stale": "SlsbotDataStale",
    "exchange errors": "SlsbotExchangeErrors",
    "breaker tripped": "SlsbotCircuitBreakerTripped",
    "kill switch on": "SlsbotKillSwitchOn",
    "drawdown near its limit": "SlsbotDrawdownNearLimit",
    "incidents open": "SlsbotCriticalIncidentOpen",
    "backup stale": "SlsbotBackupStale",
    "restore drill failed": "SlsbotRestoreDrillFailed",
    "tuning failed": "SlsbotTuningFailed",
}
promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None, reason="no promtool: `make promtool` installs Debian's prometheus package, which ships it"
)


def alerts() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in done.stdout


@needs_promtool
def test_promtool_fires_and_clears_every_alert_as_the_rule_tests_expect() -> None:
    done = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_fails_a_rule_test_whose_expectation_is_wrong(tmp_path: Path) -> None:
    """The promtool test above can fail: the same tests with one expected alert label changed do."""
    original = RULE_TESTS.read_text()
    text = original.replace("strategy: btc-trend, account: paper}", "strategy: eth-trend, account: paper}", 1)
    assert text != original
    broken = tmp_path / "broken.test.yaml"
    broken.write_text(text.replace("../../charts/", f"{ROOT}/charts/"))
    done = subprocess.run([promtool, "test", "rules", str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "SlsbotRuntimeDown" in done.stdout + done.stderr


def test_every_alert_the_issue_lists_exists() -> None:
    names = {rule["alert"] for rule in alerts()}
    assert {what: name for what, name in REQUIRED.items() if name not in names} == {}


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_that_exists() -> None:
    for rule in alerts():
        name, annotations = rule["alert"], rule.get("annotations", {})
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        assert annotations.get("summary") and annotations.get("description"), name
        url = annotations.get("runbook_url", "")
        assert url.startswith(RUNBOOK_BASE) and url.endswith(".md"), f"{name}: runbook_url {url!r}"
        page = ROOT / "runbooks" / url.removeprefix(RUNBOOK_BASE)
        assert page.is_file(), f"{name}: {url} names {page.relative_to(ROOT)}, which does not exist"


def test_every_alert_is_tested_firing_and_silent() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["../../charts/slsbot/files/prometheus-rules.yaml"]
    cases = [case for group in tests["tests"] for case in group["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "never seen firing"
    assert names - silent == set(), "never seen silent"
