"""What the daily report reads of a cluster: a namespace's TradingAccounts, Strategies and RiskPolicies, parsed into the
API models (one the models refuse is left out, as the operator leaves it out). Read-only: the report's ServiceAccount
needs ``get`` and ``list`` on these, on ``incidents`` and on its receivers' Secrets, nothing more."""

from __future__ import annotations

import logging
from typing import Any

from slsbot.adapters.kubernetes.client import KubernetesApi, resource_path
from slsbot.adapters.kubernetes.objects import parse_object
from slsbot.api import GROUP, VERSION, RiskPolicy, Strategy, TradingAccount
from slsbot.domain.errors import InvalidSpecError

log = logging.getLogger(__name__)


def namespace_objects(api: KubernetesApi, namespace: str) -> list[Any]:
    found: list[Any] = []
    for model in (TradingAccount, Strategy, RiskPolicy):
        for body in api.list(resource_path(GROUP, VERSION, model.kind_info.plural, namespace=namespace)):
            try:
                found.append(parse_object(model, body))
            except (InvalidSpecError, KeyError) as exc:
                log.info("daily report: skipping a %s in %s: %s", model.kind_info.kind, namespace, exc)
    return found
