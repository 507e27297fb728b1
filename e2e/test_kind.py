"""End to end on a kind cluster: build the image and load it into kind, then install the operator two ways.

- From deploy/operator (kubectl apply): apply examples/cluster, wait for a runtime pod to be Ready and its Strategy to
  report Ready, delete the Strategy and see everything it owned cleaned up.
- From the Helm chart (charts/slsbot, `helm install`): the control key it generated survives `helm upgrade`, every
  Strategy of examples/cluster turns Ready and trades on paper, a killed runtime pod is replaced and its Strategy is
  Ready again, a deleted Strategy is drained by its finalizer, and `helm uninstall` leaves the control key.

Needs Docker, kind and kubectl on PATH (and helm for the chart: `make helm`); skips, saying which is missing,
otherwise. Uses the kind cluster named by ``SLSBOT_E2E_KIND_CLUSTER`` (CI creates it with helm/kind-action), else
creates ``slsbot-e2e`` and deletes it after. `-k helm` runs only the chart's test, `-k "not helm"` only the other.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parent.parent
IMAGE = "ghcr.io/slsbot/runtime:0.1.0"  # the API's default runtime image, and deploy/operator's image
NAMESPACE = "slsbot"
STRATEGY = "btc-trend"
RUNTIME = f"slsbot-runtime-{STRATEGY}"
OPERATOR_NAMESPACE = "slsbot-system"
CONTROL_KEY_SECRET = "slsbot-operator-control-key"


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


@pytest.fixture(scope="module")
def image(kind: Kind) -> str:
    """The one image of the operator and the runtimes, built once and loaded into the kind cluster."""
    run("docker", "build", "-t", IMAGE, ".", timeout=1800)
    run("kind", "load", "docker-image", IMAGE, "--name", kind.name, timeout=600)
    return IMAGE


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


def _delete_and_see_it_drained(kind: Kind, strategy: str) -> None:
    """Delete a Strategy: its finalizer drains the runtime (a Draining event) and removes everything it owned."""
    runtime = f"slsbot-runtime-{strategy}"
    kind.kubectl("-n", NAMESPACE, "delete", "strategy", strategy, "--wait=true", "--timeout=300s", timeout=360)
    for kind_name in ("deployment", "service", "configmap", "pvc", "networkpolicy"):
        eventually(
            lambda kind_name=kind_name: kind.get_json(kind_name, runtime, "-n", NAMESPACE) is None,
            within=180,
            what=f"{kind_name} {runtime} removed",
        )
    events = kind.get_json("events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={strategy}") or {}
    reasons = [e["reason"] for e in events.get("items", [])]
    assert "Draining" in reasons, reasons


def test_examples_run_on_kind_and_a_deleted_strategy_is_drained_and_cleaned_up(kind: Kind, image: str) -> None:
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

        _delete_and_see_it_drained(kind, STRATEGY)
    except BaseException:
        _dump_diagnostics(kind)
        raise
    finally:
        kind.kubectl(
            "delete", "-f", "examples/cluster/", "--ignore-not-found", "--timeout=300s", check=False, timeout=360
        )
        kind.kubectl("delete", "-f", "deploy/operator/", "--ignore-not-found", "--timeout=120s", check=False)
        kind.kubectl("delete", "-f", "crds/", "--ignore-not-found", "--timeout=120s", check=False)


def _helm() -> str:
    found = shutil.which("helm", path=str(Path(sys.executable).parent)) or shutil.which("helm")
    if found is None:
        reason = "the chart's e2e needs helm: `make helm` installs it into .venv/bin (and none is on PATH)"
        print(reason)
        pytest.skip(reason)
    return found


def _examples(kind_name: str) -> list[dict[str, Any]]:
    paths = sorted((REPO / "examples" / "cluster").glob("*.yaml"))
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == kind_name]


def _control_key_digest(kind: Kind) -> str:
    """A digest of the operator's control key: the test compares keys without ever printing one."""
    secret = kind.get_json("secret", CONTROL_KEY_SECRET, "-n", OPERATOR_NAMESPACE)
    assert secret is not None, f"no Secret {CONTROL_KEY_SECRET} in {OPERATOR_NAMESPACE}"
    key = base64.b64decode(secret["data"]["key"])
    assert len(key) >= 32, "the generated control key is too short"
    return hashlib.sha256(key).hexdigest()


def _strategy_with(kind: Kind, name: str, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    body = kind.get_json("strategy", name, "-n", NAMESPACE)
    return body if body is not None and check(body) else None


def _ready(body: dict[str, Any]) -> bool:
    return _condition(body, "Ready").get("status") == "True"


def _heartbeat_after(moment: datetime) -> Callable[[dict[str, Any]], bool]:
    def check(body: dict[str, Any]) -> bool:
        heartbeat = (body.get("status") or {}).get("lastHeartbeat")
        return _ready(body) and heartbeat is not None and datetime.fromisoformat(heartbeat) > moment

    return check


def test_the_helm_chart_runs_every_example_on_paper_heals_a_killed_runtime_and_drains(kind: Kind, image: str) -> None:
    helm = _helm()
    chart = str(REPO / "charts" / "slsbot")
    release = ("--namespace", OPERATOR_NAMESPACE, "--kube-context", kind.context)
    try:
        # Install: CRDs from the chart's crds/, the operator Ready (--wait), its control key generated ...
        run(helm, "install", "slsbot", chart, *release, "--create-namespace", "--wait", "--timeout", "5m", timeout=420)
        installed_key = _control_key_digest(kind)
        # ... and kept by an upgrade (the chart renders the Secret it finds again).
        run(helm, "upgrade", "slsbot", chart, *release, "--wait", "--timeout", "5m", timeout=420)
        key_kept = _control_key_digest(kind) == installed_key
        assert key_kept, "helm upgrade replaced the operator's control key"

        kind.kubectl("apply", "-f", "examples/cluster/")
        paper = {doc["metadata"]["name"] for doc in _examples("TradingAccount") if doc["spec"]["mode"] == "paper"}
        strategies = _examples("Strategy")
        assert strategies and all(s["spec"]["accountRef"]["name"] in paper for s in strategies)
        for strategy in strategies:
            name = strategy["metadata"]["name"]
            eventually(lambda name=name: _strategy_with(kind, name, _ready), within=900, what=f"{name} Ready=True")
        # Trading on paper: a Strategy with capital of its own takes trades (Trading=True) and reports its equity.
        for strategy in strategies:
            if strategy["spec"].get("allocationPercent", 100) > 0:
                name = strategy["metadata"]["name"]
                body = eventually(
                    lambda name=name: _strategy_with(
                        kind, name, lambda b: _condition(b, "Trading").get("status") == "True"
                    ),
                    within=600,
                    what=f"{name} Trading=True",
                )
                assert body["status"]["equity"] > 0, body["status"]

        # Kill a runtime pod: its Deployment replaces it, and the Strategy is Ready again on a new heartbeat.
        selector = f"slsbot.io/strategy={STRATEGY}"
        pods = (kind.get_json("pods", "-n", NAMESPACE, "-l", selector) or {}).get("items") or []
        (killed,) = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
        killed_at = datetime.now(UTC)
        kind.kubectl("-n", NAMESPACE, "delete", "pod", killed["metadata"]["name"], "--wait=false")
        eventually(
            lambda: [
                pod
                for pod in (kind.get_json("pods", "-n", NAMESPACE, "-l", selector) or {}).get("items") or []
                if pod["metadata"]["uid"] != killed["metadata"]["uid"]
                and _condition(pod, "Ready").get("status") == "True"
            ],
            within=600,
            what=f"a new {STRATEGY} runtime pod Ready",
        )
        eventually(
            lambda: _strategy_with(kind, STRATEGY, _heartbeat_after(killed_at)),
            within=420,
            what=f"{STRATEGY} Ready again with a heartbeat after its pod was killed",
        )

        _delete_and_see_it_drained(kind, STRATEGY)

        # Uninstall (the Strategies first: their finalizers need the operator): the control key is left behind.
        kind.kubectl("delete", "-f", "examples/cluster/", "--ignore-not-found", "--timeout=300s", timeout=360)
        run(helm, "uninstall", "slsbot", *release, "--wait", "--timeout", "5m", timeout=420)
        assert kind.get_json("deployment", "slsbot-operator", "-n", OPERATOR_NAMESPACE) is None
        assert kind.get_json("secret", CONTROL_KEY_SECRET, "-n", OPERATOR_NAMESPACE) is not None, "key not kept"
    except BaseException:
        _dump_diagnostics(kind)
        raise
    finally:
        kind.kubectl(
            "delete", "-f", "examples/cluster/", "--ignore-not-found", "--timeout=300s", check=False, timeout=360
        )
        run(helm, "uninstall", "slsbot", *release, "--ignore-not-found", "--wait", check=False, timeout=420)
        kind.kubectl("delete", "namespace", OPERATOR_NAMESPACE, "--ignore-not-found", "--timeout=120s", check=False)
        kind.kubectl("delete", "-f", "charts/slsbot/crds/", "--ignore-not-found", "--timeout=120s", check=False)
