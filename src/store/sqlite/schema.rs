//! The schema: migrations in order; `PRAGMA user_version` = how many have run.

/// Schema migrations; `user_version` = how many have run. Append only, never edit.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE ledger (
  quota_key TEXT    NOT NULL,
  period    INTEGER NOT NULL,
  threshold REAL    NOT NULL,
  state     TEXT    NOT NULL CHECK (state IN ('fired','covered')),
  usage_pct REAL    NOT NULL,
  fired_at  INTEGER NOT NULL,
  PRIMARY KEY (quota_key, period, threshold)
) WITHOUT ROWID;
CREATE INDEX ledger_period ON ledger(period);

CREATE TABLE outbox (
  idem_key        TEXT PRIMARY KEY,
  channel_id      TEXT    NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('tyk_webhook','standard_webhook','email')),
  payload_json    TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending','inflight','delivered','failed','dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status     INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  quota_key       TEXT    NOT NULL,
  period          INTEGER NOT NULL,
  threshold       REAL    NOT NULL,
  sequence        INTEGER NOT NULL,
  FOREIGN KEY (quota_key, period, threshold) REFERENCES ledger (quota_key, period, threshold)
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_sequence ON outbox(sequence);
CREATE INDEX outbox_channel ON outbox(channel_id, state);

CREATE TABLE channels (
  channel_id      TEXT PRIMARY KEY,
  disabled_at     INTEGER,
  disabled_reason TEXT
);

CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('last_sequence', 0);
"#,
    r#"
-- The intake's log of received webhooks. AUTOINCREMENT: an id returned to a sender is never
-- reused, even after old rows are purged.
CREATE TABLE events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at  INTEGER NOT NULL,
  kind         TEXT    NOT NULL,
  event        TEXT    NOT NULL,
  org_id       TEXT    NOT NULL DEFAULT '',
  summary      TEXT    NOT NULL DEFAULT '',
  masked_key   TEXT    NOT NULL DEFAULT '',
  payload_json TEXT    NOT NULL
);
CREATE INDEX events_received ON events(received_at);
"#,
    r#"
-- Outbox rows say where they come from: a crossing (its ledger row, enforced by the foreign
-- key) or a received event (its id; no foreign key, so retention may purge the event while
-- its notifications stay listed). Rows of events used to pose as crossings of the quota
-- `event:<id>` (period 0, threshold 0) with a fake `fired` ledger row; they are rewritten
-- here, and whether an event was routed moves to `events.routed_at`. SQLite cannot change a
-- table's constraints, so the outbox is copied into a new table (nothing references it).
CREATE TABLE outbox_v3 (
  idem_key        TEXT PRIMARY KEY,
  channel_id      TEXT    NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('tyk_webhook','standard_webhook','email')),
  payload_json    TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending','inflight','delivered','failed','dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status     INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  source          TEXT    NOT NULL CHECK (source IN ('crossing','event')),
  quota_key       TEXT,
  period          INTEGER,
  threshold       REAL,
  event_id        INTEGER,
  sequence        INTEGER NOT NULL,
  CHECK ((source = 'crossing' AND quota_key IS NOT NULL AND period IS NOT NULL
          AND threshold IS NOT NULL AND event_id IS NULL)
      OR (source = 'event' AND event_id IS NOT NULL AND quota_key IS NULL
          AND period IS NULL AND threshold IS NULL)),
  FOREIGN KEY (quota_key, period, threshold) REFERENCES ledger (quota_key, period, threshold)
);
INSERT INTO outbox_v3 (idem_key, channel_id, kind, payload_json, state, attempts,
  next_attempt_at, last_status, last_error, created_at, delivered_at, source, quota_key,
  period, threshold, event_id, sequence)
SELECT idem_key, channel_id, kind, payload_json, state, attempts, next_attempt_at,
  last_status, last_error, created_at, delivered_at,
  CASE WHEN quota_key GLOB 'event:*' THEN 'event' ELSE 'crossing' END,
  CASE WHEN quota_key GLOB 'event:*' THEN NULL ELSE quota_key END,
  CASE WHEN quota_key GLOB 'event:*' THEN NULL ELSE period END,
  CASE WHEN quota_key GLOB 'event:*' THEN NULL ELSE threshold END,
  CASE WHEN quota_key GLOB 'event:*' THEN CAST(substr(quota_key, 7) AS INTEGER) END,
  sequence
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_sequence ON outbox(sequence);
CREATE INDEX outbox_channel ON outbox(channel_id, state);
CREATE INDEX outbox_event ON outbox(event_id) WHERE event_id IS NOT NULL;

ALTER TABLE events ADD COLUMN routed_at INTEGER;
UPDATE events SET routed_at = (SELECT l.fired_at FROM ledger l
  WHERE l.quota_key = 'event:' || events.id AND l.period = 0 AND l.threshold = 0);
DELETE FROM ledger WHERE quota_key GLOB 'event:*' AND period = 0;
CREATE INDEX events_unrouted ON events(id) WHERE routed_at IS NULL;
"#,
    r#"
-- Claims with leases (shared with the PostgreSQL schema, so both engines behave alike): who
-- holds an inflight row, until when, and the token of that claim.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE outbox ADD COLUMN claim_token INTEGER;
CREATE INDEX outbox_claimed ON outbox(claimed_by) WHERE claimed_by IS NOT NULL;

CREATE TABLE instances (
  id          TEXT PRIMARY KEY,
  host        TEXT    NOT NULL,
  pid         INTEGER NOT NULL,
  version     TEXT    NOT NULL,
  config_hash TEXT    NOT NULL,
  started_at  INTEGER NOT NULL,
  seen_at     INTEGER NOT NULL
);
"#,
    r#"
-- The request or e-mail as it was last sent (credentials and raw keys masked), and when: what
-- the console shows for a sent notification, rather than a rebuild with a new signature.
ALTER TABLE outbox ADD COLUMN sent_request TEXT;
ALTER TABLE outbox ADD COLUMN sent_at INTEGER;
"#,
];
