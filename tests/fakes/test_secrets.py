"""Every secret the tests use, in one place, each under a name: the secret scan (``tests/secret_scan.py``) fails an
integration test whose logs, files, Events, statuses or ``/metrics`` show any of them, and reports it by this name,
never by its value.

All of these are made up for the tests and grant nothing anywhere. A new integration test that needs a secret takes
it from here (or registers a generated one with ``secret_scan.register``).
"""

from __future__ import annotations

# The fake exchange's account (tests/fakes/fake_exchange_server.py checks requests are signed with these).
FAKE_API_KEY = "fakeKey0123456789abcdefFAKEKEY"
FAKE_SECRET = "fakeSecret0123456789abcdefFAKESECRET"
WRONG_SECRET = "wrongSecret-7f3c9a1b2d4e6f80a5c3"  # a secret the fake exchange refuses
CCXT_WRONG_SECRET = "wrongSecret0123456789abcdefWRONG"
CCXT_OTHER_WRONG_SECRET = "anotherWrongSecret0123456789"

# slsbot up's admin API roles, as the supervisor integration tests start it.
SUPERVISOR_ADMIN_TOKEN = "it-admin-3Vb8Nq1Lk6Hs4Df9Gw2P"
SUPERVISOR_OPERATOR_TOKEN = "it-operator-5Jq9Wm2Xv7Lc3Rt8Nb4Z"
SUPERVISOR_VIEWER_TOKEN = "it-viewer-8Hs2Kd6Pf1Gy9Uw3Ea7Q"

# The admin API's roles in tests/integration/admin_api.
ADMIN_API_ADMIN_TOKEN = "it-admin-6Tg2Hj9Kl4Zx8Cv3Bn7M"
ADMIN_API_VIEWER_TOKEN = "it-viewer-2Qw5Er8Ty1Ui4Op7As0D"

# Control keys the runtimes' tokens are derived from (slsbot up's, the operator's).
SUPERVISOR_CONTROL_KEY = "supervisor-test-control-key-6c1d9e2f4a7b"
ACCOUNT_RISK_CONTROL_KEY = "account-risk-test-control-key-5e8a1c3b9d"
SOPS_TEST_CONTROL_KEY = "sops-test-control-key-4b8e1f6a9c2d"
OPERATOR_CONTROL_KEY = "it-operator-control-key-0f9e8d7c6b5a49382716"
OPERATOR_PREVIOUS_CONTROL_KEY = "it-operator-previous-control-key-3e5a7c9b1d"  # a rotation's replaced key
MUST_NOT_LEAK_ADMIN_TOKEN = "must-not-leak-0123456789"  # in the supervisor's environment, never a runtime's

# Runtime control tokens (what the control plane passes in SLSBOT_RUNTIME_TOKEN).
RUNTIME_TOKEN = "it-runtime-token-6Vd2Qm8Zs4Lp0Xk7"
LIVE_RUNTIME_TOKEN = "live-it-runtime-token-3Fq8Wn5Jx1Rb"
HEALTH_RUNTIME_TOKEN = "health-it-runtime-token-8Hq2Lx5Vb"
FAULTS_RUNTIME_TOKEN = "faults-it-runtime-token-8Hd3Kq1Zm5Vt"
CLIENT_RUNTIME_TOKEN = "runtime-token-Zq8Lm3Vx7Pk2Wd9N"

# Notification receivers' webhook URLs (they carry a token).
WEBHOOK_TOKEN = "T0KEN-s3cr3t-9f8e7d"
SLACK_WEBHOOK_URL = "https://hooks.example/services/T000/B000/s3cr3t"

# Exchange credentials kept in a sops-encrypted Secret (tests of slsbot up -f DIR with sops).
SOPS_EXCHANGE_API_KEY = "sopsKey-4Rt7Yu1Io9Pa3Sd6Fg2H"
SOPS_EXCHANGE_SECRET = "sopsSecret-8Jk5Lz2Xc7Vb4Nm1Qw6E"
SOPS_WEBHOOK_URL = "https://hooks.example/services/T111/B111/sops-9Kd3Fm6Pq"

# The age identity the sops tests encrypt to (age-keygen output, made for the tests).
AGE_RECIPIENT = "age12pfd5c7yld8zt9pts4hldcp5z93mte5vqwlj5dt9te2pakufdg9qdtth3v"
AGE_SECRET_KEY = "AGE-SECRET-KEY-186WUQ70P4FMLQFR0KQ03QJDNMM9TZ7D08A9CVXWTW7S0QTPX0WVQ8JKLS0"
# A second identity that is not a recipient of anything: decrypting with it fails.
OTHER_AGE_SECRET_KEY = "AGE-SECRET-KEY-15VUTTG6XSX3SGF35K7PDTHY4WVUSUYZDWEZU7W5G73Y0LYVSWQ7QY26N92"

# Placeholders the other parts of issue 10 will use (restic repositories, Vault).
RESTIC_PASSWORD = "restic-it-password-5Gh8Jk2Lm7Np"
VAULT_TOKEN = "hvs.it-vault-token-3Qw9Er6Ty1Ui"


NOT_SECRET = frozenset({"AGE_RECIPIENT"})  # a public key: it is in every file encrypted to it


def known_secrets() -> dict[str, str]:
    """Every secret above, by name (the upper-case string constants but ``NOT_SECRET``)."""
    return {
        name: value
        for name, value in globals().items()
        if name.isupper() and isinstance(value, str) and name not in NOT_SECRET
    }


# Issue 10's integration tests (backups, rotation of keys and tokens, Vault, the cluster admin API).
BACKUP_SERVICE_RESTIC_PASSWORD = "restic-pw-test-7Qx2vLr9"
BACKUP_RESTORE_RESTIC_PASSWORD = "restic-pw-test-Cm4n8Tq1"
RESTORE_RESTART_RESTIC_PASSWORD = "restic-pw-test-Rv7d3Np0"
LOCAL_BACKUPS_RESTIC_PASSWORD = "restic-pw-test-Hs5w2Ke6"
ROTATION_ADMIN_TOKEN = "it-rotation-admin-4Kd9Qx2Vn7Lm"
KEY_ROTATION_NEW_API_KEY = "rotatedKey0123456789abcdefROTATEDKEY"
KEY_ROTATION_NEW_SECRET = "rotatedSecret0123456789abcdefROTATEDSECRET"
KEY_ROTATION_THIRD_API_KEY = "thirdKey0123456789abcdefTHIRDKEY"
KEY_ROTATION_THIRD_SECRET = "thirdSecret0123456789abcdefTHIRDSECRET"
KEY_ROTATION_REFUSED_API_KEY = "refusedKey0123456789abcdefREFUSEDKEY"
KEY_ROTATION_REFUSED_SECRET = "refusedSecret0123456789abcdefREFUSEDSECRET"
ACCESS_REVIEW_ALICE_TOKEN = "it-k8s-alice-token-6b5a4c3d"
ACCESS_REVIEW_ROBOT_TOKEN = "it-k8s-robot-token-1f2e3d4c"
CLUSTER_API_VIEWER_TOKEN = "it-k8s-viewer-token-7d1c0b9a"
CLUSTER_API_OPERATOR_TOKEN = "it-k8s-operator-token-5e4f3a2b"
CLUSTER_API_ADMIN_TOKEN = "it-k8s-admin-token-c3b2a190"
CLUSTER_API_LATE_TOKEN = "it-k8s-late-token-0a9b8c7d"
REAL_RUNTIME_NEW_CONTROL_KEY = "it-real-runtime-control-key-rotated-7c6b5a4f3e2d"
OPERATOR_KMOCK_NEW_CONTROL_KEY = "it-operator-control-key-rotated-5e4d3c2b1a0f9e8d"
HARDENING_OPERATOR_TOKEN = "hs-operator-5Tb8Nc1Md4Ve7Wf"
VAULT_ADAPTER_API_KEY_V1 = "vaultKeyOne0123456789abcdefVKONE"
VAULT_ADAPTER_SECRET_V1 = "vaultSecretOne0123456789abcdefVSONE"
VAULT_ADAPTER_API_KEY_V2 = "vaultKeyTwo0123456789abcdefVKTWO"
VAULT_ADAPTER_SECRET_V2 = "vaultSecretTwo0123456789abcdefVSTWO"
VAULT_ADAPTER_JWT = "eyJhbGciOiJSUzI1NiJ9.fake-service-account-jwt.c2lnbmF0dXJl"
VAULT_ADAPTER_SECRET_ID = "approle-secret-id-5c1e9f0a-7d3b"
FUZZ_ADMIN_TOKEN = "fz-admin-8Jk3Lm6Np9Qr2St5Uv"
FUZZ_OPERATOR_TOKEN = "fz-operator-4Wx7Yz0Ab3Cd6Ef"
FUZZ_VIEWER_TOKEN = "fz-viewer-1Gh4Ij7Kl0Mn3Op6"
BACKUP_AWS_SECRET = "aws-secret-test-Zk3"
