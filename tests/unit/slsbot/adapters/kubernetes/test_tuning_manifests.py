"""The pure builders of a tuning run's Kubernetes objects, and the runner's view of a Job (no cluster)."""

from __future__ import annotations

import base64
import json

from slsbot.adapters.kubernetes.tuning_manifests import (
    build_tuning_job,
    build_tuning_plan_configmap,
    build_tuning_storage_secret,
    storage_fingerprint,
    tuning_object_name,
)
from slsbot.adapters.tuning_processes import redacted, without_password
from slsbot.api.strategy import RuntimeSettings
from slsbot.domain.tuning_plan import TuningRun

URL = "postgresql://optuna:s3cret-pw@postgres.slsbot-system.svc/optuna"


def run(parallelism: int = 3) -> TuningRun:
    return TuningRun(
        namespace="slsbot",
        experiment="btc-tuning",
        experiment_uid="uid-7",
        run=2,
        study="slsbot.btc-tuning.r2-abcd1234",
        plan={"maxTrials": 40, "searchSpace": [{"name": "sma.fast"}]},
        parallelism=parallelism,
        runtime=RuntimeSettings.model_validate(
            {"image": "ghcr.io/slsbot/runtime:0.2.0", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}
        ),
    )


def test_the_job_runs_parallelism_indexed_workers_of_the_tuned_strategys_image():
    job = build_tuning_job(run(), owner_uid="uid-7", worker_failures=3)
    assert job["metadata"]["name"] == "slsbot-tune-btc-tuning-r2" and job["metadata"]["namespace"] == "slsbot"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed",
        3,
        3,
        2,
    )
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/slsbot/runtime:0.2.0"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert container["command"] == ["python", "-m", "slsbot_runtime.tuning.worker"]
    assert container["args"] == [
        "--plan",
        "/etc/slsbot-tuning/plan.json",
        "--storage",
        "$(SLSBOT_STUDY_STORAGE)",
        "--study",
        "slsbot.btc-tuning.r2-abcd1234",
        "--worker-index",
        "$(JOB_COMPLETION_INDEX)",
    ]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["volumes"][0]["configMap"]["name"] == "slsbot-tune-btc-tuning-r2"
    owner = job["metadata"]["ownerReferences"]
    assert owner == [
        {
            "apiVersion": "slsbot.io/v1alpha1",
            "kind": "Experiment",
            "name": "btc-tuning",
            "uid": "uid-7",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert job["metadata"]["labels"]["slsbot.io/tuning-run"] == "2"
    assert job["metadata"]["annotations"]["slsbot.io/study"] == "slsbot.btc-tuning.r2-abcd1234"


def test_the_plan_is_a_configmap_and_the_storage_url_only_in_an_immutable_secret():
    config_map = build_tuning_plan_configmap(run(), owner_uid="uid-7")
    assert json.loads(config_map["data"]["plan.json"]) == run().plan
    secret = build_tuning_storage_secret(run(), URL, owner_uid="uid-7")
    assert secret["immutable"] is True and secret["metadata"]["name"] == "slsbot-tune-btc-tuning-storage"
    assert base64.b64decode(secret["data"]["url"]).decode() == URL
    assert secret["metadata"]["labels"]["slsbot.io/storage"] == storage_fingerprint(URL)
    job = build_tuning_job(run(), owner_uid="uid-7", worker_failures=3)
    assert "s3cret" not in json.dumps(job) + json.dumps(config_map)


def test_long_names_stay_dns_labels_and_passwords_stay_out_of_messages():
    name = tuning_object_name("x" * 60, 12)
    assert len(name) == 63 and name.startswith("slsbot-tune-xxx")
    assert redacted(URL) == "postgresql://optuna:***@postgres.slsbot-system.svc/optuna"
    assert redacted("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    said = without_password(f"could not connect to {URL}: password s3cret-pw refused", URL)
    assert "s3cret" not in said and "optuna:***@postgres" in said
