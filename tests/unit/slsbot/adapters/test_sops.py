"""Which files are sops files, and the command line that decrypts one (the subprocess itself:
tests/integration/supervisor/test_sops_folder.py)."""

from __future__ import annotations

from slsbot.adapters.sops import SopsCli, is_sops_document, is_sops_file, sops_message


def test_a_document_with_a_top_level_sops_mapping_is_encrypted() -> None:
    assert is_sops_document({"kind": "Secret", "sops": {"mac": "ENC[...]", "version": "3.11.0"}})
    assert not is_sops_document({"kind": "Secret", "stringData": {"sops": "a key named sops"}})
    assert not is_sops_document({"kind": "Secret", "sops": "a string, not sops's block"})
    assert not is_sops_document(["sops"])
    assert is_sops_file([None, {"kind": "Strategy"}, {"sops": {"version": "3.11.0"}}])
    assert not is_sops_file([{"kind": "Strategy"}])


def test_decryption_reads_stdin_and_writes_yaml_to_stdout() -> None:
    assert SopsCli().arguments() == [
        "sops",
        "--decrypt",
        "--input-type",
        "yaml",
        "--output-type",
        "yaml",
        "/dev/stdin",
    ]
    assert SopsCli(command=("/opt/sops/bin/sops", "--verbose")).arguments()[:3] == [
        "/opt/sops/bin/sops",
        "--verbose",
        "--decrypt",
    ]


def test_sops_message_is_one_shortened_line() -> None:
    assert (
        sops_message(b"Failed to get the data key\n\nGroup 0: FAILED\n") == "Failed to get the data key Group 0: FAILED"
    )
    assert sops_message(b"") == "no message"
    assert len(sops_message(b"x " * 2000)) == 600
