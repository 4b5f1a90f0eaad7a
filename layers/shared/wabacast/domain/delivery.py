"""Values the delivery pipeline passes between logic and adapters: planning state, counters, rate-limit
reservations, the SQS messages and queue names. Plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wabacast.domain.jobs import Counter
from wabacast.domain.models import QueueCounters

DEAD_LETTER_SUFFIX = "-dlq"
FIFO_SUFFIX = ".fifo"

# Receive counts are not attempts (docs/decisions.md, 16). A job's attempts are counted on the job item (a claim
# adds one) and the sender fails it at its queue's maxAttempts. SQS counts receives, which also grow without any
# attempt, so the account queue's redrive (maxReceiveCount) is derived to sit above every receive we account for:
# The largest queue maxAttempts (`Queue.max_attempts`): at most this many receives of one message are attempts.
MAX_ATTEMPTS_LIMIT = 10
# A rate-limit hand-back (no slot within MAX_RATE_WAIT_S) keeps the message in SQS (ChangeMessageVisibility, no
# write) only on its first SQS_HAND_BACKS receives; later ones hand the job back to the planner, which feeds a new
# message (receive count 1). So any number of hand-backs costs at most this many receives of one message.
SQS_HAND_BACKS = 5
# Receives nobody sees as an attempt or a hand-back: Lambda's poller giving messages back while the function is
# throttled, invocations that crashed or timed out, records of a FIFO group skipped after a failed one.
RECEIVE_HEADROOM = 5
MAX_RECEIVE_COUNT = MAX_ATTEMPTS_LIMIT + SQS_HAND_BACKS + RECEIVE_HEADROOM
# When more than the headroom was used up anyway, the dead-letter consumer checks the job's real attempts: one that
# had fewer than its queue's maxAttempts goes back to the planner, this many times; after that it fails.
DEAD_LETTER_REFEEDS = 1


# Queue names ------------------------------------------------------------------------------------------------------
def account_queue_name(prefix: str, account_id: str, *, dead_letter: bool = False) -> str:
    """Each account has "<prefix>-<accountId>.fifo" redriving to "<prefix>-<accountId>-dlq.fifo"."""
    return f"{prefix}-{account_id}{DEAD_LETTER_SUFFIX if dead_letter else ''}{FIFO_SUFFIX}"


@dataclass(frozen=True)
class AccountQueueName:
    account_id: str
    dead_letter: bool


def parse_account_queue_name(prefix: str, name_or_arn_or_url: str) -> AccountQueueName | None:
    """The account (and whether it is the dead-letter twin) of a queue name, ARN or URL; None for other queues."""
    name = name_or_arn_or_url.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    if not name.startswith(f"{prefix}-") or not name.endswith(FIFO_SUFFIX):
        return None
    stem = name.removeprefix(f"{prefix}-").removesuffix(FIFO_SUFFIX)
    dead_letter = stem.endswith(DEAD_LETTER_SUFFIX)
    account_id = stem.removesuffix(DEAD_LETTER_SUFFIX) if dead_letter else stem
    return AccountQueueName(account_id, dead_letter) if account_id else None


# Messages ---------------------------------------------------------------------------------------------------------
class JobMessage(BaseModel):
    """The body of a message on an account's SQS queue: which job to send."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    business_id: str = Field(alias="b", min_length=1)
    queue_id: str = Field(alias="q", min_length=1)
    job_id: str = Field(alias="j", min_length=1)

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


class PlanAccountMessage(BaseModel):
    """The body of a message on the plan queue: plan one account (the planner tick sends one per active account)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    business_id: str = Field(alias="b", min_length=1)
    account_id: str = Field(alias="a", min_length=1)

    def body(self) -> str:
        return self.model_dump_json(by_alias=True)


@dataclass(frozen=True)
class OutgoingMessage:
    job_id: str
    group_id: str
    message: JobMessage
    # SQS drops a message whose deduplication id it saw in the last 5 minutes.
    deduplication_id: str


@dataclass(frozen=True)
class FeedCandidate:
    """A planned job as feeding sees it in the index: enough to put it on SQS without reading the job."""

    job_id: str
    phone_number: str
    seq: int
    recipient_zone: str | None = None


# Planning ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedMark:
    """Every job with seq <= `seq` had been fed by `at` (epoch seconds)."""

    seq: int
    at: float


@dataclass(frozen=True)
class PlanState:
    """The planner's progress through a queue: materializing the audience (cursor), feeding (fed_seq), and the
    sweep for fed jobs that never reached a sender (swept_seq)."""

    cursor: dict[str, Any] | None = None
    version: int = 0
    done: bool = False
    next_seq: int = 0
    fed_seq: int = -1
    swept_seq: int = -1
    feed_marks: tuple[FeedMark, ...] = ()
    rate_per_second: float = 0.0
    rate_sample_at: float | None = None
    rate_sample_done: int = 0
    # The recipients' time zones met so far (queues that send in recipients' local time).
    zones: frozenset[str] = frozenset()
    # The run the plan belongs to: a new run of a recurring queue starts planning from the beginning.
    run: int = 1
    # Epoch seconds at which the account's messaging limit has room again, while it holds this queue's jobs back.
    limit_resets_at: float | None = None


@dataclass(frozen=True)
class QueueTally:
    """A queue's counters and error statistics, summed over its counter items."""

    counters: QueueCounters = field(default_factory=QueueCounters)
    error_counts: dict[str, int] = field(default_factory=dict)
    error_messages: dict[str, str] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        counters = self.counters
        return counters.sent + counters.failed + counters.opted_out + counters.skipped


def tally_from_parts(parts: list[tuple[dict[str, int], dict[str, int], dict[str, str]]]) -> QueueTally:
    """Sum (counters, error counts, error messages) of several counter items."""
    counters: dict[str, int] = dict.fromkeys((counter.value for counter in Counter), 0)
    error_counts: dict[str, int] = {}
    error_messages: dict[str, str] = {}
    for part_counters, part_errors, part_messages in parts:
        for name, value in part_counters.items():
            if name in counters:
                counters[name] += int(value)
        for code, count in part_errors.items():
            error_counts[code] = error_counts.get(code, 0) + int(count)
        error_messages.update(part_messages)
    return QueueTally(QueueCounters(**counters), error_counts, error_messages)


@dataclass(frozen=True)
class ActiveAccount:
    business_id: str
    account_id: str
    queue_ids: frozenset[str]


@dataclass(frozen=True)
class Reservation:
    """What a batch was granted. `granted`: the indexes (into the recipients asked for, in order) of the messages
    that may go, `slots[i]` the epoch second at which `granted[i]` may. The others were held: by the messaging limit
    (`limit_reached`: no room for their recipients in the rolling 24 h) or by the rate (`retry_after_s`: every slot
    is taken for longer than the sender may wait). `opened`: the granted recipients counted as new, whose 24 h
    window the sender records once their message went out."""

    granted: tuple[int, ...] = ()
    slots: list[float] = field(default_factory=list)
    retry_after_s: float = 0.0
    limit_reached: bool = False
    opened: frozenset[str] = frozenset()


class SendOutcome(StrEnum):
    """What became of one job a sender received."""

    SENT = "sent"
    RETRY = "retry"  # SQS hands it out again after a backoff
    FAILED = "failed"
    SETTLED_ELSEWHERE = "settled_elsewhere"  # another sender or the dead-letter consumer moved it first
    HANDED_BACK = "handed_back"  # not sent: the sending window closed (or the queue expired) while it waited
    DEFERRED = "deferred"  # refused for now (RETRY_LATER): back to the planner, fed again hours later
