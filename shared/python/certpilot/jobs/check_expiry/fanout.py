"""check-expiry past one invocation: the sweep fans out to asynchronous invocations of
itself, each shard writes its part, and the last one to finish merges the report.

Function Compute is the engine: no scheduler of ours and no invocation waits for
another. The run's objects live beside the reports (`CERTPILOT_REPORT_BUCKET`), under
`<report prefix>/runs/<run id>/`:

    plan.json            written by the coordinator before any shard is invoked: the
                         run (id, started, reportOnly, scope), and per shard its index,
                         scope and domains (name, location, bucket)
    catalog.json         the CAS catalog the coordinator read for the whole run: the
                         listing's summaries, the certificates built from their details
                         (metadata and chain judgement), their public PEM chains
                         (certificate blocks only, never a key), the ids whose detail
                         call failed (`shards.catalog_to_dict`)
    shards/<nnnnn>.json  per shard: its scope, split buckets and inventory records
                         (`shards.task_to_dict`)
    parts/<nnnnn>.json   one per shard (index zero-padded), written when its sweep ends
                         or fails: its rows (the report's row JSON), the findings about
                         CAS certificates, the rollouts it would invoke, the drifted
                         domains whose enforcement it left to the merge, its error
    merged               the merge claim: created with `x-oss-forbid-overwrite: true`
                         (atomic in OSS) by the shard that merges; its body names it

1. The coordinator (a timer run, or a direct invocation, with FC's context naming the
   function: `context.function.name`) lists the inventory once (the cheap listing
   calls), and when there are more domains than one shard holds
   (`CERTPILOT_SHARD_SIZE`, `shards.plan_shards`) writes the plan and invokes itself
   (`CERTPILOT_SHARD_SIZE`, `shards.plan_shards`) reads the CAS catalog once (the
   listing and one detail call per certificate that matters, with its PEM chain so
   that no shard reads it again), writes the plan, the catalog and each shard's
   object, and invokes itself asynchronously once per shard with a payload that only
   names them (`shards.encode_ref`, a few hundred bytes). A shard it cannot write or invoke
   gets a part from the coordinator saying its domains were not judged.
2. Each shard reads its shard object and the catalog (two GetObject; it lists neither
   the account nor CAS), sweeps its records (`sweep.sweep_inventory`), plans its
   repairs without invoking them, writes its part, then lists `parts/`. A shard whose
   catalog cannot be read, or whose sweep fails, still writes a part: its domains
   NOT_JUDGED; one whose shard object cannot be read writes a part without rows, and
   the merge takes its domains from the plan, NOT_JUDGED.
3. A shard that sees all N parts creates `merged`; the one whose create succeeds (a
   retried create that answers "exists" is read back and compared) merges: the rows of
   every part (a part missing: its shard's domains NOT_JUDGED, named by scope), one
   deploy-cert invocation per certificate for the whole run (rollouts merged by
   certificate), the deferred enforcement restored once, the previous run's pending
   repairs settled, then the notification (once) and the report (dated + `latest`).

Every part is written before its writer lists, and OSS lists what was written (strong
consistency): the last writer always sees all N, two that see them together race on
`merged` and one wins. FC runs a failed asynchronous invocation again: a shard's part
is overwritten by its retry, and a merge claimed once is never made twice.

4. A shard whose worker dies on every attempt (killed past FC's timeout) writes no
   part, and no shard merges its run. The plan names a deadline (`STALE_AFTER_TIMEOUTS`
   function timeouts after the start); the next coordinator past it claims and merges
   that run (`close_stale`): its missing shards' domains NOT_JUDGED, one notification.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from certpilot.core.errors import CertpilotError, CloudError, ConfigError
from certpilot.core.findings import Code, Finding
from certpilot.core.log import event, get_logger
from certpilot.core.model import Inventory, Location, Route
from certpilot.jobs.check_expiry.repair import (
    Restore,
    Rollout,
    RolloutResult,
    invoke_rollouts,
    restore_enforcement,
)
from certpilot.jobs.check_expiry.report import (
    JSON_TYPE,
    DomainRow,
    Repair,
    RepairKind,
    Report,
    ReportTarget,
    RunInfo,
    iso,
    not_judged,
    row_from_dict,
    row_to_dict,
)
from certpilot.jobs.check_expiry.run import Finished, domain_row, load, publish, settled_repairs
from certpilot.jobs.check_expiry.shards import (
    Shard,
    ShardRef,
    ShardTask,
    SharedCatalog,
    budget_size,
    catalog_from_dict,
    catalog_to_dict,
    encode_ref,
    parse_task,
    plan_shards,
    split_buckets,
    task_to_dict,
)
from certpilot.jobs.check_expiry.sweep import (
    FUNCTION,
    SweepOptions,
    SweepResult,
    SweepStatus,
    _scoped,
    read_catalog,
    sweep_inventory,
)
from certpilot.jobs.deploy_cert.engine import RUN_MARGIN, Deps

_log = get_logger(__name__)
PLAN_SCHEMA = "certpilot.check-expiry.plan/1"
PART_SCHEMA = "certpilot.check-expiry.part/1"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# Chosen: a run no shard merged is closed by a later coordinator once this many
# function timeouts have passed since it started (the invocation, FC's retry, a wait in
# the asynchronous queue). Closing early only leaves more NOT_JUDGED, never an
# all-clear: a part written after the close is not merged.
STALE_AFTER_TIMEOUTS = 3
MAX_CLOSED = 3  # stale runs closed by one coordinator, oldest first


def self_function(context: Any) -> str | None:
    """The name FC runs this invocation under (`context.function.name`); None without
    one (a direct or CLI run: no fan-out)."""
    name = getattr(getattr(context, "function", None), "name", None)
    return name if isinstance(name, str) and name.strip() else None


def shard_size(deps: Deps) -> int:
    """Domains per shard: `CERTPILOT_SHARD_SIZE`, else what the invocation's time
    budget allows (`shards.budget_size`); 0: never split."""
    if deps.settings.shard_size is not None:
        return deps.settings.shard_size
    budget = None if deps.deadline is None else deps.deadline - time.monotonic()
    return budget_size(budget, deps.settings.concurrency)


def run_prefix(target: ReportTarget, run_id: str) -> str:
    """`<report prefix>/runs/<run id>` (characters unfit for a key become `-`)."""
    safe = _UNSAFE_KEY_CHARS.sub("-", run_id).strip("-.") or "run"
    return "/".join(p for p in (target.prefix, "runs", safe) if p)


def part_key(prefix: str, index: int) -> str:
    """The key of shard `index`'s part under the run's prefix."""
    return f"{prefix}/parts/{index:05d}.json"


def shard_key(prefix: str, index: int) -> str:
    """The key of shard `index`'s shard object (its scope and records)."""
    return f"{prefix}/shards/{index:05d}.json"


def catalog_key(prefix: str) -> str:
    """The key of the run's CAS catalog object."""
    return f"{prefix}/catalog.json"


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- the coordinator --------------------------------------------------------------------


def fan_out(
    options: SweepOptions, deps: Deps, inventory: Inventory, function: str | None
) -> dict[str, Any] | None:
    """Split the sweep when it is too large for one invocation (module docstring, 1):
    the coordinator's summary, or None when the sweep runs here whole (no function
    name, a size of 0, few enough domains, or no report bucket for the parts).

    Raises:
        CloudError: the plan cannot be written (no shard was invoked).
    """
    size = shard_size(deps)
    records = _scoped(inventory, options)
    if function is None or size <= 0 or len(records) <= size:
        return None
    target = ReportTarget.from_settings(deps.settings)
    if target is None:
        event(
            _log,
            "sweep not split: no report bucket for its parts",
            level=logging.WARNING,
            domains=len(records),
        )
        return None
    shards = plan_shards(records, size)
    if len(shards) < 2:
        return None
    run_id = deps.request_id or str(uuid.uuid4())
    started = deps.clock()
    try:
        closed = close_stale(deps, target, started)
    except (CloudError, ValueError) as error:  # this run goes on; the next one tries again
        event(_log, "stale runs not closed", level=logging.WARNING, error=type(error).__name__)
        closed = ()
    # The CAS catalog is read once for the whole run: shards never list CAS (its
    # listing's QPS is the account's, not each invocation's).
    pems: dict[int, str] = {}
    listing, catalog, unreadable = read_catalog(deps, deps.trust_store(), records, pems)
    prefix = run_prefix(target, run_id)
    split = split_buckets(shards)
    oss = deps.clients.oss
    oss.put_object(
        target.bucket,
        target.region,
        f"{prefix}/plan.json",
        _json(_plan(run_id, started, _deadline(deps, started), options, inventory, shards)),
        JSON_TYPE,
    )
    shared = SharedCatalog(listing.summaries, catalog, unreadable, pems)
    oss.put_object(
        target.bucket, target.region, catalog_key(prefix), _json(catalog_to_dict(shared)), JSON_TYPE
    )
    not_invoked: list[int] = []
    for shard in shards:
        task = ShardTask(
            run_id, shard.index, len(shards), started, shard.scope, shard.records, split
        )
        ref = ShardRef(
            run_id,
            shard.index,
            len(shards),
            started,
            shard_key(prefix, shard.index),
            catalog_key(prefix),
        )
        payload = encode_ref(ref, report_only=options.report_only, scope=options.scope)
        try:
            oss.put_object(
                target.bucket, target.region, ref.key, _json(task_to_dict(task)), JSON_TYPE
            )
            deps.clients.fc.invoke(function, payload, asynchronous=True)
        except CloudError as error:
            event(
                _log, "shard not invoked", level=logging.WARNING, shard=shard.index, code=error.code
            )
            not_invoked.append(shard.index)
            oss.put_object(
                target.bucket,
                target.region,
                part_key(prefix, shard.index),
                _json(failed_part(task, f"not invoked: {error.code}")),
                JSON_TYPE,
            )
    event(_log, "check-expiry fanned out", run=run_id, shards=len(shards), domains=len(records))
    merged = (
        _claim_and_merge(deps, target, prefix, len(shards), "coordinator") if not_invoked else None
    )
    return {
        "function": FUNCTION,
        "requestId": deps.request_id,
        "ok": True,
        "status": SweepStatus.FANNED_OUT.value,
        "allClear": False,
        "run": run_id,
        "reportOnly": options.report_only,
        "scope": options.scope,
        "domains": len(records),
        "shards": [
            {"index": s.index, "scope": [i.to_dict() for i in s.scope], "domains": len(s.records)}
            for s in shards
        ],
        "splitBuckets": list(split),
        "notInvoked": not_invoked,
        "merged": merged is not None,
        "closedRuns": list(closed),
    }


def _deadline(deps: Deps, started: datetime) -> datetime | None:
    """When a later coordinator may close this run if no shard merged it (None: the
    invocation has no time budget, the run is never closed by another)."""
    if deps.deadline is None:
        return None
    timeout = deps.deadline - time.monotonic() + RUN_MARGIN
    return started + timedelta(seconds=STALE_AFTER_TIMEOUTS * max(timeout, 1.0))


def _plan(
    run_id: str,
    started: datetime,
    deadline: datetime | None,
    options: SweepOptions,
    inventory: Inventory,
    shards: Sequence[Shard],
) -> dict[str, Any]:
    return {
        "schema": PLAN_SCHEMA,
        "run": run_id,
        "started": iso(started),
        "deadline": iso(deadline),
        "reportOnly": options.report_only,
        "scope": options.scope,
        "trigger": options.trigger,
        "buckets": len(inventory.buckets),
        "shards": [
            {
                "index": shard.index,
                "scope": [item.to_dict() for item in shard.scope],
                "label": shard.label(),
                "domains": [
                    {"domain": r.name, "location": _location(r.route).value, "bucket": r.bucket}
                    for r in shard.records
                ],
            }
            for shard in shards
        ],
    }


def _location(route: Route) -> Location:
    return Location.CDN if route is Route.CDN else Location.OSS


# -- a shard ----------------------------------------------------------------------------


def run_shard(options: SweepOptions, deps: Deps) -> dict[str, Any]:
    """Sweep one shard, write its part, and merge the run when it is the last
    (module docstring, 2 and 3): the shard's summary.

    Raises:
        ConfigError: no report bucket is set (the part has nowhere to go).
        CloudError: the part cannot be written.
    """
    ref = options.shard
    assert ref is not None
    target = ReportTarget.from_settings(deps.settings)
    if target is None:
        raise ConfigError("a check-expiry shard writes its part to CERTPILOT_REPORT_BUCKET: unset")
    prefix = run_prefix(target, ref.run_id)
    task = _read_task(deps, target, ref)
    # Its scope unknown without its object: the merge takes it from the plan, NOT_JUDGED.
    part = unread_part(ref) if task is None else _sweep_part(options, deps, target, ref, task)
    deps.clients.oss.put_object(
        target.bucket, target.region, part_key(prefix, ref.index), _json(part), JSON_TYPE
    )
    me = f"shard {ref.index} {deps.request_id or uuid.uuid4()}"
    done = _claim_and_merge(deps, target, prefix, ref.of, me)
    rows = part["domains"] or []
    return {
        "function": FUNCTION,
        "requestId": deps.request_id,
        "ok": True,
        "status": SweepStatus.SHARD.value,
        "run": ref.run_id,
        "shard": ref.index,
        "of": ref.of,
        "domains": len(rows),
        "notJudged": [
            r["domain"] for r in rows if any(f["code"] == "NOT_JUDGED" for f in r["findings"])
        ],
        "error": part["error"],
        "merged": done is not None,
        "report": None
        if done is None
        else {
            "stored": done.stored is not None,
            "keys": list(done.stored.keys) if done.stored else [],
        },
        "notify": None if done is None else done.notified.to_dict(),
    }


def _read_task(deps: Deps, target: ReportTarget, ref: ShardRef) -> ShardTask | None:
    """The shard object `ref` names; None when it is missing or unreadable."""
    try:
        data = _read(deps, target, ref.key)
        task = parse_task(data) if data is not None else None
    except (CloudError, ValueError) as error:
        event(_log, "shard object unreadable", level=logging.WARNING, error=_code(error))
        return None
    if task is None or (task.run_id, task.index, task.of) != (ref.run_id, ref.index, ref.of):
        event(_log, "shard object unreadable", level=logging.WARNING, shard=ref.index)
        return None
    return task


def _code(error: Exception) -> str:
    return error.code if isinstance(error, CloudError) else type(error).__name__


def _sweep_part(
    options: SweepOptions, deps: Deps, target: ReportTarget, ref: ShardRef, task: ShardTask
) -> dict[str, Any]:
    """Sweep the shard's records with the run's catalog: its part (a failed part, its
    domains NOT_JUDGED, when the catalog cannot be read or the sweep fails)."""
    try:
        data = _read(deps, target, ref.catalog_key)
        if data is None:
            return failed_part(task, "catalog unreadable")
        shared = catalog_from_dict(data)
    except (CloudError, ValueError) as error:
        event(_log, "run catalog unreadable", level=logging.WARNING, error=_code(error))
        return failed_part(task, f"catalog unreadable: {_code(error)}")
    buckets = tuple(sorted({r.bucket for r in task.records if r.bucket}))
    try:
        result = sweep_inventory(
            options,
            deps,
            Inventory(domains=task.records, buckets=buckets),
            invoke=False,
            defer_buckets=frozenset(task.split_buckets),
            catalog_read=shared,
        )
        return part_of(result, task)
    except CertpilotError as error:
        code = error.code if isinstance(error, CloudError) else type(error).__name__
        event(_log, "shard failed", level=logging.WARNING, shard=task.index, error=code)
        return failed_part(task, code)
    except Exception:  # a bug must not leave the run without this part: NOT_JUDGED
        _log.exception("shard failed")
        return failed_part(task, "internal error")


def unread_part(ref: ShardRef) -> dict[str, Any]:
    """The part of a shard that could not read its shard object (pure): no rows; the
    merge takes its domains from the plan, NOT_JUDGED."""
    return {
        "schema": PART_SCHEMA,
        "run": ref.run_id,
        "shard": ref.index,
        "of": ref.of,
        "now": iso(ref.started),
        "domains": None,
        "catalogFindings": [],
        "rollouts": [],
        "deferred": [],
        "error": "shard object unreadable",
    }


def part_of(result: SweepResult, task: ShardTask) -> dict[str, Any]:
    """The part of a shard that swept (pure)."""
    rows = [domain_row(r, result) for r in result.rows]
    codes = {r.domain: r.verdict.codes for r in result.rows}
    return {
        "schema": PART_SCHEMA,
        "run": task.run_id,
        "shard": task.index,
        "of": task.of,
        "now": iso(result.now),
        "elapsedSeconds": round(result.elapsed, 3),
        "certificates": result.certificates,
        "domains": [row_to_dict(r, result.now) for r in rows],
        "catalogFindings": [f.to_dict() for f in result.catalog_findings],
        "rollouts": [
            {
                "casId": r.cas_id,
                "domains": list(r.domains),
                "fixes": [c.value for c in r.fixes],
                "failedOver": list(r.failed_over),
            }
            for r in result.planned
        ],
        "deferred": [{"domain": d, "codes": [c.value for c in codes[d]]} for d in result.deferred],
        "error": None,
    }


def failed_part(task: ShardTask, reason: str) -> dict[str, Any]:
    """The part of a shard that could not sweep: every domain NOT_JUDGED (pure)."""
    label = "; ".join(item.label() for item in task.scope)
    rows = [
        not_judged(
            r.name,
            _location(r.route),
            f"shard {task.index} ({label}) could not sweep: {reason}",
            bucket=r.bucket,
        )
        for r in task.records
    ]
    return {
        "schema": PART_SCHEMA,
        "run": task.run_id,
        "shard": task.index,
        "of": task.of,
        "now": iso(task.started),
        "domains": [row_to_dict(r, task.started) for r in rows],
        "catalogFindings": [],
        "rollouts": [],
        "deferred": [],
        "error": reason,
    }


# -- the merge --------------------------------------------------------------------------


def _claim_and_merge(
    deps: Deps, target: ReportTarget, prefix: str, of: int, me: str
) -> Finished | None:
    """Merge the run when all `of` parts are there and this caller wins the claim;
    None otherwise."""
    keys = deps.clients.oss.list_keys(target.bucket, target.region, f"{prefix}/parts/")
    if len([k for k in keys if k.endswith(".json")]) < of or not _claim(deps, target, prefix, me):
        return None
    return merge(deps, target, prefix)


def _claim(deps: Deps, target: ReportTarget, prefix: str, me: str) -> bool:
    """Create the run's `merged` marker, only if none exists: whether this caller's
    claim is the one written."""
    oss = deps.clients.oss
    claim = _json({"by": me, "nonce": uuid.uuid4().hex})
    marker = f"{prefix}/merged"
    # A retried create whose first attempt landed answers "exists" too: read it back.
    return (
        oss.create_object(target.bucket, target.region, marker, claim, JSON_TYPE)
        or oss.get_object(target.bucket, target.region, marker) == claim
    )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def close_stale(deps: Deps, target: ReportTarget, now: datetime) -> tuple[str, ...]:
    """Merge the runs whose plan is past its deadline and that no shard merged (a shard
    whose worker died on every attempt left its part missing): their missing shards'
    domains NOT_JUDGED. At most `MAX_CLOSED` runs, oldest first; the ids closed. A run
    another invocation is closing (its claim written) is left to it.

    Raises:
        CloudError: the run objects cannot be listed or read.
    """
    runs = "/".join(p for p in (target.prefix, "runs") if p) + "/"
    oss = deps.clients.oss
    found: dict[str, set[str]] = {}
    for key in oss.list_keys(target.bucket, target.region, runs):
        run, _, rest = key[len(runs) :].partition("/")
        found.setdefault(run, set()).add(rest)
    closed: list[str] = []
    for run, names in sorted(found.items()):
        if "plan.json" not in names or "merged" in names or len(closed) >= MAX_CLOSED:
            continue
        prefix = runs + run
        plan = _read(deps, target, f"{prefix}/plan.json")
        deadline = _when(plan.get("deadline")) if plan is not None else None
        if deadline is None or deadline > now:
            continue
        me = f"closer {deps.request_id or uuid.uuid4()}"
        if _claim(deps, target, prefix, me):
            event(_log, "stale run closed", run=run, level=logging.WARNING)
            merge(deps, target, prefix)
            closed.append(run)
    return tuple(closed)


def _read(deps: Deps, target: ReportTarget, key: str) -> Mapping[str, Any] | None:
    body = deps.clients.oss.get_object(target.bucket, target.region, key)
    if body is None:
        return None
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None


def merge(deps: Deps, target: ReportTarget, prefix: str) -> Finished:
    """Merge the run's parts into its report, invoke its repairs once, notify once,
    store the report (module docstring, 3).

    Raises:
        CloudError: the plan or a part cannot be read (after retries).
        ValueError: the plan is not one this version wrote.
    """
    plan = _read(deps, target, f"{prefix}/plan.json")
    if plan is None or plan.get("schema") != PLAN_SCHEMA:
        raise ValueError("the run's plan is missing or unreadable")
    run_id = str(plan["run"])
    started = datetime.fromisoformat(str(plan["started"]).replace("Z", "+00:00"))
    rows: list[DomainRow] = []
    catalog: dict[tuple[str, str, str], Finding] = {}
    rollouts: dict[int, tuple[set[str], set[Code], set[str]]] = {}
    deferred: dict[str, tuple[Code, ...]] = {}
    for shard in plan["shards"]:
        part = _read(deps, target, part_key(prefix, int(shard["index"])))
        if part is None or part.get("schema") != PART_SCHEMA or part.get("domains") is None:
            reason = "did not report" if part is None else "could not read its shard"
            message = f"shard {shard['index']} ({shard['label']}) {reason}"
            rows.extend(
                not_judged(d["domain"], Location(d["location"]), message, bucket=d.get("bucket"))
                for d in shard["domains"]
            )
            continue
        rows.extend(row_from_dict(d) for d in part["domains"])
        for data in part["catalogFindings"]:
            finding = Finding.from_dict(data)
            catalog.setdefault((finding.domain, finding.code.value, finding.message), finding)
        for r in part["rollouts"]:
            domains, fixes, failed_over = rollouts.setdefault(
                int(r["casId"]), (set(), set(), set())
            )
            domains.update(r["domains"])
            fixes.update(Code(c) for c in r["fixes"])
            failed_over.update(r["failedOver"])
        for d in part["deferred"]:
            deferred[str(d["domain"])] = tuple(Code(c) for c in d["codes"])
    report_only = bool(plan["reportOnly"])
    merged = tuple(
        Rollout(
            cas_id,
            tuple(sorted(domains)),
            tuple(sorted(fixes, key=list(Code).index)),
            tuple(sorted(failed_over)),
        )
        for cas_id, (domains, fixes, failed_over) in sorted(rollouts.items())
    )
    results: tuple[RolloutResult, ...] = ()
    restores: tuple[Restore, ...] = ()
    if not report_only:
        results = invoke_rollouts(merged, deps.clients.fc, deps.settings.deploy_function, run_id)
        restores = restore_enforcement(sorted(deferred), deferred, deps)
    previous, previous_error = load(deps, target)
    rows = [_with_repairs(row, previous, results, restores) for row in rows]
    run = RunInfo(
        run_id=run_id,
        started=started,
        finished=deps.clock(),
        now=started,
        account=deps.settings.account_id,
        scope=plan.get("scope"),
        report_only=report_only,
    )
    report = Report(run, tuple(rows))
    findings = (*report.findings, *catalog.values())
    event(_log, "check-expiry run merged", run=run_id, shards=len(plan["shards"]))
    return publish(report, findings, deps, target, previous, previous_error)


def _with_repairs(
    row: DomainRow,
    previous: Report | None,
    results: Sequence[RolloutResult],
    restores: Sequence[Restore],
) -> DomainRow:
    """`row` with the previous run's repairs settled and the merge's own repairs."""
    from dataclasses import replace

    cas_id = row.certificate.cas_id if row.certificate is not None else None
    settled = settled_repairs(
        previous, row.domain, row.judged, [f.code for f in row.findings], cas_id
    )
    invoked = tuple(
        Repair(
            kind=r.rollout.kind(row.domain),
            status=r.status,
            cas_id=r.rollout.cas_id,
            fixes=r.rollout.fixes,
            error_code=r.error_code,
        )
        for r in results
        if row.domain in r.rollout.domains
    )
    restored = tuple(
        Repair(
            kind=RepairKind.ENFORCEMENT_RESTORED,
            status=r.status,
            fixes=r.fixes,
            error_code=r.error_code,
        )
        for r in restores
        if r.domain == row.domain
    )
    return replace(row, repairs=settled + row.repairs + invoked + restored)
