"""The parts the one-shot pods share (the backup, report and restore builders' tests hold the whole manifests)."""

from __future__ import annotations

from slsbot.adapters.kubernetes.job_pods import (
    claim,
    runner_pod,
    secret_files,
    shortened_name,
    state_claims,
    volumes_and_mounts,
)


def test_a_long_name_keeps_its_head_and_a_digest_of_the_whole() -> None:
    assert shortened_name("short", 10) == "short"
    long = shortened_name("a" * 30 + "-b", 20)
    assert len(long) == 20 and long.startswith("a" * 11 + "-")
    assert long != shortened_name("a" * 30 + "-c", 20)


def test_a_secret_is_files_read_only_under_its_namespace_folder() -> None:
    volume, mount = secret_files("trading", "pw", "restic")
    assert volume == {"name": "pw", "secret": {"secretName": "restic", "defaultMode": 0o400}}
    assert mount == {"name": "pw", "mountPath": "/var/run/slsbot/secrets/trading/restic", "readOnly": True}


def test_state_claims_are_read_only_a_restore_claim_is_not() -> None:
    volumes, mounts = volumes_and_mounts(state_claims([("eth", "c-eth"), ("btc", "c-btc")]))
    assert [(v["name"], v["persistentVolumeClaim"]) for v in volumes] == [
        ("state-0", {"claimName": "c-eth", "readOnly": True}),
        ("state-1", {"claimName": "c-btc", "readOnly": True}),
    ]
    assert [(m["mountPath"], m["readOnly"]) for m in mounts] == [("/state/eth", True), ("/state/btc", True)]
    volume, mount = claim("state", "c", "/state", read_only=False)
    assert "readOnly" not in volume["persistentVolumeClaim"] and "readOnly" not in mount


def test_a_pod_says_only_what_it_is_given_about_its_service_account() -> None:
    bare = runner_pod({"name": "c"}, [])
    assert "serviceAccountName" not in bare and "automountServiceAccountToken" not in bare and "affinity" not in bare
    assert runner_pod({"name": "c"}, [], automount_token=False)["automountServiceAccountToken"] is False
    assert bare["restartPolicy"] == "Never" and bare["securityContext"] == {"fsGroup": 10001}
