//! Real processes for the end-to-end tests: the demo gateway as its own process, `tykwatch run`
//! with its JSON lines read on a thread, a plain HTTP/1.1 GET over loopback, and Prometheus
//! (server and promtool) when the test needs it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tykwatch");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// SIGTERM, then the exit status within `within`.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        signal(&self.0, "TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "did not stop within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn signal(child: &Child, name: &str) {
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {pid}");
}

pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tykwatch demo-gateway` on `port`, without simulated traffic unless `speed` says so.
pub fn demo_gateway(port: u16, speed: &str) -> Killed {
    demo_gateway_with_secret(port, speed, "tykwatch-demo")
}

/// [`demo_gateway`] expecting `secret` in `x-tyk-authorization`.
pub fn demo_gateway_with_secret(port: u16, speed: &str, secret: &str) -> Killed {
    let child = Command::new(BIN)
        .args([
            "demo-gateway",
            "--port",
            &port.to_string(),
            "--speed",
            speed,
        ])
        .env("TYK_GW_SECRET", secret)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let k = Killed(child);
    wait_port(port);
    k
}

/// The JSON lines of a child's stdout, read on a thread so the test can wait with a deadline.
pub struct JsonLines {
    rx: mpsc::Receiver<serde_json::Value>,
    pub seen: Vec<serde_json::Value>,
}

impl JsonLines {
    pub fn of(out: ChildStdout) -> JsonLines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        JsonLines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line `pred` accepts, within `within`; every line read is kept in `seen`.
    pub fn until(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(_) => panic!("no {what} within {within:?}; lines: {:#?}", self.seen),
            }
        }
    }

    /// What arrived so far without waiting.
    pub fn drain(&mut self) -> &[serde_json::Value] {
        self.seen.extend(self.rx.try_iter());
        &self.seen
    }
}

/// An HTTP/1.1 response read whole.
#[derive(Debug)]
pub struct Http {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Http {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET http://<addr><path>` (addr `host:port`), with a 10 s bound.
pub fn get(addr: &str, path: &str) -> Http {
    request(addr, "GET", path, &[], b"")
}

/// One HTTP/1.1 request on its own connection, with a 10 s bound.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Http {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Accept-Encoding: identity\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {addr}{path}: {e}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head from {addr}{path}"));
    let headers = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {headers}"));
    let mut body = raw[end + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..nl])
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where a Prometheus binary is, or a failure that says how to get it.
pub fn prometheus_binary(name: &str) -> String {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    match found {
        Some(p) => p.display().to_string(),
        None => panic!(
            "{name} is not installed: run scripts/test (it installs the Debian package \
             `prometheus`, or `brew install prometheus`), or install it yourself"
        ),
    }
}

/// `promtool <args>` with `stdin`.
pub fn promtool(args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(prometheus_binary("promtool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(stdin).unwrap();
    c.wait_with_output().unwrap()
}

/// A Prometheus server on a loopback port, scraping `target` (`host:port`) every second.
pub struct Prometheus {
    _child: Killed,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target: &str) -> Prometheus {
        let bin = prometheus_binary("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: tykwatch\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus {
            _child: Killed(child),
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(&p.addr).is_ok() && get(&p.addr, "/-/ready").status == 200 {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not get ready: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query.
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let r = get(&self.addr, &format!("/api/v1/query?query={}", urlencode(q)));
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("query {q}: {e}: {}", r.text()));
        assert_eq!(v["status"], "success", "query {q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `q` has a result.
    pub fn wait_for(&self, q: &str, within: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.query(q);
            if !r.is_empty() {
                return r;
            }
            let targets = get(&self.addr, "/api/v1/targets").text();
            assert!(
                Instant::now() < deadline,
                "no result for {q} within {within:?}; targets: {targets}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A webhook receiver on loopback: answers 204 and records each request's head and body.
pub fn sink() -> (u16, Log) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (port, serve(l, true))
}

/// Records each request on `l`; answers 204 when `answer`, else holds the connection open
/// forever (a receiver that accepted the request and hangs).
pub fn serve(l: std::net::TcpListener, answer: bool) -> Log {
    serve_until(l, answer, Default::default())
}

/// [`serve`] until `stop` is set; then the listener is closed (its port can be bound again).
pub fn serve_until(
    l: std::net::TcpListener,
    answer: bool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Log {
    use std::io::{Read, Write};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = got.clone();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        loop {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let mut s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            s.set_nonblocking(false).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        log.lock().unwrap().push(text);
                        if answer {
                            let _ = s
                                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                        } else {
                            std::mem::forget(s);
                        }
                        break;
                    }
                }
            }
        }
    });
    got
}
