//! Real Redis servers for tests. API: `RedisServer::start()` / `start_with(&["--requirepass", "p"])`
//! → `port()`, `addr()`, `url()`, `cli(&["SET", "k", "v"]) -> String`, `kill()`, `restart()`,
//! `set_password(p)`; `RedisServer::start_tls(mutual)` → `tls_addr()` (certificates of
//! `tests/fixtures/tls`); `RedisSentinel::start(&master, name)` → `addr()`;
//! `RedisCluster::start(3)` → `addrs()`, `cli(..)` (`redis-cli -c`). All servers
//! are throw-away (`--save "" --appendonly no`, own temp dir, ephemeral loopback port) and are
//! SIGKILLed on Drop. Without `redis-server` on PATH they panic with how to get it, never skip.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOT_FOUND: &str = "redis-server not found: run scripts/test (it installs the Debian package redis-server), or apt-get install redis-server / brew install redis";
const CLI_NOT_FOUND: &str = "redis-cli not found: run scripts/test (it installs the Debian package redis-server, which brings redis-cli), or apt-get install redis-server / brew install redis";

/// How long a server may take to answer PING after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts on fresh ports when a server fails to start (e.g. its port was taken meanwhile).
const START_ATTEMPTS: usize = 5;

/// One `redis-server` process on 127.0.0.1.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Arguments after the fixed ones (`--save "" --appendonly no --bind --port --dir`).
    extra: Vec<String>,
    password: Option<String>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("extra", &self.extra)
            .finish_non_exhaustive()
    }
}

impl RedisServer {
    /// A plain server on a free ephemeral port.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// A server with extra `redis-server` arguments, e.g. `&["--requirepass", "secret"]`.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_picking(extra, free_port)
    }

    fn start_picking(extra: &[&str], mut pick: impl FnMut() -> u16) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let password = requirepass(&extra);
        let dir = tempfile::Builder::new()
            .prefix("tykwatch-redis-")
            .tempdir()
            .expect("temp dir for redis-server");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = pick();
            match spawn(port, &extra, password.as_deref(), dir.path()) {
                Ok(child) => {
                    return RedisServer {
                        child: Some(child),
                        port,
                        extra,
                        password,
                        dir,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/` (with `:password@` when one is set), for `redis::Client::open`.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The password the server currently requires, if any.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The server's working directory (its log is `redis.log` there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `redis-cli -p PORT [--no-auth-warning -a PASS] ARGS…` and returns its stdout without
    /// the final newline. Panics when redis-cli fails (e.g. cannot connect); Redis error replies
    /// are returned as text (`ERR …`, `NOAUTH …`).
    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(self.port, self.password.as_deref(), false, args)
    }

    /// Like [`RedisServer::cli`] but returns the whole output, whatever the exit status.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        cli_command(self.port, self.password.as_deref(), false, args)
            .output()
            .unwrap_or_else(|e| panic!("{}", cli_spawn_error(&e)))
    }

    /// SIGKILLs the server (no shutdown, no save) and waits for it; a no-op when not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True while the process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server if it runs and starts it again on the same port with the same arguments
    /// (and the password of the last [`RedisServer::set_password`]). The data is gone (no
    /// persistence). Retries for a few seconds while the port is still taken.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match spawn(
                self.port,
                &self.extra,
                self.password.as_deref(),
                self.dir.path(),
            ) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    panic!("redis-server did not restart on port {}: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `CONFIG SET requirepass P` on the running server; later `cli` calls authenticate with it
    /// and [`RedisServer::restart`] keeps it. An empty `p` removes the password.
    pub fn set_password(&mut self, p: &str) {
        let out = self.cli(&["CONFIG", "SET", "requirepass", p]);
        assert_eq!(out, "OK", "CONFIG SET requirepass: {out}");
        let mut extra = Vec::with_capacity(self.extra.len() + 2);
        let mut it = self.extra.iter();
        while let Some(a) = it.next() {
            if a == "--requirepass" {
                it.next();
            } else {
                extra.push(a.clone());
            }
        }
        if !p.is_empty() {
            extra.push("--requirepass".into());
            extra.push(p.into());
        }
        self.extra = extra;
        self.password = (!p.is_empty()).then(|| p.to_string());
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of `n` masters (no replicas), every slot assigned.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `n` (≥ 3) cluster-enabled servers on ports whose bus port (+10000) is free too,
    /// joins them with `redis-cli --cluster create` and waits for `cluster_state:ok` everywhere.
    pub fn start(n: usize) -> RedisCluster {
        assert!(n >= 3, "Redis Cluster needs at least 3 masters");
        let args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ];
        let mut nodes: Vec<RedisServer> = Vec::with_capacity(n);
        for _ in 0..n {
            let taken: Vec<u16> = nodes.iter().map(|s| s.port).collect();
            nodes.push(RedisServer::start_picking(&args, || cluster_port(&taken)));
        }
        let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
        create.extend(nodes.iter().map(RedisServer::addr));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        let out = nodes[0].cli_output(&create);
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &nodes {
            loop {
                let info = node.cli(&["CLUSTER", "INFO"]);
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "cluster node {} not ok after 30 s:\n{info}",
                    node.addr()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        RedisCluster { nodes }
    }

    /// `127.0.0.1:PORT` of every master.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::addr).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// `redis-cli -c -p P1 ARGS…` (follows MOVED redirections), stdout without the final newline.
    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(self.nodes[0].port, None, true, args)
    }
}

/// A port the OS just handed out for 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A free port below 55535 whose cluster bus port (+10000) is free too, not in `taken`.
fn cluster_port(taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        if port >= 55535 || taken.iter().any(|&t| t == port || t + 10000 == port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10000)).is_ok() {
            return port;
        }
    }
    // The ephemeral range may lie above 55535: try a fixed band instead.
    for port in (20000u16..45000).step_by(7) {
        if taken
            .iter()
            .any(|&t| t == port || t + 10000 == port || port + 10000 == t)
        {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port pair (P, P+10000) for a cluster node");
}

/// The value of `--requirepass` in `args`.
fn requirepass(args: &[String]) -> Option<String> {
    let i = args.iter().position(|a| a == "--requirepass")?;
    args.get(i + 1).filter(|p| !p.is_empty()).cloned()
}

/// Spawns redis-server on `port` in `dir` and waits until it answers PING. On failure the child
/// is killed and the error carries the tail of its log.
fn spawn(port: u16, extra: &[String], password: Option<&str>, dir: &Path) -> Result<Child, String> {
    let log_path = dir.join("redis.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{log_path:?}: {e}"))?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new("redis-server");
    cmd.args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
        Err(e) => panic!("cannot run redis-server: {e}"),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server on port {port} exited ({status}):\n{}",
                log_tail(&log_path)
            ));
        }
        if ping(port, password) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server on port {port} did not answer PING in {START_TIMEOUT:?}:\n{}",
                log_tail(&log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw RESP `PING` (after `AUTH` when a password is set): true on `+PONG`.
fn ping(port: u16, password: Option<&str>) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut req = Vec::new();
    if let Some(p) = password {
        req.extend_from_slice(format!("AUTH {p}\r\n").as_bytes());
    }
    req.extend_from_slice(b"PING\r\n");
    if s.write_all(&req).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 256];
    while !String::from_utf8_lossy(&buf).contains("PONG")
        && buf.iter().filter(|&&b| b == b'\n').count() < 2
    {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).contains("+PONG")
}

fn log_tail(path: &PathBuf) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn cli_command(port: u16, password: Option<&str>, cluster: bool, args: &[&str]) -> Command {
    let mut cmd = Command::new("redis-cli");
    if cluster {
        cmd.arg("-c");
    }
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(p) = password {
        cmd.args(["--no-auth-warning", "-a", p]);
    }
    cmd.args(args).stdin(Stdio::null());
    cmd
}

fn cli_spawn_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        CLI_NOT_FOUND.to_string()
    } else {
        format!("cannot run redis-cli: {e}")
    }
}

fn run_cli(port: u16, password: Option<&str>, cluster: bool, args: &[&str]) -> String {
    let out = cli_command(port, password, cluster, args)
        .output()
        .unwrap_or_else(|e| panic!("{}", cli_spawn_error(&e)));
    assert!(
        out.status.success(),
        "redis-cli -p {port} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    if s.ends_with('\n') {
        s.pop();
    }
    s
}

/// The test-only certificates of `tests/fixtures/tls` (a CA, a server certificate for
/// 127.0.0.1, a client certificate).
pub fn tls_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

impl RedisServer {
    /// A server that also speaks TLS on `tls_port()` (the plain port stays for `cli`), with the
    /// certificates of `tests/fixtures/tls`; `mutual` requires a client certificate.
    pub fn start_tls(mutual: bool) -> RedisServer {
        let tls_port = free_port().to_string();
        let files = [
            ("--tls-cert-file", tls_fixture("server.pem")),
            ("--tls-key-file", tls_fixture("server.key")),
            ("--tls-ca-cert-file", tls_fixture("ca.pem")),
        ];
        let mut args = vec!["--tls-port".to_string(), tls_port];
        for (flag, path) in files {
            args.push(flag.into());
            args.push(path.display().to_string());
        }
        args.push("--tls-auth-clients".into());
        args.push(if mutual { "yes" } else { "no" }.into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        RedisServer::start_with(&refs)
    }

    /// The TLS port of a server from `start_tls`.
    pub fn tls_addr(&self) -> String {
        let i = self
            .extra
            .iter()
            .position(|a| a == "--tls-port")
            .expect("a server started with start_tls");
        format!("127.0.0.1:{}", self.extra[i + 1])
    }
}

/// One Sentinel (`redis-server --sentinel`) watching a master under a name; SIGKILLed on Drop.
pub struct RedisSentinel {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts a Sentinel that monitors `master` as `name` (quorum 1) and waits until it names
    /// the master.
    pub fn start(master: &RedisServer, name: &str) -> RedisSentinel {
        let dir = tempfile::Builder::new()
            .prefix("tykwatch-sentinel-")
            .tempdir()
            .expect("temp dir for redis-sentinel");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {name} 127.0.0.1 {} 1\n",
            dir.path().display(),
            master.port()
        );
        if let Some(p) = master.password() {
            text.push_str(&format!("sentinel auth-pass {name} {p}\n"));
        }
        std::fs::write(&conf, text).expect("write sentinel.conf");
        let log = std::fs::File::create(dir.path().join("sentinel.log")).expect("sentinel log");
        let log2 = log.try_clone().expect("sentinel log");
        let child = match Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{NOT_FOUND}"),
            Err(e) => panic!("cannot run redis-server --sentinel: {e}"),
        };
        let s = RedisSentinel {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let want = master.port().to_string();
        loop {
            if ping(port, None) {
                let out = cli_command(
                    port,
                    None,
                    false,
                    &["SENTINEL", "get-master-addr-by-name", name],
                )
                .output();
                if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&want)) {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server --sentinel on port {port} did not name master {name}:\n{}",
                log_tail(&s._dir.path().join("sentinel.log"))
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
