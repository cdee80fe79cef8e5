//! One test body, two engines: [`Db`] is a fresh SQLite file or a fresh PostgreSQL server, and
//! [`both_engines!`] registers a body as `sqlite::NAME` and `postgres::NAME`. Without the
//! PostgreSQL binaries the `postgres::` tests fail saying how to get them.
#![allow(dead_code)]

use tempfile::TempDir;
use tykwatch::config::{Secret, StoreConfig};
use tykwatch::store::{DB_FILE, Store};

use crate::common::postgres::PgServer;

/// The database the tests use on a PostgreSQL server.
pub const PG_DB: &str = "tykwatch";

pub enum Db {
    Sqlite(TempDir),
    Postgres(PgServer),
}

impl Db {
    pub fn sqlite() -> Db {
        Db::Sqlite(TempDir::new().unwrap())
    }

    pub fn postgres() -> Db {
        let pg = PgServer::start();
        pg.create_db(PG_DB);
        Db::Postgres(pg)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// `[store]` as a config file would give it (empty on SQLite).
    pub fn config(&self) -> StoreConfig {
        match self {
            Db::Sqlite(_) => StoreConfig::default(),
            Db::Postgres(pg) => StoreConfig {
                url: Secret::new(pg.url(PG_DB)),
                ..StoreConfig::default()
            },
        }
    }

    /// A new connection: what a restarted process, or another instance, opens.
    pub fn open(&self) -> Store {
        match self {
            Db::Sqlite(dir) => Store::open(dir.path().join(DB_FILE)).unwrap(),
            Db::Postgres(_) => Store::connect(&self.config()).unwrap(),
        }
    }

    /// Runs SQL outside the store (another connection), e.g. to inject a fault.
    pub fn sql(&self, sql: &str) {
        match self {
            Db::Sqlite(dir) => rusqlite::Connection::open(dir.path().join(DB_FILE))
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Db::Postgres(pg) => {
                pg.psql(PG_DB, sql);
            }
        }
    }

    /// `SELECT count(*) FROM table`, through another connection (so: what is committed).
    pub fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Db::Sqlite(dir) => rusqlite::Connection::open(dir.path().join(DB_FILE))
                .unwrap()
                .query_row(&sql, [], |r| r.get(0))
                .unwrap(),
            Db::Postgres(pg) => pg.psql(PG_DB, &sql).parse().unwrap(),
        }
    }

    /// An `outbox` insert trigger that fails for `quota_key` (then [`Db::clear_fault`]).
    pub fn fail_outbox_inserts_of(&self, quota_key: &str) {
        match self {
            Db::Sqlite(_) => self.sql(&format!(
                "CREATE TRIGGER boom BEFORE INSERT ON outbox WHEN NEW.quota_key = '{quota_key}' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            )),
            Db::Postgres(_) => self.sql(&format!(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.quota_key = '{quota_key}' THEN RAISE EXCEPTION 'injected failure'; \
                 END IF; RETURN NEW; END $$; \
                 CREATE TRIGGER boom BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION boom();"
            )),
        }
    }

    pub fn clear_fault(&self) {
        match self {
            Db::Sqlite(_) => self.sql("DROP TRIGGER boom"),
            Db::Postgres(_) => self.sql("DROP TRIGGER boom ON outbox; DROP FUNCTION boom();"),
        }
    }

    pub fn server(&self) -> Option<&PgServer> {
        match self {
            Db::Postgres(pg) => Some(pg),
            Db::Sqlite(_) => None,
        }
    }
}

/// `both_engines!(a, b)`: `sqlite::a`, `postgres::a`, … each calling `a(&Db)` on a fresh
/// database of that engine.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&$crate::engines::Db::sqlite()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&$crate::engines::Db::postgres()) } )*
        }
    };
}
