"""What a PromQL expression reads: its metric names and, per selector, the label names it matches on; plus the label
names its aggregations and vector matchings name (``by``, ``without``, ``on``, ``ignoring``, ``group_left/right``).

No well-kept PromQL parser is on PyPI for Python (the Go one is Prometheus's own), so this is a tokenizer that knows
PromQL's lexical rules: strings (the three quotes, with escapes), ``{...}`` matchers, ``[...]`` ranges and subqueries,
numbers and durations, keywords, aggregation operators and functions. It refuses what it does not know (a function
name it has never heard of, an unbalanced brace) instead of guessing, so a typo in a rule fails the test that reads
it. Grafana's variables (``$strategy``, ``${strategy}``, ``[$__rate_interval]``) are accepted where Grafana allows them.
Tested in tests/unit/monitoring/test_promql_names.py.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
FUNCTIONS = frozenset(
    {
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_stddev",
        "histogram_stdvar",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "mad_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    }
)
BINARY_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2"})
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
MATCH_OPERATORS = ("=~", "!~", "!=", "=")

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    r"(0x[0-9a-fA-F]+|(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[Ii]nf|NaN)((ms|[smhdwy])(\d+(ms|[smhdwy]))*)?"
)
_VARIABLE = re.compile(r"\$(\{[^}]+\}|[A-Za-z_][A-Za-z0-9_]*)")


class PromQLError(ValueError):
    """The expression is not PromQL this tokenizer understands; the message says where."""


@dataclass
class Selector:
    metric: str
    labels: list[str] = field(default_factory=list)  # the label names its matchers name, in order
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, operator, value), in order


@dataclass
class Reads:
    selectors: list[Selector] = field(default_factory=list)
    grouping_labels: list[str] = field(default_factory=list)  # by/without/on/ignoring/group_left/group_right

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors}


def _string_end(text: str, start: int) -> int:
    """The index after the string literal that starts at ``start``."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if quote != "`" and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise PromQLError(f"unterminated string at offset {start}: {text[start : start + 30]!r}")


def _string_value(literal: str) -> str:
    """The value of a PromQL string literal (its quotes included); Python reads the escapes PromQL uses alike."""
    if literal[0] == "`":
        return literal[1:-1]
    return ast.literal_eval(literal)


def _matchers(text: str, start: int) -> tuple[list[tuple[str, str, str]], int]:
    """The matchers (label, operator, value) of the ``{...}`` at ``start``, and the index after it."""
    names: list[tuple[str, str, str]] = []
    i = start + 1
    while True:
        while i < len(text) and text[i] in " \t\n,":
            i += 1
        if i >= len(text):
            raise PromQLError(f"unclosed '{{' at offset {start}")
        if text[i] == "}":
            return names, i + 1
        if text[i] in "\"'`":  # a quoted metric name or label name (Prometheus 3): {"metric.name", ...}
            raise PromQLError(f"quoted names in a selector are not supported, at offset {i}")
        match = _LABEL.match(text, i)
        if match is None:
            raise PromQLError(f"expected a label name at offset {i}: {text[i : i + 30]!r}")
        label = match.group()
        i = match.end()
        while i < len(text) and text[i] in " \t\n":
            i += 1
        operator = next((op for op in MATCH_OPERATORS if text.startswith(op, i)), None)
        if operator is None:
            raise PromQLError(f"expected a matcher operator after label {label!r} at offset {i}")
        i += len(operator)
        while i < len(text) and text[i] in " \t\n":
            i += 1
        if i >= len(text) or text[i] not in "\"'`":
            raise PromQLError(f"expected a string after {label}{operator} at offset {i}")
        end = _string_end(text, i)
        names.append((label, operator, _string_value(text[i:end])))
        i = end


def _label_list(text: str, start: int) -> tuple[list[str], int]:
    """The names of the ``(a, b)`` at ``start`` (after by, on...), and the index after it."""
    end = text.find(")", start)
    if end < 0:
        raise PromQLError(f"unclosed '(' of a label list at offset {start}")
    inner = text[start + 1 : end]
    names = [name.strip() for name in inner.split(",") if name.strip()]
    for name in names:
        if not _LABEL.fullmatch(name):
            raise PromQLError(f"{name!r} is not a label name (label list at offset {start})")
    return names, end + 1


def _grouping_follows(text: str, start: int) -> bool:
    match = _IDENT.match(text, start)
    return match is not None and match.group().lower() in ("by", "without")


def reads(expr: str) -> Reads:
    """The metrics and labels ``expr`` reads. Raises PromQLError for what it does not understand."""
    found = Reads()
    i, depth = 0, 0
    while i < len(expr):
        char = expr[i]
        if char in " \t\n\r":
            i += 1
        elif char == "#":  # a comment, to the end of the line
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif char in "\"'`":
            i = _string_end(expr, i)
        elif char == "$":
            match = _VARIABLE.match(expr, i)
            if match is None:
                raise PromQLError(f"a '$' that starts no variable at offset {i}")
            i = match.end()
        elif char == "[":  # a range or a subquery: durations, Grafana variables, ':'
            end = expr.find("]", i)
            if end < 0:
                raise PromQLError(f"unclosed '[' at offset {i}")
            i = end + 1
        elif char == "{":  # a selector without a metric name
            matchers, i = _matchers(expr, i)
            found.selectors.append(Selector("", [m[0] for m in matchers], matchers))
        elif char == "(":
            depth += 1
            i += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise PromQLError(f"unbalanced ')' at offset {i}")
            i += 1
        elif char.isdigit() or (char == "." and expr[i + 1 : i + 2].isdigit()):
            match = _NUMBER.match(expr, i)
            assert match is not None
            i = match.end()
        elif _IDENT.match(expr, i):
            match = _IDENT.match(expr, i)
            assert match is not None
            word, i = match.group(), match.end()
            j = i
            while j < len(expr) and expr[j] in " \t\n\r":
                j += 1
            following = expr[j] if j < len(expr) else ""
            lowered = word.lower()
            if lowered in LABEL_LIST_KEYWORDS:
                if following == "(":
                    names, i = _label_list(expr, j)
                    found.grouping_labels.extend(names)
                elif lowered not in ("group_left", "group_right"):
                    raise PromQLError(f"{word!r} without its label list at offset {j}")
            elif lowered in BINARY_KEYWORDS or lowered in ("inf", "nan"):
                continue
            elif following == "(":
                if word not in FUNCTIONS and word not in AGGREGATIONS:
                    raise PromQLError(f"unknown function {word!r} at offset {match.start()}")
            elif word in AGGREGATIONS and _grouping_follows(expr, j):
                continue  # sum by (x) (...): the aggregation, then its grouping
            else:
                selector = Selector(word)
                if following == "{":
                    selector.matchers, i = _matchers(expr, j)
                    selector.labels = [m[0] for m in selector.matchers]
                found.selectors.append(selector)
        elif char in "+-*/%^=!<>,@:":
            i += 1
        else:
            raise PromQLError(f"unexpected {char!r} at offset {i}: {expr[i : i + 30]!r}")
    if depth != 0:
        raise PromQLError("unbalanced parentheses")
    return found
