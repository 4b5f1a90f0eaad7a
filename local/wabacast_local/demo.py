"""A demo campaign on a running local stack, through the public API: `make demo` (or `python -m wabacast_local.demo`).

It reads the stack's URLs and the demo business's key from `.wabacast/local.json`, creates a sandbox account and a
queue of `--messages` recipients, starts it, and prints its progress until the queue is COMPLETED and the sandbox
has posted every status callback it planned (when callbacks are on). The last line gives the counts (sent,
delivered, read, failed) and the campaign's cost, as `GET /api/whatsapp/queue/{id}/process` answers them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from wabacast_local.state import STATE_FILE_NAME

# One inline queue holds at most this many recipients (wabacast.domain.models.MAX_INLINE_RECIPIENTS).
MAX_MESSAGES = 1000
POLL_INTERVAL_S = 2.0


class DemoError(RuntimeError):
    """A failure the message fully explains."""


@dataclass(frozen=True)
class DemoResult:
    queue_id: str
    status: str
    counters: dict[str, int]
    cost: dict[str, Any] | None
    completed_after_s: float
    settled_after_s: float
    callbacks: dict[str, int] | None

    def summary(self) -> str:
        counters = self.counters
        cost = f"{self.cost['total']} {self.cost['currency']}" if self.cost else "n/a"
        return (
            f"queue {self.queue_id} {self.status} after {self.completed_after_s:.0f} s: "
            f"{counters.get('total', 0)} messages, sent {counters.get('sent', 0)}, "
            f"delivered {counters.get('delivered', 0)}, read {counters.get('read', 0)}, "
            f"failed {counters.get('failed', 0)}; cost {cost}; callbacks settled after {self.settled_after_s:.0f} s"
        )


def recipients(count: int, first: int = 0) -> list[str]:
    """Distinct Spanish mobile numbers (+34 6xx): priced by the table, never real subscribers of the sandbox."""
    return [f"+3461{number:07d}" for number in range(first, first + count)]


def run_campaign(
    api: httpx.Client,
    sandbox: httpx.Client | None,
    *,
    messages: int,
    rate: int,
    timeout_s: float,
    out: TextIO,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DemoResult:
    account = _created(
        api.post(
            "/api/whatsapp/accounts",
            json={
                "displayName": f"Demo sender {int(time.time())}",
                "phoneNumber": _free_number(api),
                "provider": "sandbox",
                "limits": {"messagesPerSecond": rate},
                # Unlimited, as the sandbox's numbers are: a second demo within 24 h is not held by the messaging
                # limit (1,000 unique recipients a day on the default tier).
                "messagingTier": "TIER_UNLIMITED",
            },
        ),
        "account",
    )
    queue = _created(
        api.post(
            "/api/whatsapp/queue",
            json={
                "name": f"Demo campaign of {messages}",
                "accountId": account["id"],
                "template": {"name": "spring_promo", "language": "en_US", "category": "marketing"},
                "audience": {"recipients": [{"phoneNumber": number} for number in recipients(messages)]},
            },
        ),
        "queue",
    )
    queue_id = str(queue["id"])
    started = clock()
    response = api.post(f"/api/whatsapp/queue/{queue_id}/process")
    if response.status_code != 202:
        raise DemoError(f"POST /api/whatsapp/queue/{queue_id}/process answered {response.status_code}: {response.text}")
    progress = response.json()
    print(f"queue {queue_id}: {messages} messages through account {account['id']} at {rate}/s", file=out, flush=True)
    while progress["status"] not in ("COMPLETED", "CANCELLED", "FAILED"):
        if clock() - started > timeout_s:
            raise DemoError(f"queue {queue_id} not finished after {timeout_s:.0f} s: {progress['counters']}")
        sleep(POLL_INTERVAL_S)
        progress = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
        print(_line(clock() - started, progress), file=out, flush=True)
    completed_after = clock() - started
    callbacks = _wait_for_callbacks(sandbox, started, timeout_s, clock, sleep) if sandbox is not None else None
    progress = api.get(f"/api/whatsapp/queue/{queue_id}/process").json()
    return DemoResult(
        queue_id=queue_id,
        status=str(progress["status"]),
        counters=dict(progress["counters"]),
        cost=progress.get("cost"),
        completed_after_s=completed_after,
        settled_after_s=clock() - started,
        callbacks=callbacks,
    )


def _wait_for_callbacks(
    sandbox: httpx.Client, started: float, timeout_s: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> dict[str, int]:
    while True:
        summary: dict[str, int] = sandbox.get("/callbacks", params={"limit": 1}).json()["summary"]
        if summary["pending"] == 0:
            return summary
        if clock() - started > timeout_s:
            raise DemoError(f"{summary['pending']} status callbacks still pending after {timeout_s:.0f} s")
        sleep(POLL_INTERVAL_S / 4)


def _line(elapsed_s: float, progress: dict[str, Any]) -> str:
    counters = progress["counters"]
    cost = progress.get("cost") or {}
    return (
        f"  {elapsed_s:5.0f} s  {progress['status']:<10}  sent {counters['sent']:>5}  "
        f"delivered {counters['delivered']:>5}  read {counters['read']:>5}  failed {counters['failed']:>4}  "
        f"pending {counters['pending']:>5}  cost {cost.get('total', '0')} {cost.get('currency', '')}"
    )


def _created(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 201:
        raise DemoError(f"creating the demo {what} answered {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return body


def _free_number(api: httpx.Client) -> str:
    """A sender number no account of this stack holds yet (a number belongs to one account)."""
    taken: set[str] = set()
    token: str | None = None
    while True:
        page = api.get("/api/whatsapp/accounts", params={"limit": 100, **({"nextToken": token} if token else {})})
        body = page.json()
        taken |= {str(item["phoneNumber"]) for item in body.get("items", [])}
        token = body.get("nextToken")
        if not token:
            break
    for suffix in range(1000):
        candidate = f"+1415555{suffix:04d}"
        if candidate not in taken:
            return candidate
    raise DemoError("no free demo sender number left; restart the stack")


def _callbacks_on(sandbox: httpx.Client) -> bool:
    config = sandbox.get("/config").json()
    return bool(config.get("callbackUrl"))


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="python -m wabacast_local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help=f"recipients, 1-{MAX_MESSAGES} (default 1000)")
    parser.add_argument("--rate", type=int, default=80, help="the demo account's messages per second (default 80)")
    parser.add_argument("--state-dir", type=Path, default=Path(".wabacast"), help="where `make run` wrote local.json")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds (default 900)")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be between 1 and {MAX_MESSAGES}")
    state_file = args.state_dir / STATE_FILE_NAME
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        print(f"no running local stack: {state_file} is missing; start one with `make run`", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {state['apiKey']}"}
    with httpx.Client(base_url=state["apiUrl"], headers=headers, timeout=30) as api:
        sandbox = httpx.Client(base_url=state["sandboxUrl"], timeout=30) if state.get("sandboxUrl") else None
        try:
            waiting_for = sandbox if sandbox is not None and _callbacks_on(sandbox) else None
            result = run_campaign(
                api, waiting_for, messages=args.messages, rate=args.rate, timeout_s=args.timeout, out=out
            )
        except (DemoError, httpx.HTTPError) as error:
            print(f"demo failed: {error}", file=sys.stderr)
            return 1
        finally:
            if sandbox is not None:
                sandbox.close()
    print(result.summary(), file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
