"""The runtime's one exception tree. Adapters convert library errors (ccxt, sqlite, user code) into these
at their boundary; each docstring says what the runtime does when it is raised."""

from __future__ import annotations


class SlsbotRuntimeError(Exception):
    """Base of every runtime error."""


class ConfigError(SlsbotRuntimeError):
    """The runtime config is invalid. The runtime exits with code 2 and the message names the field."""


class DataError(SlsbotRuntimeError):
    """Market data is missing, malformed or out of order. The feed stops; the runtime reports Degraded."""


class StaleDataError(DataError):
    """No new candle within the staleness limit. The feed reconnects with backoff; no new entries meanwhile."""


class ExchangeError(SlsbotRuntimeError):
    """Base of errors raised by an exchange adapter."""


class TemporaryExchangeError(ExchangeError):
    """Network trouble, rate limit or exchange maintenance. The call is retried with backoff and jitter."""


class RateLimited(TemporaryExchangeError):
    """The exchange asked us to slow down. Retried after the backoff or after the exchange's ``Retry-After``
    (``retry_after_s``, when it sent one), whichever is longer: never faster."""

    def __init__(self, *args: object, retry_after_s: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after_s = retry_after_s


class ExchangeUnavailable(TemporaryExchangeError):
    """The exchange cannot be reached. Retried; the runtime reports Degraded while it lasts."""


class CredentialsUnavailable(TemporaryExchangeError):
    """The secret store (Vault) cannot answer now: sealed, 5xx, unreachable. Connecting is retried; during a running
    rotation the key in use stays and the next check tries again."""


class PermanentExchangeError(ExchangeError):
    """A request the exchange will never accept. Not retried."""


class AuthenticationError(PermanentExchangeError):
    """Credentials are missing or wrong. The runtime halts trading and reports it; it never logs the keys."""


class OrderRejected(PermanentExchangeError):
    """The exchange refused this order (size, price, balance). The order is marked rejected with the reason."""


class InsufficientFunds(OrderRejected):
    """Not enough balance for the order. Marked rejected; the risk manager sizes the next one from balances."""


class OrderNotFound(PermanentExchangeError):
    """The exchange does not know this order. During reconciliation a pending intent is then resent."""


class StrategyError(SlsbotRuntimeError):
    """User strategy code raised or returned nonsense. The member's signal is treated as flat for this
    candle and the error is counted; the loop goes on."""


class RiskRejection(SlsbotRuntimeError):
    """The risk manager refused an order. Recorded with its reason; nothing is sent."""


class StateError(SlsbotRuntimeError):
    """The persisted state is unreadable or disagrees with itself. The runtime refuses to trade."""
