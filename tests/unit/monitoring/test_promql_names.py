"""The PromQL tokenizer the metric checks rely on (tests/promql_names.py): it finds every metric and label an
expression reads, skips what is not one (functions, keywords, strings, durations, Grafana variables), and refuses
what it does not understand."""

from __future__ import annotations

import pytest
from tests.promql_names import PromQLError, reads


def test_selectors_functions_and_aggregations() -> None:
    found = reads(
        "max without (symbol) (resets(slsbot_runtime_candles_processed_total[30m])) >= 3 or "
        'sum without (rung) (increase(slsbot_heal_rungs_total{failure_class="Crashed", rung!="Restart"}[30m])) > 0'
    )
    assert found.metrics == {"slsbot_runtime_candles_processed_total", "slsbot_heal_rungs_total"}
    assert [s.labels for s in found.selectors] == [[], ["failure_class", "rung"]]
    assert found.grouping_labels == ["symbol", "rung"]


def test_vector_matching_time_and_arithmetic() -> None:
    found = reads(
        'time() - slsbot_backup_last_success_timestamp_seconds{kind="backup"} > 25 * 3600 or '
        '(sum without (outcome) (x_total{kind="backup"}) > 0) unless on (job, instance) y{kind=~"b.*"} offset 5m'
    )
    assert found.metrics == {"slsbot_backup_last_success_timestamp_seconds", "x_total", "y"}
    assert found.grouping_labels == ["outcome", "job", "instance"]


def test_grafana_variables_strings_and_histograms() -> None:
    found = reads(
        "histogram_quantile(0.99, sum by (le, strategy) (rate(slsbot_runtime_decision_latency_seconds_bucket"
        '{namespace=~"$namespace", strategy=~"${strategy}"}[$__rate_interval])))'
        " / on (strategy) group_left (account) slsbot_runtime_equity"
    )
    assert found.metrics == {"slsbot_runtime_decision_latency_seconds_bucket", "slsbot_runtime_equity"}
    assert found.selectors[0].labels == ["namespace", "strategy"]
    assert found.grouping_labels == ["le", "strategy", "strategy", "account"]


def test_an_aggregation_with_its_grouping_first_and_a_string_with_a_brace() -> None:
    found = reads('sum by (severity) (slsbot_incidents_open{severity!="}"}) + topk(3, a) + count_values("v", b)')
    assert found.metrics == {"slsbot_incidents_open", "a", "b"} and found.grouping_labels == ["severity"]


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        ("rat(x[5m])", "unknown function 'rat'"),
        ('x{job="a"', "unterminated|unclosed"),
        ('x{job~"a"}', "expected a matcher operator"),
        ("sum(x))", "unbalanced"),
        ("sum by x", "without its label list"),
    ],
)
def test_what_it_does_not_understand_is_refused(expr: str, error: str) -> None:
    with pytest.raises(PromQLError, match=error):
        reads(expr)


def test_matchers_keep_their_operator_and_value() -> None:
    found = reads(r'x{kind="backup", phase=~"drained|finished", rung!="Restart", path!~`a\d`, q="say \"hi\""}')
    assert found.selectors[0].matchers == [
        ("kind", "=", "backup"),
        ("phase", "=~", "drained|finished"),
        ("rung", "!=", "Restart"),
        ("path", "!~", r"a\d"),
        ("q", "=", 'say "hi"'),
    ]
