"""``python -m slsbot_runtime.tuning.worker --plan PLAN.json --storage URL --study NAME``: run trials of one study.

The worker opens the study (creating it if it is the first), loads the plan's candles once, and runs trials one
after the other until the study holds the plan's target of finished trials (``TuningPlan.target_trials``:
complete, pruned, or failed and not run again) or the plan's deadline has passed. Several workers on the same
study at once are the parallelism: each runs its own trials, and ``accounting`` keeps their sum to exactly the
target, which Optuna's ``MaxTrialsCallback`` does not (it looks after a trial ends, so two workers can both
start one more). A trial that has started when the deadline passes runs to its end.

Before each trial the worker fails the trials whose worker died (stale heartbeat; they are queued again with
their parameters) and counts. When every remaining slot is held by a running trial of another worker, it waits
(``heartbeat_seconds`` between looks) for them to end or to go stale, rather than leaving a dead worker's trial
unfinished.

Exit codes: 0 the study is done or the deadline has passed; 2 a bad plan, storage URL or data folder (the message
names the field); 1 anything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, fail_stale_trials

from slsbot_runtime.domain.errors import ConfigError, DataError
from slsbot_runtime.tuning.accounting import TrialCounts, count_trials
from slsbot_runtime.tuning.data import load_tuning_data
from slsbot_runtime.tuning.objective import TrialObjective
from slsbot_runtime.tuning.plan import TuningPlan, load_plan
from slsbot_runtime.tuning.storage import StorageSettings, open_storage
from slsbot_runtime.tuning.study import open_study

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_BAD_PLAN = 2

log = logging.getLogger("slsbot_runtime.tuning.worker")


class WorkerOutcome(StrEnum):
    DONE = "done"  # the study holds its target of finished trials
    DEADLINE = "deadline"  # the plan's deadline passed first


def run_worker(
    plan: TuningPlan,
    storage: BaseStorage,
    study_name: str,
    *,
    worker_index: int | None = None,
    poll_seconds: float = 10.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[WorkerOutcome, TrialCounts]:
    """Run trials until the study is done or the deadline passes (see the module doc)."""
    study = open_study(plan, storage, study_name, worker_index=worker_index)
    target = plan.target_trials
    objective: TrialObjective | None = None
    while True:
        remaining = None if plan.deadline is None else (plan.deadline - clock()).total_seconds()
        counts = _look(study)
        if counts.finished >= target:
            return WorkerOutcome.DONE, counts
        if remaining is not None and remaining <= 0:
            return WorkerOutcome.DEADLINE, counts
        if counts.holding >= target and counts.waiting == 0:  # the last trials run elsewhere: see how they end
            time.sleep(poll_seconds if remaining is None else max(0.0, min(poll_seconds, remaining)))
            continue
        if objective is None:
            objective = TrialObjective(load_tuning_data(plan))  # the candles, once per worker
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)


def _look(study: optuna.Study) -> TrialCounts:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        fail_stale_trials(study)
    return count_trials(study.get_trials(deepcopy=False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slsbot_runtime.tuning.worker", description=__doc__.split("\n")[0])
    parser.add_argument("--plan", required=True, help="the TuningPlan JSON file")
    parser.add_argument("--storage", required=True, help="sqlite:///abs.db, a SQLAlchemy URL, or journal:///abs.log")
    parser.add_argument("--study", required=True, help="the study's name in the storage")
    parser.add_argument("--worker-index", type=int, default=None, help="seeds this worker's sampler reproducibly")
    parser.add_argument("--heartbeat-seconds", type=int, default=StorageSettings().heartbeat_seconds)
    parser.add_argument("--grace-seconds", type=int, default=StorageSettings().grace_seconds)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.heartbeat_seconds < 1 or args.grace_seconds <= args.heartbeat_seconds:
            raise ConfigError("--grace-seconds: must exceed --heartbeat-seconds (both whole seconds, at least 1)")
        plan = load_plan(args.plan)
        storage = open_storage(args.storage, StorageSettings(args.heartbeat_seconds, args.grace_seconds))
        outcome, counts = run_worker(
            plan,
            storage,
            args.study,
            worker_index=args.worker_index,
            poll_seconds=float(args.heartbeat_seconds),
        )
    except (ConfigError, DataError) as error:
        print(f"tuning worker: {error}", file=sys.stderr)
        return EXIT_BAD_PLAN
    log.info(
        "study %s: %s; %d finished of %d (%d complete, %d pruned, %d failed)",
        args.study,
        outcome,
        counts.finished,
        plan.target_trials,
        counts.complete,
        counts.pruned,
        counts.failed,
    )
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
