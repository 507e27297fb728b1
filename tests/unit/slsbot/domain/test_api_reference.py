"""The generated API reference: one section per kind, every field with its type, default and constraints."""

from __future__ import annotations

import re

import pytest

from slsbot.api import KINDS
from slsbot.domain.api_reference import render_api_reference


@pytest.fixture(scope="module")
def page() -> str:
    return render_api_reference()


def _row(page: str, kind: str, part: str, field: str) -> list[str]:
    section = page.split(f"### {kind} `{part}`", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.startswith(f"| `{field}` |"):
            return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
    raise AssertionError(f"{kind} {part} has no row for {field}")


def test_every_kind_has_a_spec_and_a_status_section(page):
    for kind in KINDS:
        assert f"\n## {kind}\n" in page
        assert f"### {kind} `spec`" in page and f"### {kind} `status`" in page


def test_a_row_gives_type_default_constraints_and_description(page):
    assert _row(page, "RiskPolicy", "spec", "maxDrawdownPercent") == [
        "`maxDrawdownPercent`",
        "number",
        "`20.0`",
        "> 0, ≤ 100",
        "",
    ]
    assert _row(page, "TradingAccount", "spec", "exchange") == [
        "`exchange`",
        "string",
        "**required**",
        "≤ 40 characters, pattern `^[a-z][a-z0-9]*$`",
        "A ccxt exchange id, e.g. binance or bybit.",
    ]
    assert _row(page, "TradingAccount", "spec", "mode")[3] == "one of `paper`, `testnet`, `live`"


def test_nested_and_list_fields_have_dotted_paths(page):
    assert _row(page, "Strategy", "spec", "ensemble.members[].params")[1] == "object (free-form)"
    assert _row(page, "Strategy", "spec", "marketData.start")[1] == "string (date-time)"
    assert _row(page, "Strategy", "spec", "symbols")[3] == "1..64 items"


def test_object_defaults_are_shown_when_they_differ_from_their_fields(page):
    assert _row(page, "Strategy", "spec", "runtime.resources.limits")[2] == '`{"cpu": "1", "memory": "512Mi"}`'
    assert _row(page, "Strategy", "spec", "runtime.resources.requests")[2] == "each field's default"


def test_pipes_in_patterns_do_not_break_the_table(page):
    row = _row(page, "Strategy", "spec", "runtime.imagePullPolicy")
    assert len(row) == 5
    assert row[3] == r"pattern `^(Always\|IfNotPresent\|Never)$`"


def test_cel_rules_are_listed_with_their_message(page):
    assert "- `spec.credentials`: set exactly one of credentials.vault or credentials.secretRef" in page
    assert "- `spec.searchSpace[]`: int and float parameters need low and high" in page
