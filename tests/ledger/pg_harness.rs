//! The PostgreSQL test harness itself (`tests/common/postgres.rs`): real servers start, take
//! only the right password over TCP, keep their data across a fast shutdown and across a crash,
//! end sessions on request, and run side by side.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common;

use common::postgres::{PgServer, pg_available};

#[test]
fn server_creates_a_database_and_answers_psql() {
    let bindir = pg_available().unwrap();
    assert!(bindir.join("initdb").is_file(), "{}", bindir.display());
    let pg = PgServer::start();
    let port = pg.port();
    assert_eq!(pg.password(), "tykwatch-test");
    assert_eq!(
        pg.url("app"),
        format!("postgres://postgres:tykwatch-test@127.0.0.1:{port}/app")
    );
    assert_eq!(
        pg.url_without_password("app"),
        format!("postgres://postgres@127.0.0.1:{port}/app")
    );
    pg.create_db("app");
    assert_eq!(pg.psql("app", "SELECT current_database(), 1 + 1"), "app|2");
    assert_eq!(
        pg.psql("app", "SELECT 'Zürich ✓'"),
        "Zürich ✓",
        "UTF-8 both ways"
    );
    assert_eq!(pg.psql("app", "SHOW fsync"), "off");
    assert_eq!(pg.psql("app", "SHOW synchronous_commit"), "on");
    let failed = pg.psql_output("app", "SELECT * FROM missing");
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("\"missing\" does not exist"),
        "{failed:?}"
    );
}

#[test]
fn only_the_right_password_gets_in() {
    let pg = PgServer::start();
    for (password, why) in [("wrong", "a wrong password"), ("", "no password")] {
        let out = pg
            .psql_command("postgres", "SELECT 1")
            .env("PGPASSWORD", password)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{why} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("password authentication failed")
                || stderr.contains("no password supplied"),
            "{why}: {stderr}"
        );
    }
    assert_eq!(pg.psql("postgres", "SELECT 1"), "1");
}

#[test]
fn stop_and_start_again_keep_the_data() {
    let mut pg = PgServer::start();
    let port = pg.port();
    pg.psql(
        "postgres",
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('before stop')",
    );
    pg.stop();
    assert!(!pg.is_running());
    assert!(
        !pg.psql_output("postgres", "SELECT 1").status.success(),
        "a stopped server does not answer"
    );
    pg.start_again();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.psql("postgres", "SELECT v FROM t"), "before stop");

    // A crash: what was committed right before it survives (WAL recovery).
    pg.psql("postgres", "INSERT INTO t VALUES ('before kill')");
    pg.kill();
    assert!(!pg.is_running());
    pg.start_again();
    assert_eq!(pg.port(), port);
    assert_eq!(
        pg.psql("postgres", "SELECT string_agg(v, ',' ORDER BY v) FROM t"),
        "before kill,before stop"
    );
    assert!(
        pg.log().contains("database system was interrupted"),
        "{}",
        pg.log()
    );
}

#[test]
fn terminate_connections_ends_the_other_sessions() {
    let pg = PgServer::start();
    pg.create_db("app");
    let session = pg
        .psql_command("app", "SELECT pg_sleep(30)")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let busy = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app' AND query LIKE '%pg_sleep(30)'";
    let deadline = Instant::now() + Duration::from_secs(2);
    while pg.psql("postgres", busy) != "1" {
        assert!(Instant::now() < deadline, "the session never showed up");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pg.terminate_connections("app"), 1);
    let out = session.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("terminating connection"),
        "{out:?}"
    );
    assert_eq!(pg.terminate_connections("app"), 0);
}

#[test]
fn servers_in_parallel_get_their_own_port_and_data() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(PgServer::start);
        let b = s.spawn(PgServer::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.port(), b.port());
    a.psql("postgres", "CREATE TABLE only_a (x int)");
    assert_eq!(
        b.psql("postgres", "SELECT to_regclass('only_a') IS NULL"),
        "t"
    );
    assert_ne!(a.dir(), b.dir());
}

#[test]
fn drop_removes_the_server_and_its_dir() {
    let pg = PgServer::start();
    let dir = pg.dir().to_path_buf();
    let port = pg.port();
    assert!(dir.join("data/postmaster.pid").is_file());
    drop(pg);
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers"
    );
}
