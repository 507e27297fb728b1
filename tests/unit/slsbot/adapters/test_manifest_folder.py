"""Loading a folder of slsbot YAML: everything valid is loaded; any problem refuses the whole folder with a
message naming the file, the document and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from slsbot.adapters.manifest_folder import field_path, load_manifest_folder
from slsbot.domain.errors import InvalidSpecError

ACCOUNT = """\
apiVersion: slsbot.io/v1alpha1
kind: TradingAccount
metadata: {name: paper}
spec: {exchange: binance}
"""
STRATEGY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc}
spec:
  accountRef: {name: paper}
  symbols: [%s]
  ensemble: {members: [{name: sma, strategy: sma_cross}]}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_field_path_reads_like_the_yaml() -> None:
    assert field_path(("spec", "symbols", 0)) == "spec.symbols[0]"
    assert field_path(("spec", "ensemble", "members", 1, "weight")) == "spec.ensemble.members[1].weight"
    assert field_path(()) == "(document)"


def test_loads_every_yaml_and_yml_file_with_several_documents(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT + "---\n" + STRATEGY % "BTC/USDT")
    write(tmp_path, "b.yml", (STRATEGY % "ETH/USDT").replace("name: btc", "name: eth"))
    write(tmp_path, "notes.txt", "not yaml: [")
    write(tmp_path, ".hidden.yaml", "garbage: [")
    resources = load_manifest_folder(tmp_path)
    assert [(r.kind, r.name) for r in resources] == [
        ("TradingAccount", "paper"),
        ("Strategy", "btc"),
        ("Strategy", "eth"),
    ]


def test_the_committed_local_examples_load(repo_root: Path) -> None:
    resources = load_manifest_folder(repo_root / "examples" / "local")
    names = {(r.kind, r.name) for r in resources}
    assert {("Strategy", "btc-trend"), ("Strategy", "eth-trend"), ("TradingAccount", "paper-binance")} <= names


def test_a_bad_field_names_file_document_and_field_and_loads_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT)
    bad = write(tmp_path, "b.yaml", ACCOUNT.replace("paper", "other") + "---\n" + STRATEGY % "btc-usdt")
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(tmp_path)
    message = str(caught.value)
    assert f"{bad}, document 2 (Strategy btc): spec.symbols[0]:" in message
    assert "nothing loaded" in message
    assert "btc-usdt" not in message  # values are not echoed back


def test_an_unknown_field_and_an_unknown_kind_are_both_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT.replace("spec: {exchange: binance}", "spec: {exchange: binance, colour: red}"))
    write(tmp_path, "b.yaml", "apiVersion: slsbot.io/v1alpha1\nkind: Robot\nmetadata: {name: r2}\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(tmp_path)
    message = str(caught.value)
    assert "2 problem(s)" in message
    assert "a.yaml, document 1 (TradingAccount paper): spec.colour: Extra inputs are not permitted" in message
    assert "b.yaml, document 1 (Robot r2): kind: 'Robot' is not a slsbot kind" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT + "---\nkind: [unclosed\n")
    with pytest.raises(InvalidSpecError, match=r"a\.yaml: line \d+, column \d+: not valid YAML"):
        load_manifest_folder(tmp_path)


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "- just\n- a list\n")
    with pytest.raises(InvalidSpecError, match="document 1: a document must be a mapping"):
        load_manifest_folder(tmp_path)


def test_duplicate_names_are_refused_naming_both_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT)
    write(tmp_path, "b.yaml", ACCOUNT)
    with pytest.raises(InvalidSpecError, match=r"b\.yaml: TradingAccount default/paper is also defined in .*a\.yaml"):
        load_manifest_folder(tmp_path)


def test_missing_or_empty_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="not a folder"):
        load_manifest_folder(tmp_path / "nope")
    with pytest.raises(InvalidSpecError, match=r"no \*\.yaml"):
        load_manifest_folder(tmp_path)
    write(tmp_path, "empty.yaml", "---\n")
    with pytest.raises(InvalidSpecError, match="hold no slsbot objects"):
        load_manifest_folder(tmp_path)
