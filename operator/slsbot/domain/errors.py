"""The control plane's one exception tree. Adapters convert library errors into these at their edge; the
interfaces convert these into kopf errors (handlers) and HTTP errors (routes). Each docstring says what happens."""

from __future__ import annotations


class SlsbotError(Exception):
    """Base of every control-plane error."""


class InvalidSpecError(SlsbotError):
    """A spec is invalid. Reported as Ready=False/InvalidSpec with the field named; not retried until it changes."""


class ConflictError(SlsbotError):
    """Someone else changed the object first. The reconcile is requeued at once, never a crash."""


class BackendUnavailable(SlsbotError):
    """The Kubernetes API or the process table could not be reached. Requeued with backoff."""


class RuntimeUnreachable(SlsbotError):
    """A runtime did not answer its control endpoint. Requeued; the strategy is reported Degraded meanwhile."""


class NotFoundError(SlsbotError):
    """The named object does not exist. HTTP 404 in the admin API."""


class PermissionDenied(SlsbotError):
    """The caller's role does not allow the action. HTTP 403 in the admin API; audited."""


class NotificationFailed(SlsbotError):
    """A notification receiver did not take a message. Retried with backoff when ``retryable`` (a 5xx, a 429, no
    answer), after ``retry_after`` seconds when the receiver said so; dropped and counted otherwise. Its message
    never holds the receiver's URL (it carries a token): it names the receiver."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
