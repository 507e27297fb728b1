"""The Grafana dashboards (charts/slsbot/files/dashboards/*.json): dashboards Grafana loads as they are (by import or by
a provisioning sidecar), every panel on the ``${DS_PROMETHEUS}`` datasource variable, every variable a query uses
defined, panels on Grafana's 24-column grid without overlapping. That their queries read metrics that exist is
test_monitored_metrics_exist.py's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "charts" / "slsbot" / "files" / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
BUILT_IN = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
PANEL_TYPES = {"row", "stat", "timeseries", "table", "gauge", "bargauge", "text", "state-timeline"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_three_dashboards_with_distinct_uids() -> None:
    dashboards = {path.name: load(path) for path in DASHBOARDS}
    assert set(dashboards) == {"slsbot-fleet.json", "slsbot-bot.json", "slsbot-operations.json"}
    assert len({d["uid"] for d in dashboards.values()}) == 3


def dashboard_problems(dashboard: dict[str, Any]) -> list[str]:
    """What keeps ``dashboard`` from loading as Grafana expects it; empty when nothing does."""
    problems = [
        f"missing {key}" for key in ("uid", "title", "schemaVersion", "panels", "templating") if key not in dashboard
    ]
    if problems:
        return problems
    if not isinstance(dashboard["schemaVersion"], int) or dashboard["schemaVersion"] < 36:
        problems.append(f"schemaVersion {dashboard['schemaVersion']!r}: Grafana 9 or later writes 36 or more")
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables.get("DS_PROMETHEUS")
    if source is None or source.get("type") != "datasource" or source.get("query") != "prometheus":
        problems.append("no datasource variable DS_PROMETHEUS of type prometheus")
    ids: set[int] = set()
    cells: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{name}: id used twice")
        ids.add(panel.get("id"))
        if panel.get("type") not in PANEL_TYPES:
            problems.append(f"{name}: type {panel.get('type')!r}")
        grid = panel.get("gridPos", {})
        if not {"h", "w", "x", "y"} <= set(grid) or grid["x"] < 0 or grid["x"] + grid["w"] > 24:
            problems.append(f"{name}: gridPos {grid} is not on the 24-column grid")
            continue
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells:
                    problems.append(f"{name}: overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = panel["id"]
            else:
                continue
            break
        if panel["type"] == "row":
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{name}: datasource {panel.get('datasource')} is not {DATASOURCE}")
        if not panel.get("targets"):
            problems.append(f"{name}: no query")
        for target in panel.get("targets", []):
            if target.get("datasource") != DATASOURCE or not target.get("refId") or not target.get("expr"):
                problems.append(f"{name}: target {target.get('refId')} lacks its refId, expr or datasource")
            used = set(_VARIABLE.findall(target.get("expr", ""))) - BUILT_IN - set(variables)
            if used:
                problems.append(f"{name}: uses undefined variable(s) {sorted(used)}")
    return problems


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.name for p in DASHBOARDS])
def test_a_dashboard_grafana_loads(path: Path) -> None:
    assert dashboard_problems(load(path)) == []


def test_the_checks_can_fail() -> None:
    dashboard = load(DASHBOARDS[0])
    first, second = [p for p in dashboard["panels"] if p["type"] != "row"][:2]
    first["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    first["targets"][0]["expr"] += " + on() vector($nowhere)"
    second["gridPos"]["w"] = 30
    dashboard["templating"]["list"] = [v for v in dashboard["templating"]["list"] if v["name"] != "DS_PROMETHEUS"]
    problems = dashboard_problems(dashboard)
    assert any("no datasource variable" in p for p in problems)
    assert any("is not {'type'" in p for p in problems)
    assert any("undefined variable(s) ['nowhere']" in p for p in problems)
    assert any("24-column grid" in p for p in problems)


def test_the_bot_dashboard_picks_one_strategy() -> None:
    bot = load(next(p for p in DASHBOARDS if p.name == "slsbot-bot.json"))
    strategy = next(v for v in bot["templating"]["list"] if v["name"] == "strategy")
    assert strategy["type"] == "query" and not strategy["multi"]
    titles = " ".join(p["title"].lower() for p in bot["panels"])
    for part in ("equity", "drawdown", "fills", "risk decisions", "latency"):
        assert part in titles
    queries = [t["expr"] for p in bot["panels"] for t in p.get("targets", [])]
    assert all('strategy="$strategy"' in q for q in queries)
