"""`slsbot crds`: writes the generated files, rewrites only what changed, and --check lists what is stale."""

from __future__ import annotations

from slsbot.domain.api_reference import render_api_reference
from slsbot.domain.crds import generated_crd_files
from slsbot.interfaces.cli import main


def _run(tmp_path, *extra: str) -> int:
    return main(["crds", "--output", str(tmp_path / "crds"), "--docs", str(tmp_path / "docs" / "api.md"), *extra])


def test_writes_every_crd_and_the_docs(tmp_path, capsys):
    assert _run(tmp_path) == 0
    written = {path.name: path.read_text() for path in (tmp_path / "crds").iterdir()}
    assert written == generated_crd_files()
    assert (tmp_path / "docs" / "api.md").read_text() == render_api_reference()
    assert "wrote" in capsys.readouterr().out


def test_check_passes_on_fresh_output_and_writes_nothing(tmp_path, capsys):
    _run(tmp_path)
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()}
    assert _run(tmp_path, "--check") == 0
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()} == before
    assert "up to date" in capsys.readouterr().out


def test_check_lists_stale_missing_and_leftover_files_and_fails(tmp_path, capsys):
    _run(tmp_path)
    crds = tmp_path / "crds"
    (crds / "strategies.slsbot.io.yaml").write_text("# edited by hand\n")
    (crds / "riskpolicies.slsbot.io.yaml").unlink()
    (crds / "bots.slsbot.io.yaml").write_text("# an old plural\n")
    capsys.readouterr()
    assert _run(tmp_path, "--check") == 1
    err = capsys.readouterr().err
    assert f"stale: {crds / 'strategies.slsbot.io.yaml'}" in err
    assert f"missing: {crds / 'riskpolicies.slsbot.io.yaml'}" in err
    assert f"stale: {crds / 'bots.slsbot.io.yaml'} (no kind generates it)" in err
    assert "make crds" in err
    assert "tradingaccounts" not in err
    assert (crds / "strategies.slsbot.io.yaml").read_text() == "# edited by hand\n"


def test_a_write_repairs_only_what_is_stale(tmp_path, capsys):
    _run(tmp_path)
    crds = tmp_path / "crds"
    (crds / "strategies.slsbot.io.yaml").write_text("# edited by hand\n")
    (crds / "bots.slsbot.io.yaml").write_text("# an old plural\n")
    untouched = (crds / "experiments.slsbot.io.yaml").stat().st_mtime_ns
    capsys.readouterr()
    assert _run(tmp_path) == 0
    out = capsys.readouterr().out
    assert out.count("wrote") == 1 and "strategies.slsbot.io.yaml" in out
    assert not (crds / "bots.slsbot.io.yaml").exists()
    assert (crds / "experiments.slsbot.io.yaml").stat().st_mtime_ns == untouched
    assert _run(tmp_path, "--check") == 0


def test_docs_are_optional(tmp_path):
    assert main(["crds", "--output", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(generated_crd_files())
