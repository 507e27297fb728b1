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
    resources = load_manifest_folder(tmp_path).resources
    assert [(r.kind, r.name) for r in resources] == [
        ("TradingAccount", "paper"),
        ("Strategy", "btc"),
        ("Strategy", "eth"),
    ]


def test_the_committed_local_examples_load(repo_root: Path) -> None:
    resources = load_manifest_folder(repo_root / "examples" / "local").resources
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


REPLAY = """\
apiVersion: slsbot.io/v1alpha1
kind: Strategy
metadata: {name: btc}
spec:
  accountRef: {name: paper}
  symbols: [%(symbols)s]
  ensemble: {members: [{name: sma, strategy: sma_cross}]}
  marketData: {source: %(source)s, dataDir: %(data)s}
"""


def replay(data: str, symbols: str = "BTC/USDT", source: str = "replay") -> str:
    return REPLAY % {"data": data, "symbols": symbols, "source": source}


def candles(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")  # discovery goes by name; the runtime reads them
    return folder


def test_a_relative_data_dir_is_the_manifests_not_the_working_directorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = candles(tmp_path / "data" / "binance", "BTC_USDT-1h.feather")
    manifests = tmp_path / "bots" / "local"
    manifests.mkdir(parents=True)
    write(manifests, "a.yaml", ACCOUNT + "---\n" + replay("../../data/binance"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    [_, strategy] = load_manifest_folder(Path("..") / "bots" / "local").resources
    assert strategy.spec.market_data.data_dir == str(data.resolve())


def test_an_absolute_data_dir_is_kept_and_checked(tmp_path: Path) -> None:
    data = candles(tmp_path / "data", "BTCUSDT-1h-2024-01.json", "BTCUSDT-1h-2024-02.json")
    write(tmp_path, "a.yaml", ACCOUNT + "---\n" + replay(str(data)))
    [_, strategy] = load_manifest_folder(tmp_path).resources
    assert strategy.spec.market_data.data_dir == str(data)


def test_a_missing_data_dir_is_refused_at_load_naming_file_field_and_path(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    bad = write(manifests, "a.yaml", ACCOUNT + "---\n" + replay("data/market/binance-spot-1h-2024"))
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(manifests)
    message = str(caught.value)
    resolved = manifests / "data" / "market" / "binance-spot-1h-2024"
    assert f"{bad}, document 2 (Strategy btc): spec.marketData.dataDir: {resolved} is not a folder" in message
    assert f"relative to the manifest's folder {manifests}" in message
    assert message.count("is not a folder") == 1


def test_a_symbol_without_candles_is_refused_at_load(tmp_path: Path) -> None:
    data = candles(tmp_path / "data", "BTC_USDT-1h.feather", "ETH_USDT-4h.feather")
    write(tmp_path, "a.yaml", ACCOUNT + "---\n" + replay(str(data), symbols="BTC/USDT, ETH/USDT"))
    with pytest.raises(InvalidSpecError) as caught:
        load_manifest_folder(tmp_path)
    message = str(caught.value)
    assert f"spec.marketData.dataDir: no candles for ETH/USDT 1h in {data}" in message
    assert "BTC/USDT 1h" not in message


def test_a_live_feed_needs_no_recorded_candles(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", ACCOUNT + "---\n" + replay("nowhere", source="exchange"))
    [_, strategy] = load_manifest_folder(tmp_path).resources
    assert strategy.spec.market_data.data_dir == str((tmp_path / "nowhere").resolve())
