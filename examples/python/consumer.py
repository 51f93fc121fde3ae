#!/usr/bin/env python3
"""A rotessa-recon outbox consumer in Python (psycopg 3): poll, process, ack.

It follows the SQL contract of docs/outbox-consumers.md:

    select rotessa.outbox_register(consumer, start_from)      -- once, idempotent
    loop:
        begin
          select ... from rotessa.outbox_poll(consumer, max)   -- the next batch
          -- the side effects of every event in the batch
          select rotessa.outbox_ack(consumer, txid::xid8, seq) -- the batch's last event
        commit
        wait for NOTIFY rotessa_outbox, or the poll interval, whichever comes first

The side effects here are a demo: one row per event in the table outbox_example_processed,
written in the same transaction as the ack, so each event is processed exactly once (a crash
before COMMIT undoes both the rows and the ack; the batch is delivered again). Once the
transaction has committed, the id of every event it processed is printed on stdout, one per
line. Logs go to stderr.

Delivery is at least once: if your side effects live somewhere else (another database, an HTTP
API, a broker), the ack can no longer share their transaction, and an event may be delivered
again after a crash between the side effect and the ack. Make processing idempotent by event id
(a unique key on it, "insert ... on conflict do nothing"), as `process` below does even though
it does not need to.

Usage:
    DATABASE_URL=postgres://... CONSUMER=billing python3 consumer.py [--until-caught-up]

Requires psycopg 3 (Debian: apt-get install python3-psycopg; elsewhere: pip install psycopg).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
from typing import Any, Callable, Optional

import psycopg
from psycopg.rows import namedtuple_row

log = logging.getLogger("outbox-consumer")

# rotessa-recon sends `NOTIFY rotessa_outbox` (empty payload) in every transaction that wrote
# events. It is only a hint to poll now: notifications are lost while the listening connection
# is down, and PgBouncer in transaction pooling mode does not deliver them at all, so the loop
# polls on a timer as well.
CHANNEL = "rotessa_outbox"

# `txid` is an xid8, which psycopg has no type for: read it as text and pass it back as text
# cast to xid8 (`$2::text::xid8`). `seq` is a bigint (a Python int).
POLL_SQL = """
    select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
    from rotessa.outbox_poll(%s, %s::integer)
"""
ACK_SQL = "select rotessa.outbox_ack(%s, %s::text::xid8, %s::bigint)"

# Events committed after the consumer's position, whether or not they are deliverable yet
# (an event stays behind the visibility fence while any older transaction of the server runs).
BACKLOG_SQL = "select backlog from rotessa.outbox_consumer_lag where name = %s"
FENCE_DELAY_MIN = 0.005
FENCE_DELAY_MAX = 0.25

# The demo side effect: a table of the consumer's own. In a real consumer this is your table
# (an invoice, a ledger line, a CRM task ...); the primary key on the event id is what makes
# processing idempotent.
SETUP_SQL = """
    create table if not exists outbox_example_processed (
        consumer     text        not null,
        event_id     uuid        not null,
        type         text        not null,
        aggregateid  text        not null,
        summary      text        not null,
        processed_at timestamptz not null default now(),
        primary key (consumer, event_id)
    )
"""
PROCESS_SQL = """
    insert into outbox_example_processed (consumer, event_id, type, aggregateid, summary)
    values (%s, %s, %s, %s, %s)
    on conflict (consumer, event_id) do nothing
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit 0 once a poll returns nothing and no committed event is waiting "
        "(for CI and batch jobs); without it, follow the outbox until SIGTERM/SIGINT",
    )
    p.add_argument("--batch", type=int, default=500, help="events per poll (default 500)")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between polls when idle, whatever LISTEN says (default 1)",
    )
    p.add_argument(
        "--no-listen",
        action="store_true",
        help="do not LISTEN (behind PgBouncer in transaction pooling mode): poll on the timer only",
    )
    p.add_argument(
        "--start-from",
        choices=("beginning", "now"),
        default="beginning",
        help="where a NEW consumer starts: every retained event, or only future ones "
        "(an existing consumer keeps its position)",
    )
    return p.parse_args()


# --- Graceful shutdown ---------------------------------------------------------------------
#
# SIGTERM (systemd, Kubernetes) and SIGINT (Ctrl-C) only set a flag: a batch in progress runs
# to its COMMIT (or is rolled back whole if it fails) and the loop then exits 0. A self-pipe
# (signal.set_wakeup_fd) wakes the idle wait immediately instead of at the next poll.


class Shutdown:
    def __init__(self) -> None:
        self.requested = False
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        if not self.requested:
            log.info("%s received: finishing the current batch, then exiting",
                     signal.Signals(signum).name)
        self.requested = True


# --- Waking up -----------------------------------------------------------------------------


class Waker:
    """Waits for a NOTIFY on rotessa_outbox, the poll interval, or a shutdown signal.

    LISTEN needs a session of its own that stays open (autocommit, never in a transaction).
    If it cannot be opened or drops, the consumer carries on polling on the timer and tries to
    listen again at the next wait.
    """

    def __init__(self, url: str, enabled: bool, shutdown: Shutdown) -> None:
        self.url = url
        self.enabled = enabled
        self.shutdown = shutdown
        self.conn: Optional[psycopg.Connection[Any]] = None
        self.notified = False

    def _listen(self) -> None:
        if not self.enabled or self.conn is not None:
            return
        try:
            conn = psycopg.connect(self.url, autocommit=True)
            conn.add_notify_handler(self._on_notify)
            conn.execute(f"LISTEN {CHANNEL}")
            self.conn = conn
            log.info("listening on %s", CHANNEL)
        except psycopg.Error as e:
            log.warning("cannot LISTEN (%s); polling every interval only", e)

    def _on_notify(self, _notify: psycopg.Notify) -> None:
        self.notified = True

    def wait(self, timeout: float) -> None:
        self._listen()
        self.notified = False
        fds = [self.shutdown.read_fd]
        if self.conn is not None:
            fds.append(self.conn.fileno())
        readable, _, _ = select.select(fds, [], [], timeout)
        if self.shutdown.read_fd in readable:
            os.read(self.shutdown.read_fd, 64)  # drain the signal bytes
        if self.conn is not None and self.conn.fileno() in readable:
            try:
                # Any round trip makes psycopg read the pending notifications and call
                # _on_notify; it also notices a connection the server closed.
                self.conn.execute("select 1")
            except psycopg.Error as e:
                log.warning("LISTEN connection lost (%s); reconnecting at the next wait", e)
                self.close()
        if self.notified:
            log.debug("woken by NOTIFY %s", CHANNEL)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None


# --- Processing ----------------------------------------------------------------------------


def _transaction_status(p: dict[str, Any]) -> str:
    s = f"{p.get('from_status') or 'new'} -> {p.get('to_status')}"
    # Rotessa moved it back in its lifecycle (a chargeback reversed, a decline resubmitted):
    # undo what was booked for the earlier state. Events written before the field existed
    # lack it: treat that as false.
    return s + " (reversal)" if p.get("reversal", False) else s


def _reconciliation(p: dict[str, Any]) -> str:
    return f"difference {p.get('difference')}"


# One function per event type you care about; every payload carries event_version (1).
SUMMARIES: dict[str, Callable[[dict[str, Any]], str]] = {
    "transaction.status_changed": _transaction_status,
    "transaction.removed": lambda p: f"removed while {p.get('to_status')}",
    "transaction.restored": lambda p: f"restored as {p.get('to_status')}",
    "settlement.changed": lambda p: "new" if p.get("previous") is None else "totals changed",
    "reconciliation.mismatch": _reconciliation,
    "reconciliation.matched": lambda p: "matched",
}


def process(conn: psycopg.Connection[Any], consumer: str, event: Any) -> bool:
    """The side effect of one event, inside the batch's transaction.

    Returns False for an event processed before (the insert hit the primary key), which is
    then skipped: processing is idempotent by event id.
    """
    payload: dict[str, Any] = event.payload  # jsonb arrives as a dict
    if payload.get("event_version") != 1:
        # A future version of the payload: fail loudly rather than misread it. The batch is
        # rolled back and not acked, so nothing is lost once the consumer is updated.
        raise ValueError(f"event {event.id}: unsupported event_version {payload.get('event_version')}")
    summarize = SUMMARIES.get(event.type, lambda _p: event.type)
    cur = conn.execute(
        PROCESS_SQL, (consumer, event.id, event.type, event.aggregateid, summarize(payload))
    )
    return cur.rowcount == 1


def run_batch(conn: psycopg.Connection[Any], consumer: str, batch: int) -> int:
    """Polls one batch, processes it and acks its last event, all in one transaction.

    Returns the number of events polled.
    """
    processed = []
    with conn.transaction():  # BEGIN ... COMMIT, or ROLLBACK on an exception
        events = conn.execute(POLL_SQL, (consumer, batch)).fetchall()
        for event in events:
            if process(conn, consumer, event):
                processed.append(event.id)
            else:
                log.info("event %s was already processed: skipped", event.id)
        if events:
            # One ack per batch is enough: it moves the position past every event up to the
            # last one (delivery order is (txid, seq), so the last row is the furthest).
            last = events[-1]
            conn.execute(ACK_SQL, (consumer, last.txid, last.seq))
    # Committed: the side effects and the ack are durable together. Report them.
    for event_id in processed:
        print(event_id, flush=True)
    if events:
        log.debug("batch of %d events processed and acked up to %s:%s",
                  len(events), events[-1].txid, events[-1].seq)
    return len(events)


def backlog(conn: psycopg.Connection[Any], consumer: str) -> int:
    row = conn.execute(BACKLOG_SQL, (consumer,)).fetchone()
    return int(row.backlog) if row is not None else 0


# --- The loop ------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = os.environ.get("DATABASE_URL")
    consumer = os.environ.get("CONSUMER")
    if not url or not consumer:
        log.error("set DATABASE_URL (the rotessa-recon database) and CONSUMER (this consumer's name)")
        return 2

    shutdown = Shutdown()
    waker = Waker(url, enabled=not args.no_listen and not args.until_caught_up, shutdown=shutdown)
    # autocommit: every statement outside a `with conn.transaction()` block commits on its own,
    # so the connection is never left idle in a transaction (which would hold the visibility
    # fence and stop delivery for every consumer).
    with psycopg.connect(url, autocommit=True, row_factory=namedtuple_row) as conn:
        conn.execute(SETUP_SQL)
        # Idempotent: a consumer that exists keeps its position, so this runs at every start.
        created = conn.execute(
            "select rotessa.outbox_register(%s, %s) as created", (consumer, args.start_from)
        ).fetchone()
        log.info("consumer %s %s", consumer,
                 f"registered (from the {args.start_from})" if created.created else "resumes")

        fence_delay = FENCE_DELAY_MIN
        while not shutdown.requested:
            polled = run_batch(conn, consumer, args.batch)
            if polled == args.batch:
                continue  # a full batch: more may be waiting, poll again at once
            if args.until_caught_up and polled > 0:
                continue  # poll until a poll comes back empty
            waiting = backlog(conn, consumer)
            if waiting > 0:
                # Committed after our position but not returned: behind the visibility fence,
                # because an older transaction somewhere on the server is still open (or they
                # committed just now). Poll again soon rather than at the next interval: after
                # 5, 10, 20 ... ms, at most 250 ms.
                log.debug("%d events wait behind the visibility fence", waiting)
                waker.wait(min(fence_delay, args.poll_interval))
                fence_delay = min(fence_delay * 2, FENCE_DELAY_MAX)
                continue
            fence_delay = FENCE_DELAY_MIN
            if args.until_caught_up:
                log.info("caught up")
                break
            waker.wait(args.poll_interval)
    waker.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except psycopg.Error as e:
        # Connection refused, permission denied (SQLSTATE 42501: the consumer was registered by
        # another role), the contract not installed (run `rotessa-recon migrate`) ...
        # A supervisor (systemd Restart=on-failure, Kubernetes) restarts the process; the
        # consumer resumes from its last ack.
        log.error("%s%s", e, f" (SQLSTATE {e.sqlstate})" if e.sqlstate else "")
        sys.exit(1)
