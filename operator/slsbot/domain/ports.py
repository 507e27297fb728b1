"""What the reconcile service needs from a backend. ``adapters.kubernetes`` and ``adapters.processes`` implement
``RuntimeBackend``; ``adapters.kubernetes`` implements ``CredentialSecrets``."""

from __future__ import annotations

from typing import Protocol

from slsbot.api import RuntimeConfig
from slsbot.domain.admission import SecretSeen
from slsbot.domain.plan import Action, ObservedRuntime
from slsbot.domain.resolve import ResolvedStrategy


class RuntimeBackend(Protocol):
    def render_config(self, resolved: ResolvedStrategy) -> RuntimeConfig:
        """The RuntimeConfig with this backend's state path, port, host and credentials folder."""
        ...

    def observe(self, namespace: str, name: str) -> ObservedRuntime:
        """What runs for this strategy now. Raises BackendUnavailable when it cannot tell."""
        ...

    def execute(self, namespace: str, name: str, action: Action) -> None:
        """Carry out one action. Raises ConflictError on a write conflict, RuntimeUnreachable, BackendUnavailable."""
        ...


class CredentialSecrets(Protocol):
    """What the control plane may learn of a Secret that an account names as its credentials: never its data."""

    def operators_own(self, name: str) -> bool:
        """Whether ``name`` is one of the operator's own Secrets (a runtime's control token, the operator's key)."""
        ...

    def seen(self, namespace: str, name: str) -> SecretSeen:
        """Whether the Secret exists, and its labels. Raises BackendUnavailable when it cannot tell."""
        ...
