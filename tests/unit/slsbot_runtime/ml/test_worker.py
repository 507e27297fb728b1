"""The training process: a retrain runs in another process, bounded, and a job that breaks a bound fails alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slsbot_runtime.features.base import OHLCV
from slsbot_runtime.ml.registry import ModelRegistry
from slsbot_runtime.ml.training import ModelSpec, TrainingJob
from slsbot_runtime.ml.worker import WorkerBounds, WorkerTrainer

pytestmark = pytest.mark.slow


def _job(btc_2024: OHLCV, specs: list[ModelSpec]) -> TrainingJob:
    return TrainingJob(int(btc_2024.ts[700]), (btc_2024.slice(0, 700),), tuple(specs))


def test_a_retrain_runs_in_the_training_process_and_writes_the_registry(
    tmp_path: Path, btc_2024: OHLCV, model_specs: list[ModelSpec]
) -> None:
    trainer = WorkerTrainer(tmp_path / "models", WorkerBounds(threads=1, nice=5))
    try:
        trainer.submit(_job(btc_2024, model_specs[1:2]))
        assert trainer.busy and trainer.pid != os.getpid()
        ticks: list[int] = []
        (outcome,) = trainer.wait(lambda: ticks.append(1))
        assert ticks  # the waiting loop's heartbeat went on (starting the process alone takes over a second)
        assert outcome.ok and outcome.version == 1 and outcome.fitted is None
        info = ModelRegistry(tmp_path / "models").info("logit", 1)
        assert info["trainer_pid"] == trainer.pid
        assert not trainer.busy and trainer.poll() is None
    finally:
        trainer.close()
    assert trainer._process is None


def test_a_job_over_the_memory_bound_fails_and_the_next_one_runs(
    tmp_path: Path, btc_2024: OHLCV, model_specs: list[ModelSpec]
) -> None:
    trainer = WorkerTrainer(tmp_path / "models", WorkerBounds(memory_mib=512))
    try:
        trainer.submit(_job(btc_2024, model_specs[:1]))
        (outcome,) = trainer.wait()
        assert not outcome.ok and ("MemoryError" in outcome.error or "memoryMiB" in outcome.error)
        trainer.bounds = WorkerBounds()
        trainer.close()
        trainer.submit(_job(btc_2024, model_specs[:1]))
        (outcome,) = trainer.wait()
        assert outcome.ok
    finally:
        trainer.close()


def test_a_job_over_the_timeout_is_killed_and_failed(
    tmp_path: Path, btc_2024: OHLCV, model_specs: list[ModelSpec]
) -> None:
    trainer = WorkerTrainer(tmp_path / "models", WorkerBounds(timeout_s=0.05))
    try:
        trainer.submit(_job(btc_2024, model_specs[:1]))
        (outcome,) = trainer.wait()
        assert not outcome.ok and "ml.worker.timeout" in outcome.error
        assert trainer._process is None  # killed; the next job starts a new one
    finally:
        trainer.close()
