"""Reading a RuntimeConfig file: the runtime's only input. Every problem is a ConfigError (exit code 2)
whose message starts with the field, written as in the YAML (camelCase, list items by index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError

from slsbot.api import RuntimeConfig
from slsbot_runtime.domain.errors import ConfigError


def load_runtime_config(path: str | Path) -> RuntimeConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--config: cannot read {file}: {error.strerror or error}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"--config: {file} is not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    return parse_runtime_config(data, source=str(file))


def parse_runtime_config(data: Any, *, source: str = "config") -> RuntimeConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a RuntimeConfig mapping (apiVersion, kind, name, account, ...), "
            f"got {type(data).__name__}"
        )
    try:
        config = RuntimeConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: " + describe_validation_error(error)) from None
    duplicates = sorted({s for s in config.symbols if config.symbols.count(s) > 1})
    if duplicates:
        raise ConfigError(f"{source}: symbols: each symbol may appear once; {', '.join(duplicates)} repeated")
    return config


def describe_validation_error(error: ValidationError) -> str:
    """``field.path: message (got value)`` for each problem, joined by ``; ``."""
    problems = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        shown = "" if item["type"] in ("missing", "extra_forbidden") else f" (got {item.get('input')!r:.60})"
        if item["type"] == "extra_forbidden":
            message = "unknown field; check the spelling (fields are camelCase)"
        problems.append(f"{path or '(top level)'}: {message}{shown}")
    return "; ".join(problems)


#: Environment variable that moves every exchange REST call of a runtime to another host (read by
#: ``slsbot runtime`` once at start, passed down as ``RuntimeOptions.exchange_endpoint``).
ENV_EXCHANGE_ENDPOINT = "SLSBOT_EXCHANGE_ENDPOINT"


def parse_exchange_endpoint(value: str | None, *, source: str = ENV_EXCHANGE_ENDPOINT) -> str | None:
    """``http(s)://host[:port][/path]`` without a query, or None when unset or blank. The exchange's own paths
    are appended to it (``/api/v3/...`` for Binance, ``/v5/...`` for Bybit)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    example = "e.g. http://127.0.0.1:8080 or https://mirror.example.com/binance"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise ConfigError(f"{source}: not a URL ({error}); {example}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"{source}: the scheme must be http or https, got {parts.scheme or 'none'!r}; {example}")
    if not parts.hostname:
        raise ConfigError(f"{source}: no host in the URL; {example}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"{source}: a user name or password in the URL would reach error messages and logs; "
            "put the mirror behind a proxy that adds them, or on an address that needs none"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{source}: a query or fragment cannot be kept; give scheme, host, port and path only")
    if port == 0:
        raise ConfigError(f"{source}: port 0 is not a port to connect to; {example}")
    return text.rstrip("/")
