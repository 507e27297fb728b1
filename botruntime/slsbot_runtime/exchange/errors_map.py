"""The boundary between ccxt and the runtime: ccxt exceptions become the runtime's exception tree, and
credentials are scrubbed from every message and log line that crosses it.

Everything that calls ccxt goes through ``ccxt_boundary``; nothing above the adapters ever sees a ccxt type.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import ccxt

from slsbot_runtime.domain import errors

#: Most specific first: ``OrderNotFound`` is an ``InvalidOrder`` and ``InsufficientFunds`` an ``ExchangeError``
#: in ccxt, so the first match wins.
CCXT_TO_RUNTIME: tuple[tuple[type[Exception], type[errors.ExchangeError]], ...] = (
    (ccxt.RateLimitExceeded, errors.RateLimited),
    (ccxt.DDoSProtection, errors.RateLimited),
    (ccxt.ExchangeNotAvailable, errors.ExchangeUnavailable),  # includes OnMaintenance and HTTP 5xx
    (ccxt.RequestTimeout, errors.TemporaryExchangeError),
    (ccxt.NetworkError, errors.TemporaryExchangeError),  # includes InvalidNonce (clock skew)
    (ccxt.AuthenticationError, errors.AuthenticationError),  # includes PermissionDenied, AccountSuspended
    (ccxt.InsufficientFunds, errors.InsufficientFunds),
    (ccxt.OrderNotFound, errors.OrderNotFound),
    (ccxt.InvalidOrder, errors.OrderRejected),
)

REDACTED = "***"
MAX_MESSAGE_CHARS = 600

# A request signature is not a credential, but it is derived from one and useless in a message.
_SIGNATURE = re.compile(r"(signature|sign)=([0-9A-Za-z%+/=_-]+)", re.IGNORECASE)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (and every request signature) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _SIGNATURE.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def runtime_error_class(exc: BaseException) -> type[errors.ExchangeError]:
    """The runtime exception class that stands for ``exc``; ``ExchangeError`` when nothing more precise fits."""
    for ccxt_class, runtime_class in CCXT_TO_RUNTIME:
        if isinstance(exc, ccxt_class):
            return runtime_class
    return errors.ExchangeError


def map_ccxt_error(exc: BaseException, *, operation: str, secrets: Iterable[str | None] = ()) -> errors.ExchangeError:
    """Translate one exception raised by ccxt (or below it) into the runtime's tree, with a scrubbed message
    that says which call failed and what ccxt called the failure."""
    if isinstance(exc, errors.ExchangeError):
        return exc
    detail = scrub(str(exc), secrets).strip() or "no detail"
    if len(detail) > MAX_MESSAGE_CHARS:
        detail = detail[:MAX_MESSAGE_CHARS] + "..."
    return runtime_error_class(exc)(f"{operation} failed: {detail} [{type(exc).__name__}]")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds, or an HTTP date), None without a usable one."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


@contextmanager
def ccxt_boundary(operation: str, secrets: Iterable[str | None] = (), client: Any = None) -> Iterator[None]:
    """Run a block of ccxt calls; any exception leaves as a runtime ``ExchangeError`` subclass. A rate limit
    carries the ``Retry-After`` of the answer that refused it when ``client`` (the ccxt client) kept its headers.

    The original exception is not chained (``from None``): its message may hold a key, and a logged
    traceback would print it.
    """
    secrets = tuple(secrets)
    try:
        yield
    except errors.ExchangeError:
        raise
    except Exception as exc:
        mapped = map_ccxt_error(exc, operation=operation, secrets=secrets)
        if isinstance(mapped, errors.RateLimited) and client is not None:
            mapped.retry_after_s = retry_after_seconds(getattr(client, "last_response_headers", None))
        raise mapped from None


class ScrubbingLogger(logging.LoggerAdapter):
    """Handed to a ccxt client as its ``logger``: ccxt logs request headers (the API key among them) at
    DEBUG level; this formats each record first and replaces every secret before it reaches a handler."""

    def __init__(self, logger: logging.Logger, secrets: Iterable[str | None]) -> None:
        super().__init__(logger, {})
        self._secrets = tuple(s for s in secrets if s)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        kwargs.pop("extra", None)
        self.logger.log(level, "%s", scrub(text, self._secrets), **kwargs)

    def __repr__(self) -> str:
        return f"ScrubbingLogger({self.logger.name!r})"
