"""Why a runtime stopped, in one line, from the last words it wrote (its log's tail, or a container's termination
message). Pure: text in, text out. The runtime's log never holds a secret (its own rule), so neither does this."""

from __future__ import annotations

import re

MAX_LENGTH = 300
_COMMAND_PREFIX = "slsbot runtime: "  # how `slsbot runtime` prints the error it exits on
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt))(?::\s*(.*))?$")
_LOG_LINE = re.compile(r"\b(?:ERROR|CRITICAL)\s+[\w.]+:\s*(.*)$")


def last_error_line(text: str) -> str:
    """The most telling line of ``text``: the error ``slsbot runtime`` exited on, else the last exception of a
    traceback, else the last ERROR log line, else the last line. At most ``MAX_LENGTH`` characters; "" if empty."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    for line in reversed(lines):
        if line.startswith(_COMMAND_PREFIX):
            return _bounded(line.removeprefix(_COMMAND_PREFIX))
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line)
        if match:
            name, message = match.groups()
            return _bounded(f"{name}: {message}" if message else name)
    for line in reversed(lines):
        match = _LOG_LINE.search(line)
        if match:
            return _bounded(match.group(1))
    return _bounded(lines[-1])


def _bounded(line: str) -> str:
    return line if len(line) <= MAX_LENGTH else line[: MAX_LENGTH - 3] + "..."
