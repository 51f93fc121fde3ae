/**
 * A rotessa-recon outbox consumer in TypeScript (node-postgres): poll, process, ack.
 *
 * It follows the SQL contract of docs/outbox-consumers.md:
 *
 *     select rotessa.outbox_register(consumer, start_from)      -- once, idempotent
 *     loop:
 *       begin
 *         select ... from rotessa.outbox_poll(consumer, max)   -- the next batch
 *         -- the side effects of every event in the batch
 *         select rotessa.outbox_ack(consumer, txid::xid8, seq) -- the batch's last event
 *       commit
 *       wait for NOTIFY rotessa_outbox, or the poll interval, whichever comes first
 *
 * The side effects here are a demo: one row per event in the table outbox_example_processed,
 * written in the same transaction as the ack, so each event is processed exactly once (a crash
 * before COMMIT undoes both the rows and the ack; the batch is delivered again). Once the
 * transaction has committed, the id of every event it processed is printed on stdout, one per
 * line. Logs go to stderr.
 *
 * Delivery is at least once: if your side effects live somewhere else (another database, an
 * HTTP API, a broker), the ack can no longer share their transaction, and an event may be
 * delivered again after a crash between the side effect and the ack. Make processing
 * idempotent by event id (a unique key on it, "insert ... on conflict do nothing"), as
 * `processEvent` below does even though it does not need to.
 *
 * Usage (Node.js 18 or later):
 *     npm ci && npx tsc
 *     DATABASE_URL=postgres://... CONSUMER=billing node dist/consumer.js [--until-caught-up]
 */

import { parseArgs } from "node:util";
import { Client, DatabaseError } from "pg";

// rotessa-recon sends `NOTIFY rotessa_outbox` (empty payload) in every transaction that wrote
// events. It is only a hint to poll now: notifications are lost while the listening connection
// is down, and PgBouncer in transaction pooling mode does not deliver them at all, so the loop
// polls on a timer as well.
const CHANNEL = "rotessa_outbox";

// `txid` is an xid8, which node-postgres has no parser for: read it as text and pass it back as
// text cast to xid8. `seq` is a bigint, which node-postgres returns as a string (a JavaScript
// number loses precision past 2^53): it is only passed back, so it stays a string.
const POLL_SQL = `
  select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text as txid
  from rotessa.outbox_poll($1, $2::integer)`;
const ACK_SQL = "select rotessa.outbox_ack($1, $2::text::xid8, $3::bigint)";

// Events committed after the consumer's position, whether or not they are deliverable yet (an
// event stays behind the visibility fence while any older transaction of the server runs).
const BACKLOG_SQL = "select backlog::integer as backlog from rotessa.outbox_consumer_lag where name = $1";
const FENCE_DELAY_MIN_MS = 5;
const FENCE_DELAY_MAX_MS = 250;

// The demo side effect: a table of the consumer's own. In a real consumer this is your table
// (an invoice, a ledger line, a CRM task ...); the primary key on the event id is what makes
// processing idempotent.
const SETUP_SQL = `
  create table if not exists outbox_example_processed (
    consumer     text        not null,
    event_id     uuid        not null,
    type         text        not null,
    aggregateid  text        not null,
    summary      text        not null,
    processed_at timestamptz not null default now(),
    primary key (consumer, event_id)
  )`;
const PROCESS_SQL = `
  insert into outbox_example_processed (consumer, event_id, type, aggregateid, summary)
  values ($1, $2, $3, $4, $5)
  on conflict (consumer, event_id) do nothing`;

/** One row of `rotessa.outbox_poll`, as node-postgres decodes it. */
interface OutboxEvent {
  id: string; // uuid: the dedup key
  aggregatetype: string; // transaction, settlement, reconciliation, customer, payout
  aggregateid: string;
  type: string; // transaction.status_changed, settlement.changed, ...
  payload: Payload; // jsonb arrives parsed
  occurred_at: Date;
  seq: string; // bigint, as text
  txid: string; // xid8, as text
}

/** Every payload carries `event_version` (1); the rest depends on `type` (README.md "Events"). */
interface Payload {
  event_version: number;
  [field: string]: unknown;
}

interface Options {
  untilCaughtUp: boolean;
  batch: number;
  pollIntervalMs: number;
  listen: boolean;
  startFrom: "beginning" | "now";
}

const USAGE = `usage: CONSUMER=name DATABASE_URL=url node dist/consumer.js [options]
  --until-caught-up   exit 0 once a poll returns nothing and no committed event is waiting
                      (for CI and batch jobs); without it, follow until SIGTERM/SIGINT
  --batch N           events per poll (default 500)
  --poll-interval S   seconds between polls when idle, whatever LISTEN says (default 1)
  --no-listen         do not LISTEN (PgBouncer in transaction pooling mode): timer only
  --start-from WHERE  where a NEW consumer starts: beginning (default) or now`;

function options(): Options {
  const { values } = parseArgs({
    options: {
      "until-caught-up": { type: "boolean", default: false },
      batch: { type: "string", default: "500" },
      "poll-interval": { type: "string", default: "1" },
      "no-listen": { type: "boolean", default: false },
      "start-from": { type: "string", default: "beginning" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const batch = Number(values.batch);
  const interval = Number(values["poll-interval"]);
  const startFrom = values["start-from"];
  if (values.help || !Number.isInteger(batch) || batch < 1 || !(interval > 0) ||
      (startFrom !== "beginning" && startFrom !== "now")) {
    console.error(USAGE);
    process.exit(values.help ? 0 : 2);
  }
  return {
    untilCaughtUp: values["until-caught-up"] === true,
    batch,
    pollIntervalMs: interval * 1000,
    listen: values["no-listen"] !== true,
    startFrom,
  };
}

function log(level: "INFO" | "WARN" | "ERROR", message: string): void {
  console.error(`${new Date().toISOString()} ${level} outbox-consumer: ${message}`);
}

// --- Graceful shutdown and waking up ----------------------------------------------------------
//
// SIGTERM (systemd, Kubernetes) and SIGINT (Ctrl-C) only set a flag and cut the idle wait short:
// a batch in progress runs to its COMMIT (or is rolled back whole if it fails) and the loop then
// exits 0.

class Waker {
  stopping = false;
  private pending = false; // a NOTIFY arrived while no one was waiting
  private wake?: () => void;
  private listener?: Client;

  constructor(private readonly url: string, private readonly listen: boolean) {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        if (!this.stopping) log("INFO", `${signal} received: finishing the current batch, then exiting`);
        this.stopping = true;
        this.wake?.();
      });
    }
  }

  /**
   * LISTEN needs a session of its own that stays open (never in a transaction). If it cannot
   * be opened or drops, the consumer carries on polling on the timer and tries again at the
   * next wait.
   */
  private async ensureListening(): Promise<void> {
    if (!this.listen || this.listener !== undefined) return;
    const client = new Client({ connectionString: this.url });
    client.on("notification", () => {
      this.pending = true;
      this.wake?.();
    });
    client.on("error", (err) => {
      log("WARN", `LISTEN connection lost (${err.message}); reconnecting at the next wait`);
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.listener = client;
      // Anything notified while the connection was down is lost: poll at once.
      this.pending = true;
      log("INFO", `listening on ${CHANNEL}`);
    } catch (err) {
      log("WARN", `cannot LISTEN (${(err as Error).message}); polling every interval only`);
      await client.end().catch(() => undefined);
    }
  }

  /** Resolves on a NOTIFY, after `ms`, or on a shutdown signal, whichever comes first. */
  async wait(ms: number): Promise<void> {
    await this.ensureListening();
    if (this.stopping || this.pending) {
      this.pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  async close(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end();
  }
}

// --- Processing -------------------------------------------------------------------------------

const text = (v: unknown): string => (v === null || v === undefined ? "none" : String(v));

// One function per event type you care about.
const SUMMARIES: Record<string, (p: Payload) => string> = {
  "transaction.status_changed": (p) =>
    // `reversal`: Rotessa moved it back in its lifecycle (a chargeback reversed, a decline
    // resubmitted): undo what was booked for the earlier state. Events written before the
    // field existed lack it: treat that as false.
    `${p.from_status == null ? "new" : text(p.from_status)} -> ${text(p.to_status)}` +
    (p.reversal === true ? " (reversal)" : ""),
  "transaction.removed": (p) => `removed while ${text(p.to_status)}`,
  "transaction.restored": (p) => `restored as ${text(p.to_status)}`,
  "settlement.changed": (p) => (p.previous == null ? "new" : "totals changed"),
  "reconciliation.mismatch": (p) => `difference ${JSON.stringify(p.difference)}`,
  "reconciliation.matched": () => "matched",
};

/**
 * The side effect of one event, inside the batch's transaction. Returns false for an event
 * processed before (the insert hit the primary key), which is then skipped: processing is
 * idempotent by event id.
 */
async function processEvent(db: Client, consumer: string, event: OutboxEvent): Promise<boolean> {
  if (event.payload.event_version !== 1) {
    // A future version of the payload: fail loudly rather than misread it. The batch is rolled
    // back and not acked, so nothing is lost once the consumer is updated.
    throw new Error(`event ${event.id}: unsupported event_version ${event.payload.event_version}`);
  }
  const summarize = SUMMARIES[event.type] ?? (() => event.type);
  const result = await db.query(PROCESS_SQL, [
    consumer,
    event.id,
    event.type,
    event.aggregateid,
    summarize(event.payload),
  ]);
  return result.rowCount === 1;
}

/**
 * Polls one batch, processes it and acks its last event, all in one transaction. Returns the
 * number of events polled.
 */
async function runBatch(db: Client, consumer: string, batch: number): Promise<number> {
  const processed: string[] = [];
  let events: OutboxEvent[];
  await db.query("begin");
  try {
    events = (await db.query<OutboxEvent>(POLL_SQL, [consumer, batch])).rows;
    for (const event of events) {
      if (await processEvent(db, consumer, event)) {
        processed.push(event.id);
      } else {
        log("INFO", `event ${event.id} was already processed: skipped`);
      }
    }
    const last = events.at(-1);
    if (last !== undefined) {
      // One ack per batch is enough: it moves the position past every event up to the last
      // one (delivery order is (txid, seq), so the last row is the furthest).
      await db.query(ACK_SQL, [consumer, last.txid, last.seq]);
    }
    await db.query("commit");
  } catch (err) {
    await db.query("rollback").catch(() => undefined);
    throw err;
  }
  // Committed: the side effects and the ack are durable together. Report them.
  if (processed.length > 0) process.stdout.write(processed.map((id) => `${id}\n`).join(""));
  return events.length;
}

async function backlog(db: Client, consumer: string): Promise<number> {
  const { rows } = await db.query<{ backlog: number }>(BACKLOG_SQL, [consumer]);
  return rows[0]?.backlog ?? 0;
}

// --- The loop ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = options();
  const url = process.env.DATABASE_URL;
  const consumer = process.env.CONSUMER;
  if (!url || !consumer) {
    log("ERROR", "set DATABASE_URL (the rotessa-recon database) and CONSUMER (this consumer's name)");
    return 2;
  }

  const waker = new Waker(url, opts.listen && !opts.untilCaughtUp);
  // One connection for the work. Outside runBatch's begin/commit every statement commits on its
  // own, so the connection is never left idle in a transaction (which would hold the visibility
  // fence and stop delivery for every consumer).
  const db = new Client({ connectionString: url });
  // A connection lost while idle: the next query fails and main() exits 1.
  db.on("error", (err) => log("WARN", `database connection: ${err.message}`));
  await db.connect();
  try {
    await db.query(SETUP_SQL);
    // Idempotent: a consumer that exists keeps its position, so this runs at every start.
    const { rows } = await db.query<{ created: boolean }>(
      "select rotessa.outbox_register($1, $2) as created",
      [consumer, opts.startFrom],
    );
    log("INFO", `consumer ${consumer} ${rows[0]?.created ? `registered (from the ${opts.startFrom})` : "resumes"}`);

    let fenceDelayMs = FENCE_DELAY_MIN_MS;
    while (!waker.stopping) {
      const polled = await runBatch(db, consumer, opts.batch);
      if (polled === opts.batch) continue; // a full batch: more may be waiting, poll again at once
      if (opts.untilCaughtUp && polled > 0) continue; // poll until a poll comes back empty
      const waiting = await backlog(db, consumer);
      if (waiting > 0) {
        // Committed after our position but not returned: behind the visibility fence, because
        // an older transaction somewhere on the server is still open (or they committed just
        // now). Poll again soon rather than at the next interval: after 5, 10, 20 ... ms, at
        // most 250 ms.
        await waker.wait(Math.min(fenceDelayMs, opts.pollIntervalMs));
        fenceDelayMs = Math.min(fenceDelayMs * 2, FENCE_DELAY_MAX_MS);
        continue;
      }
      fenceDelayMs = FENCE_DELAY_MIN_MS;
      if (opts.untilCaughtUp) {
        log("INFO", "caught up");
        break;
      }
      await waker.wait(opts.pollIntervalMs);
    }
  } finally {
    await waker.close();
    await db.end();
  }
  return 0;
}

main().then(
  (code) => {
    // Not process.exit(): that could cut off stdout still being written to a pipe.
    process.exitCode = code;
  },
  (err: unknown) => {
    // Connection refused, permission denied (SQLSTATE 42501: the consumer was registered by
    // another role), the contract not installed (run `rotessa-recon migrate`) ... A supervisor
    // (systemd Restart=on-failure, Kubernetes) restarts the process; the consumer resumes from
    // its last ack.
    const sqlstate = err instanceof DatabaseError && err.code ? ` (SQLSTATE ${err.code})` : "";
    log("ERROR", `${err instanceof Error ? err.message : String(err)}${sqlstate}`);
    process.exitCode = 1;
  },
);
