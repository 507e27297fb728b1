"""The risk snapshot as JSON text, kept ready for the state file.

The trading loop writes ``json.dumps(RiskManager.snapshot(), sort_keys=True)`` at every commit, that is before
every order. With the volatility halt on, most of that text is the volatility windows: 264 floats per symbol
with the default window, formatted again at every commit although each commit only adds a few. A
``JsonWindow`` keeps the text of each value from when it came in, so the snapshot's text costs a join. Every
function here writes exactly what ``json.dumps`` writes (a test compares them).
"""

from __future__ import annotations

import json
import math
from collections import deque

#: ``json.dumps(value, sort_keys=True)`` without building an encoder on every call.
SORTED_JSON = json.JSONEncoder(sort_keys=True)


def json_number(value: float | int | None) -> str:
    """How ``json.dumps`` writes a number (or None)."""
    if value is None:
        return "null"
    if type(value) is int:
        return int.__repr__(value)
    value = float(value)
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


class JsonWindow:
    """The JSON text of the last ``size`` values appended."""

    __slots__ = ("_texts",)

    def __init__(self, size: int) -> None:
        self._texts: deque[str] = deque(maxlen=size)

    def append(self, value: float) -> None:
        self._texts.append(json_number(value))

    def text(self) -> str:
        return "[" + ", ".join(self._texts) + "]"
