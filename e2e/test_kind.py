"""End to end on a kind cluster: build the image, load it into kind, install the CRDs and the operator, apply
examples/cluster, wait for a runtime pod to be Ready and its Strategy to report Ready, delete the Strategy and see
everything it owned cleaned up.

Needs Docker, kind and kubectl on PATH; skips (saying which is missing) otherwise. Uses the kind cluster named by
``SLSBOT_E2E_KIND_CLUSTER`` (CI creates it with helm/kind-action), else creates ``slsbot-e2e`` and deletes it after.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parent.parent
IMAGE = "ghcr.io/slsbot/runtime:0.1.0"  # the API's default runtime image, and deploy/operator's image
NAMESPACE = "slsbot"
STRATEGY = "btc-trend"
RUNTIME = f"slsbot-runtime-{STRATEGY}"


@dataclass(frozen=True)
class Kind:
    name: str

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def kubectl(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run("kubectl", "--context", self.context, *args, check=check, timeout=timeout)

    def get_json(self, *args: str) -> dict[str, Any] | None:
        result = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None


def run(*cmd: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def eventually(check: Callable[[], Any], *, within: float, what: str, every: float = 3.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f}s: {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def kind() -> Iterator[Kind]:
    missing = [tool for tool in ("docker", "kind", "kubectl") if shutil.which(tool) is None]
    if missing:
        reason = f"e2e needs docker, kind and kubectl on PATH; missing: {', '.join(missing)}"
        print(reason)
        pytest.skip(reason)
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        reason = "e2e needs a running Docker daemon (docker info failed)"
        print(reason)
        pytest.skip(reason)
    name = os.environ.get("SLSBOT_E2E_KIND_CLUSTER", "")
    created = False
    if not name:
        name = "slsbot-e2e"
        if name not in run("kind", "get", "clusters").stdout.split():
            run("kind", "create", "cluster", "--name", name, "--wait", "180s")
            created = True
    try:
        yield Kind(name)
    finally:
        if created:
            run("kind", "delete", "cluster", "--name", name, check=False)


def _condition(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    for condition in ((body or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == type:
            return condition
    return {}


def _dump_diagnostics(kind: Kind) -> None:
    for args in (
        ("get", "strategies,deployments,pods,pvc,events", "-n", NAMESPACE, "-o", "wide"),
        ("logs", "-n", "slsbot-system", "deploy/slsbot-operator", "--tail", "200"),
        ("logs", "-n", NAMESPACE, f"deploy/{RUNTIME}", "--tail", "100"),
        ("describe", "strategy", STRATEGY, "-n", NAMESPACE),
    ):
        result = kind.kubectl(*args, check=False)
        print(result.stdout, result.stderr)


def test_examples_run_on_kind_and_a_deleted_strategy_is_drained_and_cleaned_up(kind: Kind) -> None:
    run("docker", "build", "-t", IMAGE, ".", timeout=1800)
    run("kind", "load", "docker-image", IMAGE, "--name", kind.name, timeout=600)
    try:
        kind.kubectl("apply", "-f", "crds/")
        kind.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
        kind.kubectl("apply", "-f", "deploy/operator/00-namespace.yaml")
        # The operator's control master key is not in deploy/operator on purpose (a committed key would be the
        # same in every cluster): each installation creates its own, as deploy/operator/40-deployment.yaml says.
        kind.kubectl(
            "-n", "slsbot-system", "create", "secret", "generic", "slsbot-operator-control-key",
            f"--from-literal=key={secrets.token_hex(32)}",
        )  # fmt: skip
        kind.kubectl("apply", "-f", "deploy/operator/")
        kind.kubectl("-n", "slsbot-system", "rollout", "status", "deploy/slsbot-operator", "--timeout=300s")
        kind.kubectl("apply", "-f", "examples/cluster/")

        deployment = eventually(
            lambda: kind.get_json("deployment", RUNTIME, "-n", NAMESPACE), within=120, what=f"Deployment {RUNTIME}"
        )
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        assert deployment["metadata"]["ownerReferences"][0]["kind"] == "Strategy"
        # Only the operator and Prometheus may reach the runtime's port; the Strategy turning Ready below shows
        # that the operator still reaches it where the network plugin enforces the policy (kindnet since v0.24).
        policy = kind.get_json("networkpolicy", RUNTIME, "-n", NAMESPACE)
        assert policy is not None and policy["metadata"]["ownerReferences"][0]["kind"] == "Strategy"
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        eventually(
            lambda: (kind.get_json("pods", "-n", NAMESPACE, "-l", f"slsbot.io/strategy={STRATEGY}") or {}).get("items"),
            within=120,
            what="a runtime pod",
        )
        kind.kubectl(
            "-n",
            NAMESPACE,
            "wait",
            "--for=condition=Ready",
            "pod",
            "-l",
            f"slsbot.io/strategy={STRATEGY}",
            "--timeout=600s",
            timeout=660,
        )
        ready = eventually(
            lambda: (
                body
                if _condition(body := kind.get_json("strategy", STRATEGY, "-n", NAMESPACE), "Ready").get("status")
                == "True"
                else None
            ),
            within=180,
            what="Strategy Ready=True",
        )
        assert ready["status"]["phase"] in ("Running", "Paused")

        kind.kubectl("-n", NAMESPACE, "delete", "strategy", STRATEGY, "--wait=true", "--timeout=300s", timeout=360)
        for kind_name in ("deployment", "service", "configmap", "pvc", "networkpolicy"):
            eventually(
                lambda kind_name=kind_name: kind.get_json(kind_name, RUNTIME, "-n", NAMESPACE) is None,
                within=180,
                what=f"{kind_name} {RUNTIME} removed",
            )
        events = kind.get_json("events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={STRATEGY}") or {}
        reasons = [e["reason"] for e in events.get("items", [])]
        assert "Draining" in reasons, reasons
    except BaseException:
        _dump_diagnostics(kind)
        raise
    finally:
        kind.kubectl(
            "delete", "-f", "examples/cluster/", "--ignore-not-found", "--timeout=300s", check=False, timeout=360
        )
        kind.kubectl("delete", "-f", "deploy/operator/", "--ignore-not-found", "--timeout=120s", check=False)
        kind.kubectl("delete", "-f", "crds/", "--ignore-not-found", "--timeout=120s", check=False)
