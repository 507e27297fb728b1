"""What makes an evaluation reproducible: the data, the config, the seeds and the code it ran.

* **Data fingerprint**: SHA-256 over the name and the SHA-256 of every candle file read (each symbol's files as
  ``data.discovery`` finds them), in symbol order. It does not depend on the folder the files sit in, so the
  same files give the same fingerprint anywhere; a changed candle changes it.
* **Config**: the RuntimeConfig as read (wire names), and its SHA-256 (canonical JSON).
* **Models**: per signal model (``ml.models``), what its training depends on besides the candles: the
  scikit-learn parameters it ran with (the defaults included), its seed (``random_state``; null for a kind with
  no randomness), features, lookback, retrain schedule, horizon, embargo, calibration and block fractions.
* **Code version**: the installed package's version, and the git commit of the source tree it was loaded from
  when that is a git checkout, with ``git_dirty``: whether the code there (``SOURCE_PATHS``, new files included)
  differs from that commit; null otherwise; and the versions of the numerical libraries the results depend on
  (numpy, scikit-learn, skops) and of the models' predictor arithmetic.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from slsbot.api import RuntimeConfig
from slsbot_runtime.data.discovery import find_candle_files

PACKAGE = "slsbot"
#: What ``git_dirty`` looks at, from the top of the checkout: the code and what pins its dependencies.
SOURCE_PATHS = ("botruntime", "operator", "pyproject.toml", "uv.lock")
#: How long ``git`` may take to answer before the commit is recorded as unknown.
GIT_TIMEOUT_S = 10.0
#: The libraries whose arithmetic the results depend on (the features and metrics, the models' training).
LIBRARIES = ("numpy", "scikit-learn", "skops")


@dataclass(frozen=True, slots=True)
class DataFile:
    symbol: str
    name: str
    sha256: str
    size: int


def data_files(folder: Path, symbols: Sequence[str], timeframe: str) -> list[DataFile]:
    """Every candle file the symbols are read from, with its hash (DataError when one is missing)."""
    files = []
    for symbol in symbols:
        for path in find_candle_files(folder, symbol, timeframe):
            digest = hashlib.sha256()
            with path.open("rb") as stream:
                for chunk in iter(lambda stream=stream: stream.read(1 << 20), b""):
                    digest.update(chunk)
            files.append(DataFile(symbol, path.name, digest.hexdigest(), path.stat().st_size))
    return files


def data_fingerprint(files: Sequence[DataFile]) -> str:
    payload = "\n".join(f"{f.name} {f.sha256}" for f in files)
    return hashlib.sha256(payload.encode()).hexdigest()


def config_record(config: RuntimeConfig) -> dict[str, Any]:
    """The config as wire JSON, and its hash."""
    wire = config.model_dump(mode="json", by_alias=True)
    return {"sha256": canonical_hash(wire), "runtime_config": wire}


def models_record(config: RuntimeConfig) -> dict[str, dict[str, Any]]:
    """Per signal model of ``config``: its kind, the parameters it is fitted with (``ml.models[].params`` over the
    kind's defaults), its seed and its training settings (see the module doc); empty without models."""
    if not config.ml.signal_models:
        return {}
    from slsbot_runtime.ml.builders import DEFAULTS  # loads scikit-learn: only for a config with models

    answer = {}
    for model in config.ml.signal_models:
        kind = str(model.kind)
        params = {**DEFAULTS[kind], **dict(model.params)}
        answer[model.name] = {
            "kind": kind,
            "params": params,
            "seed": params.get("random_state"),
            "features": list(model.features),
            "inputs": list(model.inputs),
            "vote": model.vote,
            "lookback": model.lookback,
            "retrain_every": str(model.retrain_every),
            "horizon": model.horizon,
            "embargo": model.embargo,
            "calibration": str(model.calibration),
            "holdout_fraction": model.holdout_fraction,
            "calibration_fraction": model.calibration_fraction,
            "replace_tolerance": model.replace_tolerance,
        }
    return answer


def model_seeds(config: RuntimeConfig) -> dict[str, int | None]:
    """Each signal model's ``random_state`` (null for a kind with no randomness)."""
    return {name: model["seed"] for name, model in models_record(config).items()}


def canonical_hash(data: Any) -> str:
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def code_version(source: Path | None = None) -> dict[str, Any]:
    """``{"package", "version", "git_commit", "git_dirty"}``; the commit of the checkout ``source`` (by default
    this package's folder) belongs to, or null when it is none or git is missing."""
    try:
        installed = version(PACKAGE)
    except PackageNotFoundError:
        installed = None
    folder = source or Path(__file__).resolve().parent
    commit = _git(folder, "rev-parse", "HEAD")
    top = _git(folder, "rev-parse", "--show-toplevel") if commit is not None else None
    dirty = None
    if top is not None:
        status = _git(Path(top), "status", "--porcelain", "--untracked-files=all", "--", *SOURCE_PATHS)
        dirty = None if status is None else bool(status)
    return {
        "package": PACKAGE,
        "version": installed,
        "git_commit": commit,
        "git_dirty": dirty,
        "libraries": library_versions(),
    }


def library_versions() -> dict[str, Any]:
    """The versions of ``LIBRARIES`` (null when one is not installed) and of the models' predictor arithmetic."""
    from slsbot_runtime.ml.predictors import PREDICTOR_VERSION

    answer: dict[str, Any] = {}
    for name in LIBRARIES:
        try:
            answer[name] = version(name)
        except PackageNotFoundError:
            answer[name] = None
    answer["predictor"] = PREDICTOR_VERSION
    return answer


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
