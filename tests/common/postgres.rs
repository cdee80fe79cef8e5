//! Real PostgreSQL servers for tests. API: `PgServer::start()` → `port()`, `password()`
//! (`"tykwatch-test"`), `url(db)` (`postgres://postgres:tykwatch-test@127.0.0.1:PORT/db`),
//! `url_without_password(db)`, `create_db(name)`, `psql(db, sql) -> String` (panics on failure),
//! `psql_output(db, sql) -> Output` and `psql_command(db, sql) -> Command` (to run it another way,
//! e.g. with a wrong `PGPASSWORD`), `terminate_connections(db) -> usize`, `kill()` (SIGKILL: a
//! crash), `stop()` (fast shutdown), `start_again()` (same port, same data), `is_running()`,
//! `dir()`, `log()`; `PgServer::start_durable()` (fsync on, for benchmarks); `pg_available() -> Result<PathBuf, String>` (the directory of `initdb` and
//! `postgres`). The superuser `postgres` logs in over TCP with the password (scram-sha-256).
//!
//! `initdb` runs once per test process into a template; every server gets a copy of it in its own
//! temp dir, a free loopback port and its Unix socket in that dir, and is SIGKILLed (its dir
//! removed) on Drop. Durability that only matters when the machine crashes is off (fsync,
//! full_page_writes). As root (CI), initdb and postgres run as `nobody`: PostgreSQL refuses to
//! run as root. Binaries: `$TYKWATCH_PG_BIN`, `pg_config --bindir`, the highest
//! `/usr/lib/postgresql/N/bin` (Debian keeps them off PATH), Homebrew's `postgresql@N`, PATH.
//! Without them it panics with how to get them, never skips.
#![allow(dead_code)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::process::signal;

const NOT_FOUND: &str = "PostgreSQL server binaries (initdb, postgres) not found: run scripts/test (it installs the Debian package postgresql), or apt-get install postgresql / brew install postgresql@16";
const PSQL_NOT_FOUND: &str = "psql not found (neither beside initdb nor on PATH): run scripts/test (it installs the Debian package postgresql, which brings psql), or apt-get install postgresql / brew install postgresql@16";

/// The superuser's password (`-U postgres --pwfile`).
pub const PASSWORD: &str = "tykwatch-test";

/// How long a server may take to answer `psql` after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts on fresh ports when a server fails to start (e.g. its port was taken meanwhile).
const START_ATTEMPTS: usize = 5;
/// How long `start_again` retries on the same port.
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fast shutdown may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of every temp dir of this harness: `tykwatch-pg-[template-]<test pid>-XXXXXX`.
const DIR_PREFIX: &str = "tykwatch-pg-";

/// One `postgres` postmaster on 127.0.0.1, data in `dir()/data`, log in `dir()/postgres.log`.
pub struct PgServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// fsync and full_page_writes on (benchmarks of durable writes), else off.
    durable: bool,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// A fresh cluster (databases `postgres`, `template0`, `template1`) on a free port.
    pub fn start() -> PgServer {
        PgServer::start_with(false)
    }

    /// [`PgServer::start`] with PostgreSQL's default durability (fsync, full_page_writes on):
    /// what a benchmark of durable writes must compare with SQLite's `synchronous=FULL`.
    pub fn start_durable() -> PgServer {
        PgServer::start_with(true)
    }

    fn start_with(durable: bool) -> PgServer {
        let s = setup();
        let dir = new_dir("", s).unwrap_or_else(|e| panic!("{e}"));
        // `cp -a` keeps the modes (postgres wants 0700 or 0750 on its data dir) and, run as
        // root, the owner `nobody`.
        let out = Command::new("cp")
            .arg("-a")
            .arg(&s.template)
            .arg(dir.path().join("data"))
            .output()
            .expect("run cp");
        assert!(
            out.status.success(),
            "cp -a {} {}: {}",
            s.template.display(),
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            match spawn(s, dir.path(), port, durable) {
                Ok(child) => {
                    return PgServer {
                        child: Some(child),
                        port,
                        dir,
                        durable,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("postgres did not start in {START_ATTEMPTS} attempts: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of the superuser `postgres`.
    pub fn password(&self) -> &str {
        PASSWORD
    }

    /// `postgres://postgres:tykwatch-test@127.0.0.1:PORT/db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`: connecting with it fails unless the password
    /// comes from elsewhere.
    pub fn url_without_password(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's temp dir: `data/`, `postgres.log`, the Unix socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The whole server log (of every start of this server).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// `CREATE DATABASE "name"`.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE {}", ident(name)));
    }

    /// `psql -X -A -t -v ON_ERROR_STOP=1 … -d db -c sql` as `postgres` over TCP: stdout trimmed
    /// (rows one per line, columns separated by `|`). Panics with psql's stderr on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.psql_output(db, sql);
        assert!(
            out.status.success(),
            "psql -p {} -d {db} -c {sql:?} failed ({}): {}{}\nserver log:\n{}",
            self.port,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.dir.path().join("postgres.log"))
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Like [`PgServer::psql`] but returns the whole output, whatever the exit status.
    pub fn psql_output(&self, db: &str, sql: &str) -> Output {
        self.psql_command(db, sql)
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"))
    }

    /// The command [`PgServer::psql`] runs (`PGPASSWORD` set), to change before running it.
    pub fn psql_command(&self, db: &str, sql: &str) -> Command {
        psql_command(setup(), self.port, db, sql)
    }

    /// Ends every other session on `db` (`pg_terminate_backend`), as an administrator or a
    /// failover would; returns how many there were.
    pub fn terminate_connections(&self, db: &str) -> usize {
        let sql = format!(
            // The timeout (PostgreSQL 14+) waits until each backend is gone: without it the
            // call returns while they still answer, and the client's next call may succeed.
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = {} AND pid <> pg_backend_pid()",
            literal(db)
        );
        self.psql("postgres", &sql)
            .lines()
            .filter(|l| *l == "t")
            .count()
    }

    /// True while the postmaster is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILLs the postmaster and waits for it: a crash. Its backends notice and exit on their
    /// own; the next start runs crash recovery. A no-op when not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Fast shutdown (SIGINT: sessions are ended, a checkpoint is written; see
    /// <https://www.postgresql.org/docs/current/server-shutdown.html>) and waits for it. A no-op
    /// when not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            signal(&child, "INT");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "postgres on port {} did not shut down in {STOP_TIMEOUT:?}:\n{}",
                    self.port,
                    log_tail(&self.dir.path().join("postgres.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the server again on the same port with the same data (after [`PgServer::stop`]
    /// or [`PgServer::kill`]; a running server is stopped first). Retries for 10 s while the
    /// port is taken or the killed server's backends still hold its shared memory.
    pub fn start_again(&mut self) {
        self.stop();
        let s = setup();
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            match spawn(s, self.dir.path(), self.port, self.durable) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    panic!("postgres did not start again on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        release_shared_memory(&self.dir.path().join("data"));
    }
}

/// The directory holding `initdb` and `postgres`, or why there is none.
pub fn pg_available() -> Result<PathBuf, String> {
    static BINDIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINDIR.get_or_init(find_bindir).clone()
}

/// What every server of this process shares.
struct Setup {
    bindir: PathBuf,
    psql: PathBuf,
    /// uid and gid of `nobody` when this process is root.
    run_as: Option<(u32, u32)>,
    /// Where the temp dirs go.
    base: PathBuf,
    /// The data dir `initdb` made, copied by every `PgServer::start`.
    template: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
    match SETUP.get_or_init(init) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn init() -> Result<Setup, String> {
    let bindir = pg_available()?;
    let psql = [bindir.join("psql")]
        .into_iter()
        .chain(path_dirs().map(|d| d.join("psql")))
        .find(|p| is_executable(p))
        .ok_or_else(|| PSQL_NOT_FOUND.to_string())?;
    let run_as = if euid()? == 0 { Some(nobody()?) } else { None };
    let base = std::env::temp_dir();
    if let Some((uid, gid)) = run_as {
        searchable_by(&base, uid, gid)?;
    }
    remove_stale_dirs(&base);
    let mut s = Setup {
        bindir,
        psql,
        run_as,
        base,
        template: PathBuf::new(),
    };
    s.template = make_template(&s)?;
    Ok(s)
}

/// `initdb` into a temp dir that outlives this process: statics are never dropped, so the next
/// test process removes it ([`remove_stale_dirs`]).
fn make_template(s: &Setup) -> Result<PathBuf, String> {
    let dir = new_dir("template-", s)?;
    let pwfile = dir.path().join("pwfile");
    fs::write(&pwfile, PASSWORD).map_err(|e| format!("{}: {e}", pwfile.display()))?;
    chown_to(&pwfile, s)?;
    let data = dir.path().join("data");
    // https://www.postgresql.org/docs/current/app-initdb.html. Unix-socket logins are trusted
    // (only this user can reach the 0700 socket dir); TCP ones need the password, so tests of
    // wrong credentials are real. -N: no fsync, the template is copied anyway. 1 MB WAL
    // segments instead of 16: less to copy per server.
    let out = pg_command(&s.bindir.join("initdb"), s.run_as)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
        .args(["-N", "-E", "UTF8", "--locale=C", "--wal-segsize=1"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}/initdb: {e}", s.bindir.display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let _ = fs::remove_file(&pwfile);
    Ok(dir.keep().join("data"))
}

/// A temp dir `tykwatch-pg-<kind><pid>-XXXXXX` (mode 0700), owned by the user postgres runs as.
fn new_dir(kind: &str, s: &Setup) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{kind}{}-", std::process::id()))
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir_in(&s.base)
        .map_err(|e| format!("temp dir for postgres in {}: {e}", s.base.display()))?;
    chown_to(dir.path(), s)?;
    Ok(dir)
}

fn chown_to(path: &Path, s: &Setup) -> Result<(), String> {
    match s.run_as {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {uid}:{gid} {}: {e}", path.display())),
        None => Ok(()),
    }
}

/// Spawns postgres on `port` with the data of `dir` and waits until `psql` gets in. On failure
/// the child is killed and the error carries the tail of its log.
fn spawn(s: &Setup, dir: &Path, port: u16, durable: bool) -> Result<Child, String> {
    let log_path = dir.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let data = dir.join("data");
    // https://www.postgresql.org/docs/current/non-durability.html: fsync and full_page_writes
    // only guard against an OS crash or power loss, never against a killed server, so `kill()`
    // stays a faithful crash. synchronous_commit stays on: off loses the last commits to a
    // server crash (https://www.postgresql.org/docs/current/wal-async-commit.html), so `kill()`
    // could undo what a test saw committed; with fsync off a commit costs only a write(2).
    let mut cmd = pg_command(&s.bindir.join("postgres"), s.run_as);
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        // Our own socket dir: the default (/var/run/postgresql) may be the system cluster's,
        // and `nobody` cannot write there.
        .arg("-k")
        .arg(dir)
        .args(if durable {
            ["-c", "fsync=on", "-c", "full_page_writes=on"]
        } else {
            ["-c", "fsync=off", "-c", "full_page_writes=off"]
        })
        .args(["-c", "max_connections=100", "-c", "shared_buffers=16MB"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!("cannot run {}/postgres: {e}", s.bindir.display()),
    };
    let want = data.canonicalize().unwrap_or(data);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "postgres on port {port} exited ({status}):\n{}",
                log_tail(&log_path)
            ));
        }
        if answers(s, port, &want) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "postgres on port {port} did not answer psql in {START_TIMEOUT:?}:\n{}",
                log_tail(&log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when `psql` gets in on `port` and the server there serves `data`: another test's
/// server that took the port first must not pass for this one.
fn answers(s: &Setup, port: u16, data: &Path) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        return false;
    }
    let Ok(out) = psql_command(s, port, "postgres", "SHOW data_directory").output() else {
        return false;
    };
    let served = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    out.status.success() && served.canonicalize().is_ok_and(|p| p == data)
}

fn psql_command(s: &Setup, port: u16, db: &str, sql: &str) -> Command {
    let mut cmd = pg_command(&s.psql, None);
    cmd.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", PASSWORD)
        .env("PGCLIENTENCODING", "UTF8")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
    cmd
}

/// `program` without the caller's `PG*` environment (PGHOST, PGSSLMODE, PGOPTIONS… would
/// redirect or change every connection; see
/// <https://www.postgresql.org/docs/current/libpq-envars.html>), messages in English, and as
/// `run_as` when given.
fn pg_command(program: &Path, run_as: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LC_ALL", "C");
    if let Some((uid, gid)) = run_as {
        // std drops the supplementary groups (setgroups) too when root changes the uid.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn find_bindir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("TYKWATCH_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "TYKWATCH_PG_BIN={} holds no initdb and postgres. {NOT_FOUND}",
                dir.display()
            ))
        };
    }
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    candidates.extend(versioned("/usr/lib/postgresql", "", "bin"));
    candidates.extend(versioned("/opt/homebrew/opt", "postgresql@", "bin"));
    candidates.extend(versioned("/usr/local/opt", "postgresql@", "bin"));
    candidates.extend(path_dirs());
    candidates.into_iter().find(|d| has_server(d)).ok_or_else(|| {
        format!("{NOT_FOUND} (looked in $TYKWATCH_PG_BIN, pg_config --bindir, /usr/lib/postgresql/*/bin, Homebrew's postgresql@*, PATH)")
    })
}

/// `parent/<prefix>VERSION/sub` for every entry of `parent` named so, highest version first.
fn versioned(parent: &str, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name
                .strip_prefix(prefix)?
                .split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, e.path().join(sub)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, p)| p).collect()
}

fn path_dirs() -> impl Iterator<Item = PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .collect::<Vec<_>>()
        .into_iter()
}

fn has_server(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

/// The effective uid: the owner of `/proc/self` on Linux, else `id -u`.
fn euid() -> Result<u32, String> {
    if let Ok(m) = fs::metadata("/proc/self") {
        return Ok(m.uid());
    }
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id -u: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id -u: {e}"))
}

/// uid and gid of `nobody` (`getent passwd nobody`, else `id`), who runs the servers when
/// the tests run as root: postgres exits with "root execution of the PostgreSQL server is not
/// permitted".
fn nobody() -> Result<(u32, u32), String> {
    if let Ok(out) = Command::new("getent").args(["passwd", "nobody"]).output()
        && out.status.success()
    {
        let line = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields: Vec<&str> = line.trim().split(':').collect();
        if let (Some(Ok(uid)), Some(Ok(gid))) = (
            fields.get(2).map(|f| f.parse()),
            fields.get(3).map(|f| f.parse()),
        ) {
            return Ok((uid, gid));
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "nobody"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => Err("the tests run as root, which PostgreSQL refuses, and there is no user nobody to run it as: run them as another user".into()),
    }
}

/// `nobody` must reach its dirs under `base`: every ancestor searchable by it.
fn searchable_by(base: &Path, uid: u32, gid: u32) -> Result<(), String> {
    let base = base
        .canonicalize()
        .map_err(|e| format!("{}: {e}", base.display()))?;
    for dir in base.ancestors() {
        let m = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let bit = if m.uid() == uid {
            0o100
        } else if m.gid() == gid {
            0o010
        } else {
            0o001
        };
        if m.mode() & bit == 0 {
            return Err(format!(
                "{} is not searchable by uid {uid}, who runs PostgreSQL because the tests run as root: set TMPDIR to a directory that is (e.g. /tmp)",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Removes the dirs of test processes that are gone: the template is never dropped, and a killed
/// test process leaves its servers' dirs. Not those whose postmaster still runs.
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let rest = rest.strip_prefix("template-").unwrap_or(rest);
        let Some(Ok(pid)) = rest.split_once('-').map(|(p, _)| p.parse::<u32>()) else {
            continue;
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        let data = e.path().join("data");
        if postmaster_pid(&data).is_some_and(alive) {
            continue;
        }
        release_shared_memory(&data);
        let _ = fs::remove_dir_all(e.path());
    }
}

fn alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Line 1 of `postmaster.pid`, present while a postmaster runs or after it was killed.
fn postmaster_pid(data: &Path) -> Option<u32> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// A killed postmaster leaves its small System V shared memory segment behind (PostgreSQL
/// removes it only on a clean exit, or when the next start finds it unused); its id is the last
/// field of line 7 of `postmaster.pid`
/// (<https://www.postgresql.org/docs/current/storage-file-layout.html>). `ipcrm` marks it for
/// removal once its last backend detached. Only for a postmaster that is gone.
fn release_shared_memory(data: &Path) {
    let Ok(text) = fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    if postmaster_pid(data).is_some_and(alive) {
        return;
    }
    if let Some(id) = text
        .lines()
        .nth(6)
        .and_then(|l| l.split_whitespace().last())
        && id.parse::<u64>().is_ok()
    {
        let _ = Command::new("ipcrm")
            .args(["-m", id])
            .stderr(Stdio::null())
            .status();
    }
}

/// A port the OS just handed out for 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// `name` as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal (standard_conforming_strings is on by default).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
