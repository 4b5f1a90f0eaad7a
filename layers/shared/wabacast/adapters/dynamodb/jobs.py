"""A queue's jobs, its planning state and the counter writes that go with job moves.

Items:
  job         Q#<q>#J<nn> / JOB#<job>   nn = the job's shard (16): a campaign's job writes spread over 16 partition
              keys instead of one; TTL expiresAt (JOB_RETENTION_DAYS after planning)
              GSI1 Q#<q>#OPEN / <seq>          set once, when planned PENDING; never changed (INCLUDE phone_number:
                                              a claim or settle changes no projected attribute, so it writes no
                                              index entry). Feeding reads the jobs after the feed cursor from here.
              GSI2 Q#<q>#REFEED | #FAILED_RETRYABLE / <seq>   sparse, only on the rare paths that need them
              GSI2 Q#<q>#DEFERRED / <not_before epoch s>#<seq>   a delayed re-feed, read when due
  plan state  Q#<q> / #PLAN       cursor, version, feed cursor and marks, rate samples, planned counters
  recipients  Q#<q> / RECIPIENTS#<n>  (wabacast.adapters.dynamodb.queues)

A job's move and its counter change are written together: one TransactWriteItems per sender batch and queue,
holding the batch's job updates (each conditioned on the job as read) and one ADD on a counter shard. See settle.
A move that records a job's cost also adds it to one of its account's cost shards in that transaction (decision 28).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic_core import to_jsonable_python

from wabacast.adapters.dynamodb.base import (
    Item,
    TableGateway,
    TransactionCancelledError,
    from_attributes,
    to_attributes,
)
from wabacast.adapters.dynamodb.counters import (
    COUNTER_ATTRIBUTE_PREFIX,
    COUNTER_SHARDS,
    DELTA_PREFIX,
    PLAN_SK,
    SHARD_SK,
    CounterReader,
    account_cost_update,
    counter_update,
    queue_partition,
    shard_of,
    shard_partition,
)
from wabacast.domain.delivery import FeedCandidate, FeedMark, PlanState, QueueTally
from wabacast.domain.jobs import Counter, ErrorClass, Job, JobMove, JobStatus, planned_deltas
from wabacast.storage.table import GSI1, GSI2, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

LOGGER = logging.getLogger(__name__)

JOB_PREFIX = "JOB#"
JOB_SHARDS = 16
OPEN_LABEL = "OPEN"
REFEED_LABEL = "REFEED"
FAILED_RETRYABLE_LABEL = "FAILED_RETRYABLE"
DEFERRED_LABEL = "DEFERRED"
# Moves per settle transaction (TransactWriteItems takes 100 items; a sender batch is 10).
SETTLE_CHUNK = 25
# TransactionConflict and throttling: retried this many times, with full jitter between BASE and CAP seconds.
MAX_WRITE_RETRIES = 6
RETRY_BASE_S = 0.02
RETRY_CAP_S = 0.5
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
    }
)
# What a move may change; the rest of a job is fixed when it is planned.
_IMMUTABLE = frozenset(
    {"id", "queue_id", "business_id", "phone_number", "variables", "seq", "created_at", "run", "recipient_zone"}
)
_MUTABLE = tuple(name for name in Job.model_fields if name not in _IMMUTABLE)


def job_partition(queue_id: str, job_id: str) -> str:
    """A queue's jobs spread evenly over JOB_SHARDS partitions (by a checksum of the id: any id has a shard)."""
    return f"{queue_partition(queue_id)}#J{shard_of(job_id, JOB_SHARDS):02d}"


def job_partitions(queue_id: str) -> list[str]:
    return [f"{queue_partition(queue_id)}#J{shard:02d}" for shard in range(JOB_SHARDS)]


def job_key(queue_id: str, job_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": job_partition(queue_id, job_id)}, SORT_KEY: {"S": f"{JOB_PREFIX}{job_id}"}}


def _seq_key(seq: int) -> str:
    return f"{seq:012d}"


def refeed_label(recipient_zone: str | None) -> str:
    """Handed-back jobs of a queue sending in recipients' local time are indexed per zone, so the planner reads only
    the zones whose window is open."""
    return REFEED_LABEL if recipient_zone is None else f"{REFEED_LABEL}#{recipient_zone}"


def _deferred_key(not_before: datetime, seq: int) -> str:
    """Sorted by due time, so "due by t" is one range read."""
    return f"{int(not_before.timestamp()):012d}#{_seq_key(seq)}"


def _secondary_key(job: Job) -> tuple[str, str] | None:
    """The job's GSI2 entry (label, sort key), if it belongs in one."""
    if job.status == JobStatus.PENDING and job.refeed:
        return refeed_label(job.recipient_zone), _seq_key(job.seq)
    if job.status == JobStatus.PENDING and job.not_before is not None:
        return DEFERRED_LABEL, _deferred_key(job.not_before, job.seq)
    if job.status == JobStatus.FAILED and job.last_error and job.last_error.error_class == ErrorClass.RETRYABLE:
        return FAILED_RETRYABLE_LABEL, _seq_key(job.seq)
    return None


def job_to_item(job: Job, *, plan_version: int | None = None, expires_at: int | None = None) -> dict[str, Any]:
    """A job as a new item (planning): in the open-jobs index when PENDING."""
    data: dict[str, Any] = {
        **job.model_dump(mode="json"),
        PARTITION_KEY: job_partition(job.queue_id, job.id),
        SORT_KEY: f"{JOB_PREFIX}{job.id}",
        "type": "Job",
        "plan_version": plan_version,
        TTL_ATTRIBUTE: expires_at,
    }
    if job.status == JobStatus.PENDING:
        data[GSI1.partition_key] = f"{queue_partition(job.queue_id)}#{OPEN_LABEL}"
        data[GSI1.sort_key] = _seq_key(job.seq)
    secondary = _secondary_key(job)
    if secondary is not None:
        data[GSI2.partition_key] = f"{queue_partition(job.queue_id)}#{secondary[0]}"
        data[GSI2.sort_key] = secondary[1]
    return to_attributes(data)


def job_from_item(item: Item) -> Job:
    return Job.model_validate({key: value for key, value in item.items() if key in Job.model_fields})


def move_update(move: JobMove) -> dict[str, Any]:
    """An UpdateItem body for a move: the changed fields, conditioned on the job being as it was read."""
    job = move.job
    data = job.model_dump(mode="json")
    names: dict[str, str] = {"#status": "status"}
    values: dict[str, Any] = {
        ":before": {"S": move.before.status.value},
        ":seen": {"S": move.before.model_dump(mode="json")["updated_at"]},
    }
    sets: list[str] = []
    removes: list[str] = []
    for index, name in enumerate(_MUTABLE):
        names[f"#f{index}"] = name
        if data[name] is None:
            removes.append(f"#f{index}")
        else:
            values[f":f{index}"] = to_attributes({"v": data[name]})["v"]
            sets.append(f"#f{index} = :f{index}")
    secondary = _secondary_key(job)
    if secondary is None:
        removes += [GSI2.partition_key, GSI2.sort_key]
    else:
        values[":label"] = {"S": f"{queue_partition(job.queue_id)}#{secondary[0]}"}
        values[":label_seq"] = {"S": secondary[1]}
        sets += [f"{GSI2.partition_key} = :label", f"{GSI2.sort_key} = :label_seq"]
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    return {
        "Key": job_key(job.queue_id, job.id),
        "UpdateExpression": expression,
        "ConditionExpression": "#status = :before AND updated_at = :seen",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _account_cost_updates(moves: Sequence[JobMove], shard: int) -> list[dict[str, Any]]:
    """An ADD per account whose jobs' costs these moves record, on the account's cost shard `shard`: written only
    with a job move that records a cost, so once per message (decision 28)."""
    costs: dict[str, int] = defaultdict(int)
    for move in moves:
        cost = move.counter_deltas.get(Counter.COST, 0)
        if cost and move.job.account_id is not None:
            costs[move.job.account_id] += cost
    return [account_cost_update(account_id, shard, micros) for account_id, micros in sorted(costs.items())]


def _is_throttling(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _THROTTLING_CODES


class DynamoJobStore:
    def __init__(
        self,
        table: TableGateway,
        *,
        retention_days: int = 90,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._table = table
        self._retention = timedelta(days=retention_days)
        self._sleep = sleep
        self._random = rng or random.Random()  # noqa: S311 - jitter and shard choice, not security
        self._counters = CounterReader(table)

    # Counters ------------------------------------------------------------------------------------------------
    def tally(self, queue_id: str) -> QueueTally:
        return self._counters.tally(queue_id)

    def account_cost(self, account_id: str) -> int:
        return self._counters.account_cost(account_id)

    # Planning ------------------------------------------------------------------------------------------------
    def read_plan(self, queue_id: str) -> PlanState:
        item = self._table.get(queue_partition(queue_id), PLAN_SK)
        if item is None:
            return PlanState()
        cursor = item.get("plan_cursor")
        marks = json.loads(item.get("feed_marks") or "[]")
        return PlanState(
            cursor=json.loads(cursor) if cursor else None,
            version=int(item.get("plan_version", 0)),
            done=bool(item.get("plan_done", False)),
            next_seq=int(item.get("plan_next_seq", 0)),
            fed_seq=int(item.get("fed_seq", -1)),
            swept_seq=int(item.get("swept_seq", -1)),
            feed_marks=tuple(FeedMark(int(seq), float(at)) for seq, at in marks),
            rate_per_second=float(item.get("rate_per_second", 0.0)),
            rate_sample_at=float(item["rate_sample_at"]) if "rate_sample_at" in item else None,
            rate_sample_done=int(item.get("rate_sample_done", 0)),
            zones=frozenset(item.get("plan_zones") or ()),
            run=int(item.get("plan_run", 1)),
            limit_resets_at=float(item["limit_resets_at"]) if "limit_resets_at" in item else None,
        )

    def existing_plan_versions(self, queue_id: str, job_ids: Sequence[str]) -> dict[str, int | None]:
        items = self._table.batch_get(
            ((job_partition(queue_id, job_id), f"{JOB_PREFIX}{job_id}") for job_id in job_ids),
            attributes=("id", "plan_version"),
        )
        return {
            item["id"]: (int(item["plan_version"]) if item.get("plan_version") is not None else None) for item in items
        }

    def commit_page(
        self,
        queue_id: str,
        plan: PlanState,
        *,
        jobs: Sequence[Job],
        cursor: dict[str, Any] | None,
        done: bool,
        now: datetime,
        zones: frozenset[str] = frozenset(),
    ) -> bool:
        """The jobs first (BatchWriteItem), then the cursor and their planned counts in one conditional update of
        the plan item. The jobs carry the plan version they were written under: if this process dies between the
        two writes, the next run redoes the page and recognises its own jobs (same version) as new."""
        expires = int((now + self._retention).timestamp())
        self._table.batch_write([job_to_item(job, plan_version=plan.version, expires_at=expires) for job in jobs])
        deltas: dict[Counter, int] = defaultdict(int)
        for job in jobs:
            for counter, change in planned_deltas(job.status).items():
                deltas[counter] += change
        values: dict[str, Any] = {
            ":version": {"N": str(plan.version + 1)},
            ":done": {"BOOL": done},
            ":seq": {"N": str(plan.next_seq + len(jobs))},
            ":now": {"S": str(to_jsonable_python(now))},
            ":previous": {"N": str(plan.version)},
        }
        names: dict[str, str] = {}
        sets = ["plan_version = :version", "plan_done = :done", "plan_next_seq = :seq", "updated_at = :now"]
        removes = []
        if cursor is None:
            removes.append("plan_cursor")
        else:
            sets.append("plan_cursor = :cursor")
            values[":cursor"] = {"S": json.dumps(cursor, separators=(",", ":"))}
        adds = []
        for index, (counter, change) in enumerate(sorted(deltas.items())):
            names[f"#c{index}"] = f"{COUNTER_ATTRIBUTE_PREFIX}{counter.value}"
            values[f":c{index}"] = {"N": str(change)}
            adds.append(f"#c{index} :c{index}")
        if zones:
            values[":zones"] = {"SS": sorted(zones)}
            adds.append("plan_zones :zones")
        condition = "attribute_not_exists(plan_version) OR plan_version = :previous"
        if plan.version:
            condition = "plan_version = :previous"
        expression = "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        request: dict[str, Any] = {
            "TableName": self._table.table_name,
            "Key": {PARTITION_KEY: {"S": queue_partition(queue_id)}, SORT_KEY: {"S": PLAN_SK}},
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if names:
            request["ExpressionAttributeNames"] = names
        try:
            self._table.client.update_item(**request)
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_feed(
        self,
        queue_id: str,
        *,
        fed_seq: int,
        swept_seq: int,
        marks: Sequence[FeedMark],
        limit_resets_at: float | None = None,
    ) -> None:
        values: dict[str, Any] = {
            ":fed": {"N": str(fed_seq)},
            ":swept": {"N": str(swept_seq)},
            ":marks": {"S": json.dumps([[mark.seq, round(mark.at, 3)] for mark in marks])},
        }
        expression = "SET fed_seq = :fed, swept_seq = :swept, feed_marks = :marks"
        if limit_resets_at is None:
            expression += " REMOVE limit_resets_at"
        else:
            expression += ", limit_resets_at = :resets"
            values[":resets"] = {"N": repr(limit_resets_at)}
        self._update_plan(queue_id, expression, values)

    def record_rate(self, queue_id: str, *, at: float, done: int, rate: float) -> None:
        self._update_plan(
            queue_id,
            "SET rate_sample_at = :at, rate_sample_done = :done, rate_per_second = :rate",
            {":at": {"N": repr(at)}, ":done": {"N": str(done)}, ":rate": {"N": f"{rate:.3f}"}},
        )

    def _update_plan(self, queue_id: str, expression: str, values: dict[str, Any]) -> None:
        self._table.client.update_item(
            TableName=self._table.table_name,
            Key={PARTITION_KEY: {"S": queue_partition(queue_id)}, SORT_KEY: {"S": PLAN_SK}},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    # Feeding -------------------------------------------------------------------------------------------------
    def unfed(self, queue_id: str, after_seq: int, limit: int) -> list[FeedCandidate]:
        response = self._table.client.query(
            TableName=self._table.table_name,
            IndexName=GSI1.name,
            KeyConditionExpression="#pk = :pk AND #sk > :after",
            ExpressionAttributeNames={"#pk": GSI1.partition_key, "#sk": GSI1.sort_key},
            ExpressionAttributeValues={
                ":pk": {"S": f"{queue_partition(queue_id)}#{OPEN_LABEL}"},
                # "-00000000001" sorts before every seq: -1 means nothing fed yet.
                ":after": {"S": _seq_key(after_seq)},
            },
            Limit=limit,
        )
        return [
            FeedCandidate(
                job_id=str(item[SORT_KEY]).removeprefix(JOB_PREFIX),
                phone_number=str(item["phone_number"]),
                seq=int(item[GSI1.sort_key]),
                recipient_zone=item.get("recipient_zone"),
            )
            for item in (from_attributes(raw) for raw in response.get("Items", []))
        ]

    def fed_between(self, queue_id: str, after_seq: int, up_to_seq: int) -> list[Job]:
        if up_to_seq <= after_seq:
            return []
        keys: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table.table_name,
                "IndexName": GSI1.name,
                "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
                "ExpressionAttributeNames": {"#pk": GSI1.partition_key, "#sk": GSI1.sort_key},
                "ExpressionAttributeValues": {
                    ":pk": {"S": f"{queue_partition(queue_id)}#{OPEN_LABEL}"},
                    ":low": {"S": _seq_key(after_seq + 1)},
                    ":high": {"S": _seq_key(up_to_seq)},
                },
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self._table.client.query(**request)
            keys.extend(from_attributes(raw) for raw in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                break
        # Once per fed job, a quarter of an hour after feeding: an eventually consistent read is enough.
        items = self._table.batch_get(((item[PARTITION_KEY], item[SORT_KEY]) for item in keys), consistent=False)
        jobs = (job_from_item(item) for item in items)
        # A deferred job waits for its own time (the planner feeds it then), not for the sweep.
        return sorted(
            (job for job in jobs if job.status == JobStatus.PENDING and not job.refeed and job.not_before is None),
            key=lambda job: job.seq,
        )

    def handed_back(self, queue_id: str, limit: int, recipient_zone: str | None = None) -> list[Job]:
        return self._labelled(queue_id, refeed_label(recipient_zone), limit)

    def retryable_failed(self, queue_id: str, limit: int) -> list[Job]:
        return self._labelled(queue_id, FAILED_RETRYABLE_LABEL, limit)

    def _labelled(self, queue_id: str, label: str, limit: int) -> list[Job]:
        items, _ = self._table.query_page(
            index_name=GSI2.name,
            partition_attribute=GSI2.partition_key,
            partition_value=f"{queue_partition(queue_id)}#{label}",
            sort_attribute=GSI2.sort_key,
            sort_prefix=None,
            limit=limit,
            next_token=None,
        )
        return [job_from_item(item) for item in self._table.hydrate(items)]

    def clear_hand_back(self, job: Job) -> bool:
        """A handed-back job was fed again: it leaves the hand-back index (unless it changed meanwhile)."""
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=job_key(job.queue_id, job.id),
                UpdateExpression=f"SET refeed = :false REMOVE {GSI2.partition_key}, {GSI2.sort_key}",
                ConditionExpression="#status = :pending AND updated_at = :seen AND refeed = :true",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": JobStatus.PENDING.value},
                    ":seen": {"S": job.model_dump(mode="json")["updated_at"]},
                    ":true": {"BOOL": True},
                    ":false": {"BOOL": False},
                },
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def deferred(self, queue_id: str, limit: int, due_by: datetime | None = None) -> list[Job]:
        values: dict[str, Any] = {":pk": {"S": f"{queue_partition(queue_id)}#{DEFERRED_LABEL}"}}
        condition = "#pk = :pk"
        if due_by is not None:
            # "~" sorts after "#": every seq of the last due second is included.
            values[":due"] = {"S": f"{int(due_by.timestamp()):012d}~"}
            condition += " AND #sk <= :due"
        response = self._table.client.query(
            TableName=self._table.table_name,
            IndexName=GSI2.name,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#pk": GSI2.partition_key, **({"#sk": GSI2.sort_key} if due_by else {})},
            ExpressionAttributeValues=values,
            Limit=limit,
        )
        keys = [from_attributes(raw) for raw in response.get("Items", [])]
        jobs = [job_from_item(item) for item in self._table.hydrate(keys)]
        # The index is eventually consistent: only jobs still waiting, earliest first.
        waiting = [job for job in jobs if job.status == JobStatus.PENDING and job.not_before is not None]
        return sorted(waiting, key=lambda job: (job.not_before or job.created_at, job.seq))

    def clear_deferral(self, job: Job) -> bool:
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=job_key(job.queue_id, job.id),
                UpdateExpression=f"REMOVE not_before, {GSI2.partition_key}, {GSI2.sort_key}",
                ConditionExpression="#status = :pending AND updated_at = :seen AND attribute_exists(not_before)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": JobStatus.PENDING.value},
                    ":seen": {"S": job.model_dump(mode="json")["updated_at"]},
                },
            )
        except self._table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # Sending -------------------------------------------------------------------------------------------------
    def get_jobs(self, refs: Iterable[tuple[str, str]]) -> dict[str, Job]:
        items = self._table.batch_get(
            (job_partition(queue_id, job_id), f"{JOB_PREFIX}{job_id}") for queue_id, job_id in refs
        )
        jobs = (job_from_item(item) for item in items)
        return {job.id: job for job in jobs}

    def claim(self, move: JobMove) -> bool:
        return self._write_alone(move)

    def settle(self, moves: Sequence[JobMove]) -> list[JobMove]:
        """Each queue's moves of this call in one transaction with one counter-shard ADD (chunks of 25).

        - a move whose job changed meanwhile (its condition failed) is dropped and the rest written again;
        - TransactionConflict or throttling: retried up to MAX_WRITE_RETRIES times with full jitter, on another
          shard each time;
        - after that, each move alone with a deferred-delta item of its own (no shared item, so no conflict),
          counted by readers at once;
        - and if even that cannot be written, a move the provider accepted (SENT) is written alone: a counter
          write never fails a sent message (the drift is logged, the only place counters can disagree).
        Moves without counter change or error (hand-backs) are single conditional writes."""
        applied: list[JobMove] = []
        by_queue: dict[str, list[JobMove]] = defaultdict(list)
        for move in moves:
            if move.counter_deltas or move.error is not None:
                by_queue[move.job.queue_id].append(move)
            elif self._write_alone(move):
                applied.append(move)
        for queue_id, group in by_queue.items():
            for start in range(0, len(group), SETTLE_CHUNK):
                applied.extend(self._settle_together(queue_id, group[start : start + SETTLE_CHUNK]))
        return applied

    def _settle_together(self, queue_id: str, moves: list[JobMove]) -> list[JobMove]:
        pending = list(moves)
        shard = shard_of(pending[0].job.id)
        for attempt in range(MAX_WRITE_RETRIES + 1):
            if not pending:
                return []
            operations = [{"Update": move_update(move)} for move in pending]
            operations.append(self._shard_update(queue_id, shard, pending))
            operations.extend(_account_cost_updates(pending, shard))
            try:
                self._table.transact(operations)
                return pending
            except TransactionCancelledError as cancelled:
                failed = {index for index in range(len(pending)) if cancelled.failed(index)}
                if failed:
                    pending = [move for index, move in enumerate(pending) if index not in failed]
                    continue
            except ClientError as error:
                if not _is_throttling(error):
                    raise
            if attempt < MAX_WRITE_RETRIES:
                self._jittered_pause(attempt)
                shard = self._random.randrange(COUNTER_SHARDS)
        return [move for move in pending if self._settle_alone(queue_id, move)]

    def _shard_update(self, queue_id: str, shard: int, moves: Sequence[JobMove]) -> dict[str, Any]:
        deltas: dict[Counter, int] = defaultdict(int)
        for move in moves:
            for counter, change in move.counter_deltas.items():
                deltas[counter] += change
        update = counter_update(deltas, [move.error for move in moves if move.error is not None])
        assert update is not None  # settle only groups moves with a delta or an error
        expression, names, values = update
        return {
            "Update": {
                "Key": {PARTITION_KEY: {"S": shard_partition(queue_id, shard)}, SORT_KEY: {"S": SHARD_SK}},
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _settle_alone(self, queue_id: str, move: JobMove) -> bool:
        update = counter_update(move.counter_deltas, [move.error] if move.error else [])
        assert update is not None
        expression, names, values = update
        stamp = int(move.job.updated_at.timestamp() * 1_000_000)
        delta_key = {
            PARTITION_KEY: {"S": queue_partition(queue_id)},
            SORT_KEY: {"S": f"{DELTA_PREFIX}{move.job.id}#{stamp}"},
        }
        operations = [
            {"Update": move_update(move)},
            {
                "Update": {
                    "Key": delta_key,
                    "UpdateExpression": expression,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            *_account_cost_updates([move], shard_of(move.job.id)),
        ]
        for attempt in range(MAX_WRITE_RETRIES + 1):
            try:
                self._table.transact(operations)
                return True
            except TransactionCancelledError as cancelled:
                if cancelled.failed(0):
                    return False
            except ClientError as error:
                if not _is_throttling(error):
                    raise
            if attempt < MAX_WRITE_RETRIES:
                self._jittered_pause(attempt)
        if move.job.status != JobStatus.SENT:
            raise RuntimeError(f"job {move.job.id}: its move and counters could not be written; retry later")
        LOGGER.error(
            "counter drift: a sent job was recorded without its counter change",
            extra={
                "queue_id": queue_id,
                "job_id": move.job.id,
                "deltas": {k.value: v for k, v in move.counter_deltas.items()},
            },
        )
        return self._write_alone(move)

    def _jittered_pause(self, attempt: int) -> None:
        """Full jitter: a random pause up to RETRY_BASE_S doubled per attempt, capped at RETRY_CAP_S."""
        self._sleep(self._random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt)))

    def _write_alone(self, move: JobMove) -> bool:
        """One conditional UpdateItem (not a transaction): a single-item move."""
        body = move_update(move)
        for attempt in range(MAX_WRITE_RETRIES + 1):
            try:
                self._table.client.update_item(TableName=self._table.table_name, **body)
                return True
            except self._table.client.exceptions.ConditionalCheckFailedException:
                return False
            except ClientError as error:
                if not _is_throttling(error) or attempt == MAX_WRITE_RETRIES:
                    raise
                self._jittered_pause(attempt)
        return False
