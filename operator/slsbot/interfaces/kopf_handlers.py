"""Every kopf handler of ``slsbot operator``, registered on a registry passed in (kopf's global one is not used).

Handlers are thin: a precondition, then one step of ``operator_steps`` (the shared reconcile service over the
Kubernetes adapters) in a worker thread. slsbot errors become kopf's ``TemporaryError(delay=...)`` (retry) or
``PermanentError`` here and nowhere else.

* Strategy: one daemon per object reconciles from observed state: reconcile, then sleep for as long as the plan
  asks (``requeue_after``), or until woken: by a change to the Strategy, or to the TradingAccount or RiskPolicy it
  depends on (found through two kopf indexes: strategies by account, accounts by policy). The accounts and policies
  themselves come from two more kopf indexes (the parsed objects by namespace), which kopf keeps current from its
  watch: a pass lists nothing.
* Strategy deletion: kopf's finalizer; each pass is one ``finalize_strategy`` step (drain, then delete), and the
  ``slsbot.io/drained`` annotation remembers that the drain was done.
* Start-up: kopf does not watch CRDs or namespaces (``scanning.disabled``, so the operator needs no cluster-wide
  rights beyond its kinds); it serves what the API server serves when it starts. So start-up waits, retrying,
  until the slsbot CRDs are served; until then kopf has not started and the health endpoint does not answer.
* TradingAccount and RiskPolicy: validated when they change (and every ``validation_resync`` seconds, to keep
  their strategy counts and the account's allocated share current); their status reports the result.
* Allocation: a fifth index holds each Strategy's ``allocationPercent`` claim (``domain.allocation``), so a pass
  checks that the Strategies of an account claim 100% at most without listing anything; a Strategy that changes
  or goes wakes the others of its account (a refused one may fit now).
* RiskPolicy, account risk: a timer per RiskPolicy (every ``account_risk_interval`` seconds) runs the account risk
  pass for it (``services.account_risk``: the runtimes' figures read, each one's headroom pushed where it changed or
  is due); a change to a policy with ``killSwitch`` set runs it at once, before its Strategies are woken, so the kill
  reaches the running runtimes before the config change restarts them.
* BackupSchedule: its four CronJobs applied on each of its events and when a Strategy of its namespace comes or
  goes (``adapters.kubernetes.backups``, docs/concepts/backups.md). The results the jobs' pods write into its status
  become metrics and the BackupFailed / RestoreDrillFailed incidents, on each of its events (a written result is one)
  and again on the incidents timer (``operator_steps.backup_results_once``), so a write that failed is done later.
  Neither writes anything onto the schedule itself (no kopf timer on it: its ServiceAccount may not patch it).
* Experiment: one daemon per object, as for a Strategy: validate, run its controller (``services.reconcile.
  reconcile_experiment`` with ``OperatorContext.experiment_ports``), sleep until its plan's requeue time or a change
  to its spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import kopf

from slsbot.adapters.kubernetes import ClusterCredentials
from slsbot.adapters.kubernetes.objects import InvalidObjectError, parse_object
from slsbot.api import GROUP, VERSION, BackupSchedule, Experiment, RiskPolicy, Strategy, TradingAccount
from slsbot.api.backup import BackupScheduleStatus
from slsbot.domain.allocation import FULL, AllocationClaim, allocated_percent
from slsbot.domain.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidSpecError,
    NotFoundError,
    PermissionDenied,
    RuntimeUnreachable,
    SlsbotError,
)
from slsbot.interfaces.operator_steps import (
    Dependencies,
    OperatorContext,
    account_risk_once,
    backup_results_once,
    finalize_strategy_once,
    incidents_once,
    missing_kinds,
    reconcile_experiment_once,
    reconcile_strategy_once,
    validate_account_once,
    validate_policy_once,
)

FINALIZER = "slsbot.io/finalizer"
T = TypeVar("T")
R = TypeVar("R", TradingAccount, RiskPolicy)
log = logging.getLogger(__name__)

# How long to wait before trying again after each kind of error (seconds).
RETRY_DELAYS: dict[type[SlsbotError], float] = {
    ConflictError: 0.5,
    BackendUnavailable: 5.0,
    RuntimeUnreachable: 5.0,
    NotFoundError: 10.0,
    PermissionDenied: 60.0,
    InvalidSpecError: 60.0,
}


def kopf_error(exc: SlsbotError, *, permanent_if_invalid: bool = True) -> kopf.TemporaryError | kopf.PermanentError:
    """The kopf outcome of an slsbot error: retry after a delay that suits it, or stop for an invalid spec."""
    if permanent_if_invalid and isinstance(exc, InvalidSpecError):
        return kopf.PermanentError(str(exc))
    delay = next((d for kind, d in RETRY_DELAYS.items() if isinstance(exc, kind)), 5.0)
    return kopf.TemporaryError(str(exc), delay=delay)


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work in a thread; if the caller is cancelled meanwhile, let the work finish first."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def reconcile_backup_schedules(ctx: OperatorContext, schedules: list[BackupSchedule]) -> None:
    """Apply each schedule's CronJobs; a failure is logged and tried again at the schedule's next event."""
    if ctx.backups is None:
        return
    for schedule in schedules:
        try:
            await _in_thread(ctx.backups.reconcile, schedule)
        except SlsbotError as exc:
            log.warning("BackupSchedule %s/%s: its CronJobs: %s", schedule.namespace, schedule.name, exc)


async def backup_results(ctx: OperatorContext, namespace: str, name: str, status: BackupScheduleStatus | None) -> None:
    """A schedule's status made into metrics and incidents (``operator_steps.backup_results_once``); a failure is
    logged and done again by the timer."""
    try:
        await _in_thread(backup_results_once, ctx, namespace, name, status)
    except SlsbotError as exc:
        log.warning("BackupSchedule %s/%s: its results' incidents: %s", namespace, name, exc)


async def run_strategy_daemon(
    ctx: OperatorContext, namespace: str, name: str, dependencies: Callable[[], Dependencies]
) -> None:
    """Reconcile, then sleep until the requeue time or a wake-up; kopf cancels it when the Strategy goes.
    ``dependencies`` is called on the event loop before each pass, so the pass works on a snapshot of them."""
    await _reconcile_until_gone(
        ctx.wakeups.event(namespace, name), reconcile_strategy_once, ctx, namespace, name, dependencies
    )


async def run_experiment_daemon(
    ctx: OperatorContext, namespace: str, name: str, dependencies: Callable[[], Dependencies], *, longest: float
) -> None:
    """The same for an Experiment: its controller's next look comes when its plan asks (an A/B rollout every few
    seconds while it progresses), at once when its spec changes, and at least every ``longest`` seconds (nothing
    wakes it when a Strategy it names appears or changes)."""
    wake = ctx.experiment_wakeups.event(namespace, name)
    await _reconcile_until_gone(wake, reconcile_experiment_once, ctx, namespace, name, dependencies, longest=longest)


async def _reconcile_until_gone(
    wake: asyncio.Event,
    step: Callable[[OperatorContext, str, str, Dependencies], float | None],
    ctx: OperatorContext,
    namespace: str,
    name: str,
    dependencies: Callable[[], Dependencies],
    *,
    longest: float | None = None,
) -> None:
    while True:
        wake.clear()
        try:
            delay = await _in_thread(step, ctx, namespace, name, dependencies())
        except SlsbotError as exc:
            raise kopf_error(exc, permanent_if_invalid=False) from exc
        if delay is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay if longest is None else min(delay, longest))


async def run_finalizer(ctx: OperatorContext, namespace: str, name: str, *, budget: float = 30.0) -> None:
    """Deletion steps (drain, delete, wait for it to be gone) one after another, for up to ``budget`` seconds;
    past that, kopf retries the handler later (TemporaryError)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    while True:
        try:
            pending = await _in_thread(finalize_strategy_once, ctx, namespace, name)
        except SlsbotError as exc:
            raise kopf_error(exc) from exc
        if pending is None:
            return
        delay = pending.requeue_after.total_seconds() if pending.requeue_after is not None else 1.0
        if loop.time() + delay > deadline:
            reason = pending.action.reason if pending.action is not None else "Retrying"
            raise kopf.TemporaryError(f"still deleting ({reason}); next step in {delay:.0f}s", delay=delay)
        await asyncio.sleep(delay)


def parsed_or_none(model: type[R], body: kopf.Body) -> R | None:
    """``body`` as its API model, or None (logged) when the models refuse it: its own handler reports why."""
    try:
        return parse_object(model, dict(body))
    except InvalidObjectError as exc:
        meta = body.metadata
        log.info("%s %s/%s is not usable yet: %s", model.kind_info.kind, meta.namespace, meta.name, exc)
        return None


def namespace_dependencies(
    accounts: kopf.Index[str, TradingAccount],
    policies: kopf.Index[str, RiskPolicy],
    namespace: str,
    claims: kopf.Index[str, AllocationClaim] | None = None,
) -> Dependencies:
    """A snapshot of a namespace's parsed accounts and policies and its Strategies' allocation claims; on the event
    loop, where kopf updates them."""
    return Dependencies(
        accounts={account.name: account for account in accounts.get(namespace, [])},
        policies={policy.name: policy for policy in policies.get(namespace, [])},
        claims=list(claims.get(namespace, [])) if claims is not None else (),
    )


def allocation_claim(name: str, spec: Mapping[str, Any], meta: Mapping[str, Any]) -> AllocationClaim | None:
    """A Strategy's claim on its account's capital, read from its body without the whole model (the index holds
    every Strategy). A share the schema would refuse counts as all of it: never less than it might hold."""
    account = (spec.get("accountRef") or {}).get("name")
    if not account:
        return None
    percent = spec.get("allocationPercent", FULL)
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= FULL:
        percent = FULL
    created = meta.get("creationTimestamp")
    try:
        stamp = datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None
    except ValueError:
        stamp = None
    return AllocationClaim(name=name, account=str(account), percent=float(percent), created=stamp)


def _users(index: kopf.Index[Any, Any], namespace: str, name: str) -> list[str]:
    return sorted(index.get((namespace, name), []))


def _policy_users(
    namespace: str, policy: str, accounts_by_policy: kopf.Index[Any, Any], strategies_by_account: kopf.Index[Any, Any]
) -> list[str]:
    accounts = _users(accounts_by_policy, namespace, policy)
    return sorted({s for account in accounts for s in _users(strategies_by_account, namespace, account)})


# --- registration -------------------------------------------------------------------------------------------------


def register_handlers(
    registry: kopf.OperatorRegistry,
    *,
    validation_resync: float = 60.0,
    experiment_interval: float = 10.0,
    incidents_interval: float = 15.0,
    account_risk_interval: float = 3.0,
) -> None:
    """Put every slsbot handler on ``registry``."""
    strategies = (GROUP, VERSION, Strategy.kind_info.plural)
    accounts = (GROUP, VERSION, TradingAccount.kind_info.plural)
    policies = (GROUP, VERSION, RiskPolicy.kind_info.plural)
    experiments = (GROUP, VERSION, Experiment.kind_info.plural)
    backups = (GROUP, VERSION, BackupSchedule.kind_info.plural)

    @kopf.on.login(registry=registry, id="login")
    def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
        creds: ClusterCredentials = memo.slsbot.credentials
        return kopf.ConnectionInfo(
            server=creds.server,
            ca_path=creds.ca_path,
            insecure=creds.insecure,
            scheme=creds.scheme,
            token=creds.token,
            username=creds.username,
            password=creds.password,
            certificate_path=creds.certificate_path,
            private_key_path=creds.private_key_path,
        )

    @kopf.on.startup(registry=registry, id="kinds_served")
    async def kinds_served(memo: kopf.Memo, **_: Any) -> None:
        missing = await _in_thread(missing_kinds, memo.slsbot)
        if missing:
            served = ", ".join(f"{plural}.{GROUP}" for plural in missing)
            raise kopf.TemporaryError(
                f"the API server does not serve {served}: install the CRDs (kubectl apply -f crds/); "
                "the operator starts once they are served",
                delay=10,
            )

    @kopf.index(*strategies, registry=registry, id="strategies_by_account")
    def strategies_by_account(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, str] | None:
        account = (spec.get("accountRef") or {}).get("name")
        return {(namespace, account): name} if account else None

    @kopf.index(*strategies, registry=registry, id="allocation_claims")
    def allocation_claims(
        namespace: str, name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any
    ) -> dict[str, AllocationClaim] | None:
        claim = allocation_claim(name, spec, meta)
        return {namespace: claim} if claim is not None else None

    @kopf.index(*accounts, registry=registry, id="accounts_by_policy")
    def accounts_by_policy(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[Any, str] | None:
        policy = (spec.get("riskPolicyRef") or {}).get("name")
        return {(namespace, policy): name} if policy else None

    @kopf.index(*accounts, registry=registry, id="accounts_by_namespace")
    def accounts_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, TradingAccount] | None:
        account = parsed_or_none(TradingAccount, body)
        return {namespace: account} if account is not None else None

    @kopf.index(*policies, registry=registry, id="policies_by_namespace")
    def policies_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, RiskPolicy] | None:
        policy = parsed_or_none(RiskPolicy, body)
        return {namespace: policy} if policy is not None else None

    @kopf.daemon(*strategies, registry=registry, id="strategy_reconciler", cancellation_timeout=30.0)
    async def strategy_reconciler(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        accounts_by_namespace: kopf.Index[str, TradingAccount],
        policies_by_namespace: kopf.Index[str, RiskPolicy],
        allocation_claims: kopf.Index[str, AllocationClaim],
        **_: Any,
    ) -> None:
        await run_strategy_daemon(
            memo.slsbot,
            namespace,
            name,
            lambda: namespace_dependencies(accounts_by_namespace, policies_by_namespace, namespace, allocation_claims),
        )

    @kopf.on.update(*strategies, registry=registry, id="strategy_changed")
    async def strategy_changed(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        old: Any,
        new: Any,
        strategies_by_account: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        memo.slsbot.wakeups.wake(namespace, name)
        # its share may have moved, or its account: the others of either account may fit now, or no more
        for body in (old, new):
            account = (((body or {}).get("spec") or {}).get("accountRef") or {}).get("name")
            for peer in _users(strategies_by_account, namespace, account) if account else []:
                if peer != name:
                    memo.slsbot.wakeups.wake(namespace, peer)

    # A Strategy gone for good frees its share: the others of its account look again (kopf updates the indexes
    # before it calls handlers, so they no longer count it).
    @kopf.on.event(*strategies, registry=registry, id="strategy_gone")
    async def strategy_gone(
        type: str | None,
        namespace: str,
        name: str,
        spec: kopf.Spec,
        memo: kopf.Memo,
        strategies_by_account: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        account = (spec.get("accountRef") or {}).get("name")
        if type != "DELETED" or not account:
            return
        for peer in _users(strategies_by_account, namespace, account):
            if peer != name:
                memo.slsbot.wakeups.wake(namespace, peer)

    # BackupSchedule: its CronJobs follow it (adapters.kubernetes.backups), and follow the Strategies its backup job
    # mounts: a Strategy that comes or goes in a namespace with schedules reconciles them. Its CronJobs are owned by
    # it, so a deleted schedule's go with it. Event handlers: kopf writes no progress onto the objects.
    @kopf.index(*backups, registry=registry, id="backup_schedules_by_namespace")
    def backup_schedules_by_namespace(namespace: str, body: kopf.Body, **_: Any) -> dict[str, BackupSchedule] | None:
        schedule = parsed_or_none(BackupSchedule, body)
        return {namespace: schedule} if schedule is not None else None

    @kopf.on.event(*backups, registry=registry, id="backup_schedule_changed")
    async def backup_schedule_changed(
        type: str | None, namespace: str, name: str, body: kopf.Body, memo: kopf.Memo, **_: Any
    ) -> None:
        schedule = parsed_or_none(BackupSchedule, body) if type != "DELETED" else None
        if schedule is not None:
            await reconcile_backup_schedules(memo.slsbot, [schedule])
        if type == "DELETED":
            await backup_results(memo.slsbot, namespace, name, None)
        elif schedule is not None:  # a job's pod wrote a result into the status: its metrics and incident now
            await backup_results(memo.slsbot, namespace, name, schedule.status or BackupScheduleStatus())

    @kopf.on.event(*strategies, registry=registry, id="strategy_backups")
    async def strategy_backups(
        type: str | None,
        namespace: str,
        memo: kopf.Memo,
        backup_schedules_by_namespace: kopf.Index[str, BackupSchedule],
        **_: Any,
    ) -> None:
        if type in ("ADDED", "DELETED") and namespace in backup_schedules_by_namespace:
            await reconcile_backup_schedules(memo.slsbot, list(backup_schedules_by_namespace[namespace]))

    @kopf.on.delete(*strategies, registry=registry, id="strategy_deleted")
    async def strategy_deleted(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
        ctx: OperatorContext = memo.slsbot
        await run_finalizer(ctx, namespace, name)
        ctx.wakeups.forget(namespace, name)
        ctx.events.forget("Strategy", namespace, name)

    @kopf.on.resume(*accounts, registry=registry, id="account_changed")
    @kopf.on.create(*accounts, registry=registry, id="account_changed")
    @kopf.on.update(*accounts, registry=registry, id="account_changed")
    async def account_changed(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        strategies_by_account: kopf.Index[Any, Any],
        allocation_claims: kopf.Index[str, AllocationClaim],
        **_: Any,
    ) -> None:
        users = _users(strategies_by_account, namespace, name)
        for strategy in users:  # first: the account's own validation may be slow, or fail and be retried
            memo.slsbot.wakeups.wake(namespace, strategy)
        allocated = allocated_percent(name, allocation_claims.get(namespace, []))
        await _validate(validate_account_once, memo.slsbot, namespace, name, len(users), allocated)

    @kopf.timer(
        *accounts, registry=registry, id="account_resync", interval=validation_resync, initial_delay=validation_resync
    )
    async def account_resync(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        strategies_by_account: kopf.Index[Any, Any],
        allocation_claims: kopf.Index[str, AllocationClaim],
        **_: Any,
    ) -> None:
        users = _users(strategies_by_account, namespace, name)
        allocated = allocated_percent(name, allocation_claims.get(namespace, []))
        await _validate(validate_account_once, memo.slsbot, namespace, name, len(users), allocated)

    # Incidents: the severity rules over a namespace's Strategies, from a timer on its TradingAccounts (every
    # Strategy has one); the step runs a namespace at most once per interval, whichever account's timer asks.
    @kopf.timer(
        *accounts, registry=registry, id="incidents", interval=incidents_interval, initial_delay=incidents_interval
    )
    async def incidents(
        namespace: str,
        memo: kopf.Memo,
        accounts_by_namespace: kopf.Index[str, TradingAccount],
        policies_by_namespace: kopf.Index[str, RiskPolicy],
        backup_schedules_by_namespace: kopf.Index[str, BackupSchedule],
        **_: Any,
    ) -> None:
        if memo.slsbot.incidents is None:
            return
        dependencies = namespace_dependencies(accounts_by_namespace, policies_by_namespace, namespace)
        schedules = list(backup_schedules_by_namespace.get(namespace, []))
        try:
            await _in_thread(incidents_once, memo.slsbot, namespace, dependencies, schedules)
        except SlsbotError as exc:
            raise kopf_error(exc, permanent_if_invalid=False) from exc

    # Deletions come as watch events: an optional on.delete handler puts no finalizer on the object, so kopf never
    # sees it "being deleted" and would not call it; the object is simply gone (type DELETED).
    @kopf.on.event(*accounts, registry=registry, id="account_deleted")
    async def account_deleted(
        type: str | None,
        namespace: str,
        name: str,
        memo: kopf.Memo,
        strategies_by_account: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        if type != "DELETED":
            return
        for strategy in _users(strategies_by_account, namespace, name):
            memo.slsbot.wakeups.wake(namespace, strategy)

    @kopf.on.resume(*policies, registry=registry, id="policy_changed")
    @kopf.on.create(*policies, registry=registry, id="policy_changed")
    @kopf.on.update(*policies, registry=registry, id="policy_changed")
    async def policy_changed(
        namespace: str,
        name: str,
        spec: kopf.Spec,
        memo: kopf.Memo,
        accounts_by_policy: kopf.Index[Any, Any],
        strategies_by_account: kopf.Index[Any, Any],
        accounts_by_namespace: kopf.Index[str, TradingAccount],
        policies_by_namespace: kopf.Index[str, RiskPolicy],
        **_: Any,
    ) -> None:
        if spec.get("killSwitch"):  # the kill first: before the config change restarts the runtimes
            dependencies = namespace_dependencies(accounts_by_namespace, policies_by_namespace, namespace)
            await _account_risk(memo.slsbot, namespace, name, dependencies)
        users = _policy_users(namespace, name, accounts_by_policy, strategies_by_account)
        for strategy in users:  # first: the policy's own validation may be slow, or fail and be retried
            memo.slsbot.wakeups.wake(namespace, strategy)
        await _validate(validate_policy_once, memo.slsbot, namespace, name, len(users))

    @kopf.timer(
        *policies, registry=registry, id="policy_resync", interval=validation_resync, initial_delay=validation_resync
    )
    async def policy_resync(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        accounts_by_policy: kopf.Index[Any, Any],
        strategies_by_account: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        users = _policy_users(namespace, name, accounts_by_policy, strategies_by_account)
        await _validate(validate_policy_once, memo.slsbot, namespace, name, len(users))

    @kopf.timer(*policies, registry=registry, id="account_risk", interval=account_risk_interval)
    async def account_risk(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        accounts_by_namespace: kopf.Index[str, TradingAccount],
        policies_by_namespace: kopf.Index[str, RiskPolicy],
        **_: Any,
    ) -> None:
        dependencies = namespace_dependencies(accounts_by_namespace, policies_by_namespace, namespace)
        await _account_risk(memo.slsbot, namespace, name, dependencies)

    @kopf.on.event(*policies, registry=registry, id="policy_deleted")
    async def policy_deleted(
        type: str | None,
        namespace: str,
        name: str,
        memo: kopf.Memo,
        accounts_by_policy: kopf.Index[Any, Any],
        strategies_by_account: kopf.Index[Any, Any],
        **_: Any,
    ) -> None:
        if type != "DELETED":
            return
        for strategy in _policy_users(namespace, name, accounts_by_policy, strategies_by_account):
            memo.slsbot.wakeups.wake(namespace, strategy)

    # Experiments: one daemon each, as Strategies (their controllers look again when their plan asks), woken at
    # once when the spec changes (a promote, abort or pause by hand).
    @kopf.daemon(*experiments, registry=registry, id="experiment_reconciler", cancellation_timeout=30.0)
    async def experiment_reconciler(
        namespace: str,
        name: str,
        memo: kopf.Memo,
        accounts_by_namespace: kopf.Index[str, TradingAccount],
        policies_by_namespace: kopf.Index[str, RiskPolicy],
        **_: Any,
    ) -> None:
        await run_experiment_daemon(
            memo.slsbot,
            namespace,
            name,
            lambda: namespace_dependencies(accounts_by_namespace, policies_by_namespace, namespace),
            longest=min(validation_resync, experiment_interval),
        )

    @kopf.on.update(*experiments, registry=registry, id="experiment_changed")
    async def experiment_changed(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
        memo.slsbot.experiment_wakeups.wake(namespace, name)

    @kopf.on.event(*experiments, registry=registry, id="experiment_deleted")
    async def experiment_deleted(type: str | None, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
        if type == "DELETED":
            memo.slsbot.experiment_wakeups.forget(namespace, name)


async def _account_risk(ctx: OperatorContext, namespace: str, name: str, dependencies: Dependencies) -> None:
    """One account risk pass for a policy; a failure is logged and the timer tries again (no kopf retry storm)."""
    try:
        await _in_thread(account_risk_once, ctx, namespace, name, dependencies)
    except SlsbotError as exc:
        log.warning("account risk pass of RiskPolicy %s/%s failed: %s", namespace, name, exc)


async def _validate(fn: Callable[..., Any], ctx: OperatorContext, namespace: str, name: str, *args: Any) -> None:
    try:
        await _in_thread(fn, ctx, namespace, name, *args)
    except NotFoundError:
        return  # deleted meanwhile
    except SlsbotError as exc:
        raise kopf_error(exc) from exc


def kopf_settings(*, verbose: bool = False) -> kopf.OperatorSettings:
    """kopf's own settings: our finalizer name, its bookkeeping in annotations under slsbot.io."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.peering.standalone = True  # one replica (deploy/operator uses the Recreate strategy)
    # Serve the kinds and namespaces there are at start-up; watch neither CRDs nor namespaces, which would need
    # cluster-wide rights that a namespaced install (deploy/operator-namespaced) does not have.
    settings.scanning.disabled = True
    settings.posting.level = logging.INFO if verbose else logging.WARNING
    return settings
