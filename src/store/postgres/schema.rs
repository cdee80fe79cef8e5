//! The PostgreSQL schema: migrations in order; `tykwatch_schema.version` = how many have run.
//! The same tables as SQLite's (column for column), in PostgreSQL's types.

use super::Conn;
use crate::store::{Result, StoreError};

/// `pg_advisory_lock` key of the migrations ("TYKW" + 1).
const MIGRATION_LOCK: i64 = 0x5459_4B57_0001;

/// Append only, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE ledger (
  quota_key TEXT             NOT NULL,
  period    BIGINT           NOT NULL,
  threshold DOUBLE PRECISION NOT NULL,
  state     TEXT             NOT NULL CHECK (state IN ('fired','covered')),
  usage_pct DOUBLE PRECISION NOT NULL,
  fired_at  BIGINT           NOT NULL,
  PRIMARY KEY (quota_key, period, threshold)
);
CREATE INDEX ledger_period ON ledger(period);

-- Rows say where they come from: a crossing (its ledger row, by foreign key) or a received
-- event (its id; no foreign key, so retention may purge the event while its rows stay).
CREATE TABLE outbox (
  idem_key        TEXT PRIMARY KEY,
  channel_id      TEXT    NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('tyk_webhook','standard_webhook','email')),
  payload_json    TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending','inflight','delivered','failed','dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT  NOT NULL,
  last_status     INTEGER,
  last_error      TEXT,
  created_at      BIGINT  NOT NULL,
  delivered_at    BIGINT,
  source          TEXT    NOT NULL CHECK (source IN ('crossing','event')),
  quota_key       TEXT,
  period          BIGINT,
  threshold       DOUBLE PRECISION,
  event_id        BIGINT,
  sequence        BIGINT  NOT NULL,
  claimed_by      TEXT,
  claimed_until   BIGINT,
  claim_token     BIGINT,
  CHECK ((source = 'crossing' AND quota_key IS NOT NULL AND period IS NOT NULL
          AND threshold IS NOT NULL AND event_id IS NULL)
      OR (source = 'event' AND event_id IS NOT NULL AND quota_key IS NULL
          AND period IS NULL AND threshold IS NULL)),
  FOREIGN KEY (quota_key, period, threshold) REFERENCES ledger (quota_key, period, threshold)
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_sequence ON outbox(sequence);
CREATE INDEX outbox_channel ON outbox(channel_id, state);
CREATE INDEX outbox_event ON outbox(event_id) WHERE event_id IS NOT NULL;
CREATE INDEX outbox_claimed ON outbox(claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX outbox_leases ON outbox(claimed_until) WHERE state = 'inflight';
CREATE INDEX outbox_channel_due ON outbox(channel_id, next_attempt_at, sequence)
  WHERE state IN ('pending', 'inflight');

CREATE TABLE channels (
  channel_id      TEXT PRIMARY KEY,
  disabled_at     BIGINT,
  disabled_reason TEXT
);

CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('last_sequence', 0);

-- An id returned to a sender is never reused (a sequence never goes back).
CREATE TABLE events (
  id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at  BIGINT NOT NULL,
  kind         TEXT   NOT NULL,
  event        TEXT   NOT NULL,
  org_id       TEXT   NOT NULL DEFAULT '',
  summary      TEXT   NOT NULL DEFAULT '',
  masked_key   TEXT   NOT NULL DEFAULT '',
  payload_json TEXT   NOT NULL,
  routed_at    BIGINT
);
CREATE INDEX events_received ON events(received_at);
CREATE INDEX events_unrouted ON events(id) WHERE routed_at IS NULL;

CREATE TABLE instances (
  id          TEXT PRIMARY KEY,
  host        TEXT    NOT NULL,
  pid         BIGINT  NOT NULL,
  version     TEXT    NOT NULL,
  config_hash TEXT    NOT NULL,
  started_at  BIGINT  NOT NULL,
  seen_at     BIGINT  NOT NULL
);
"#,
    r#"
-- The request or e-mail as it was last sent (credentials and raw keys masked), and when.
ALTER TABLE outbox ADD COLUMN sent_request TEXT;
ALTER TABLE outbox ADD COLUMN sent_at BIGINT;
"#,
];

/// Brings the schema up to date, once however many instances start together; refuses a
/// schema newer than this build and a database whose tables are another program's.
pub(super) fn migrate(c: &mut Conn) -> Result<()> {
    let shown = c.target.shown.clone();
    let client = c.client()?;
    let run = (|| -> std::result::Result<std::result::Result<(), StoreError>, postgres::Error> {
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
        let out = (|| {
            client.batch_execute(
                "CREATE TABLE IF NOT EXISTS tykwatch_schema (version INTEGER NOT NULL)",
            )?;
            let found: Option<i32> = client
                .query_opt("SELECT max(version) FROM tykwatch_schema", &[])?
                .and_then(|r| r.get(0));
            let found = i64::from(found.unwrap_or(0));
            let known = MIGRATIONS.len() as i64;
            if found > known {
                return Ok(Err(StoreError::ServerTooNew {
                    target: shown.clone(),
                    found,
                    known,
                }));
            }
            if found == 0 {
                // Our table names in a database that has them but no tykwatch_schema row:
                // another program's, never to be extended.
                let taken: i64 = client
                    .query_one(
                        "SELECT count(*) FROM information_schema.tables \
                         WHERE table_schema = current_schema() \
                         AND table_name IN ('ledger', 'outbox', 'events', 'channels', 'meta', 'instances')",
                        &[],
                    )?
                    .get(0);
                if taken > 0 {
                    return Ok(Err(StoreError::Server {
                        target: shown.clone(),
                        detail: format!(
                            "the database already has {taken} tables with tykwatch's names but no tykwatch schema version"
                        ),
                        hint: "give tykwatch a database (or schema, via ?options=-csearch_path%3D…) of its own".into(),
                    }));
                }
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                let mut tx = client.transaction()?;
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO tykwatch_schema (version) VALUES ($1)",
                    &[&(i as i32 + 1)],
                )?;
                tx.commit()?;
            }
            Ok(Ok(()))
        })();
        // Released however the migration went (the session ends with it otherwise).
        let unlock = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        let out = out?;
        unlock?;
        Ok(out)
    })();
    match run {
        Ok(r) => r,
        Err(e) => Err(c.err(e)),
    }
}
