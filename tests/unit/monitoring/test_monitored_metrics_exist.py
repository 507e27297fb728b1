"""Every metric an alert or a dashboard reads is one the code exports, with the labels it names.

The exported names and labels are read from the real exposition: ``RuntimeMetrics`` and ``ControlMetrics`` on fresh
registries, one child of every labelled metric created (so that its label names show), rendered by
``generate_latest`` and parsed back with prometheus_client's own parser. The expressions are read with the tokenizer
in tests/promql_names.py. Labels that are not the code's are the scrape's (``TARGET_LABELS``: the runtimes' job
``slsbot-runtime`` gives them namespace, strategy and account, docs/concepts/monitoring.md), and the only series that
is not the code's is Prometheus's own ``up``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from tests.promql_names import reads

from slsbot.adapters.control_metrics import ControlMetrics, TuningMetrics
from slsbot.api.backup import BackupJobKind
from slsbot.api.health import FailureClass, HealingRung
from slsbot_runtime.metrics import EXCHANGE_ERROR_KINDS, PHASES, TRADING_MODES, RuntimeMetrics

ROOT = Path(__file__).resolve().parents[3]
FILES = ROOT / "charts" / "slsbot" / "files"
RULES = FILES / "prometheus-rules.yaml"
DASHBOARDS = sorted((FILES / "dashboards").glob("*.json"))
#: Labels the scrape adds (the target's), never the code's.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "strategy", "account"})
#: Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up": frozenset()}
HEALING_SERIES = ("rungs_total", "detection_seconds_bucket", "recovery_seconds_bucket")
#: The values a label can take, where the code fixes them: a matcher on another value (a typo) matches nothing.
BACKUP_KINDS = frozenset(str(k) for k in BackupJobKind)
KNOWN_VALUES: dict[tuple[str, str], frozenset[str]] = {
    **{(f"slsbot_heal_{m}", "failure_class"): frozenset(map(str, FailureClass)) for m in HEALING_SERIES},
    ("slsbot_heal_rungs_total", "rung"): frozenset(map(str, HealingRung)),
    ("slsbot_runtime_phase", "phase"): frozenset(PHASES),
    ("slsbot_runtime_trading_mode", "mode"): frozenset(TRADING_MODES),
    ("slsbot_runtime_exchange_errors_total", "kind"): frozenset(EXCHANGE_ERROR_KINDS),
    ("slsbot_backup_last_success_timestamp_seconds", "kind"): BACKUP_KINDS,
    ("slsbot_backup_last_duration_seconds", "kind"): BACKUP_KINDS,
    ("slsbot_backup_runs_total", "kind"): BACKUP_KINDS,
    ("slsbot_backup_runs_total", "outcome"): frozenset({"succeeded", "failed"}),
    ("slsbot_incidents_open", "severity"): frozenset({"1", "2", "3"}),
    ("slsbot_tuning_runs_failed_total", "reason"): frozenset(TuningMetrics.REASONS),
    ("up", "job"): frozenset({"slsbot-runtime"}),
}
_ALTERNATIVES = re.compile(r"^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*$")
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(
    r"^\s*label_values\((?P<selector>.*),\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.DOTALL
)


def _metric_objects(holder: object, seen: set[int] | None = None) -> Iterator[MetricWrapperBase]:
    seen = set() if seen is None else seen
    for value in vars(holder).values():
        if isinstance(value, MetricWrapperBase):
            yield value
        elif (
            type(value).__module__ in ("slsbot.adapters.control_metrics", "slsbot_runtime.metrics")
            and id(value) not in seen
        ):
            seen.add(id(value))
            yield from _metric_objects(value, seen)


@functools.cache
def exported() -> dict[str, frozenset[str]]:
    """Every sample name the code exports -> its label names, from the rendered exposition."""
    texts = []
    for metrics in (RuntimeMetrics(CollectorRegistry()), ControlMetrics(CollectorRegistry())):
        for metric in _metric_objects(metrics):
            names = metric._labelnames  # no public accessor; the child below makes them show in the exposition
            if names:
                metric.labels(*["probe"] * len(names))
        texts.append(generate_latest(metrics.registry).decode())
    samples: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in samples.items()} | PROMETHEUS_SERIES


def rule_expressions() -> list[tuple[str, str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(f"alert {rule['alert']}", rule["expr"], "") for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard: dict[str, Any] = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                where = f"{path.name} panel {panel['title']!r} {target['refId']}"
                found.append((where, target["expr"], target.get("legendFormat", "")))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
                match = _LABEL_VALUES.match(query)
                assert match, f"{path.name} variable {variable['name']}: expected label_values(selector, label)"
                found.append(
                    (f"{path.name} variable {variable['name']}", match["selector"], "{{" + match["label"] + "}}")
                )
    return found


EXPRESSIONS = rule_expressions() + dashboard_expressions()


def test_the_checks_see_every_file_and_the_exposition() -> None:
    names = exported()
    assert {"slsbot_runtime_equity", "slsbot_runtime_kill_switch", "slsbot_tuning_runs_failed_total"} <= set(names)
    assert names["slsbot_backup_runs_total"] == {"namespace", "schedule", "kind", "outcome"}
    assert names["slsbot_runtime_decision_latency_seconds_bucket"] == {"le"}
    assert len(DASHBOARDS) == 3 and len(rule_expressions()) >= 11


def problems(expr: str, legend: str, names: dict[str, frozenset[str]]) -> list[str]:
    """What ``expr`` (and its legend's ``{{label}}``) reads that ``names`` does not export."""
    read = reads(expr)
    found = [] if read.metrics else [f"reads no metric: {expr}"]
    for selector in read.selectors:
        if selector.metric not in names:
            found.append(f"{selector.metric!r} is not exported by the code")
            continue
        unknown = set(selector.labels) - names[selector.metric] - TARGET_LABELS
        if unknown:
            found.append(f"{selector.metric} has no label {sorted(unknown)}")
        for label, operator, value in selector.matchers:
            known = KNOWN_VALUES.get((selector.metric, label))
            if known is None or "$" in value or (operator.endswith("~") and not _ALTERNATIVES.match(value)):
                continue
            wrong = set(value.split("|") if operator.endswith("~") else [value]) - known
            if wrong:
                found.append(f"{selector.metric}{{{label}}} is never {sorted(wrong)}; it is one of {sorted(known)}")
    available = set().union(*(names.get(m, frozenset()) for m in read.metrics)) | TARGET_LABELS
    unknown = (set(read.grouping_labels) | set(_LEGEND_LABEL.findall(legend))) - available
    if unknown:
        found.append(f"labels {sorted(unknown)} are on none of {sorted(read.metrics)}")
    return found


@pytest.mark.parametrize(("where", "expr", "legend"), EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_every_metric_and_label_an_alert_or_dashboard_reads_is_exported(where: str, expr: str, legend: str) -> None:
    assert problems(expr, legend, exported()) == [], where


def test_a_metric_or_label_the_code_does_not_export_is_caught() -> None:
    names = exported()
    assert problems("rate(slsbot_runtime_equity_total[5m])", "", names) == [
        "'slsbot_runtime_equity_total' is not exported by the code"
    ]
    assert problems('slsbot_backup_last_success_timestamp_seconds{job="backup", kind="backup"}', "", names) == []
    assert problems('slsbot_backup_runs_total{outcome="failed", result="x"}', "", names) == [
        "slsbot_backup_runs_total has no label ['result']"
    ]
    assert problems("sum by (symbol) (slsbot_runtime_equity)", "{{side}}", names) == [
        "labels ['side', 'symbol'] are on none of ['slsbot_runtime_equity']"
    ]
    assert problems("time()", "", names) == ["reads no metric: time()"]
    assert problems('slsbot_backup_runs_total{kind="backups", outcome=~"failed|Failed"}', "", names) == [
        "slsbot_backup_runs_total{kind} is never ['backups']; it is one of ['backup', 'check', 'drill', 'prune']",
        "slsbot_backup_runs_total{outcome} is never ['Failed']; it is one of ['failed', 'succeeded']",
    ]
    assert problems('slsbot_runtime_phase{phase=~"$phase", strategy="x"} == 1', "", names) == []
