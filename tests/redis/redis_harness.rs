//! The Redis test harness itself (`tests/common/redis.rs`): real servers start, answer, die,
//! come back on their port, take a password, and a 3-node cluster assigns every slot.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use crate::common;

use common::redis::{RedisCluster, RedisServer};

#[test]
fn server_set_get_kill_restart() {
    let mut r = RedisServer::start();
    assert_eq!(r.addr(), format!("127.0.0.1:{}", r.port()));
    assert_eq!(r.cli(&["PING"]), "PONG");
    assert_eq!(r.cli(&["SET", "k", "v"]), "OK");
    assert_eq!(r.cli(&["GET", "k"]), "v");
    // Throw-away: no persistence configured.
    assert_eq!(r.cli(&["CONFIG", "GET", "save"]), "save\n");
    assert_eq!(r.cli(&["CONFIG", "GET", "appendonly"]), "appendonly\nno");

    let port = r.port();
    r.kill();
    assert!(!r.is_running());
    assert!(
        !r.cli_output(&["PING"]).status.success(),
        "a killed server does not answer"
    );
    r.restart();
    assert_eq!(r.port(), port);
    assert_eq!(r.cli(&["PING"]), "PONG");
    assert_eq!(
        r.cli(&["EXISTS", "k"]),
        "0",
        "data does not survive a restart"
    );
}

#[test]
fn two_servers_get_distinct_ports() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    a.cli(&["SET", "only-a", "1"]);
    assert_eq!(b.cli(&["EXISTS", "only-a"]), "0");
}

#[test]
fn passwords() {
    let mut r = RedisServer::start_with(&["--requirepass", "s3cret"]);
    assert_eq!(r.password(), Some("s3cret"));
    assert_eq!(r.url(), format!("redis://:s3cret@127.0.0.1:{}/", r.port()));
    assert_eq!(r.cli(&["SET", "k", "v"]), "OK");
    r.set_password("other");
    assert_eq!(r.cli(&["GET", "k"]), "v");
    r.restart();
    assert_eq!(r.cli(&["PING"]), "PONG", "restart keeps the last password");

    let mut open = RedisServer::start();
    open.set_password("late");
    assert_eq!(open.cli(&["PING"]), "PONG");
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &open.port().to_string(), "PING"])
        .output()
        .expect("redis-cli");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("NOAUTH"),
        "without the password: {out:?}"
    );
}

#[test]
fn cluster_of_three_assigns_every_slot() {
    let c = RedisCluster::start(3);
    let addrs = c.addrs();
    assert_eq!(addrs.len(), 3);
    for node in c.nodes() {
        assert!(node.port() < 55535);
        let info = node.cli(&["CLUSTER", "INFO"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_slots_ok:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
    // Keys spread over the masters; -c follows the redirections.
    for i in 0..30 {
        assert_eq!(
            c.cli(&["SET", &format!("apikey-{i}"), &i.to_string()]),
            "OK"
        );
    }
    for i in 0..30 {
        assert_eq!(c.cli(&["GET", &format!("apikey-{i}")]), i.to_string());
    }
    let per_node: Vec<usize> = c
        .nodes()
        .iter()
        .map(|n| n.cli(&["DBSIZE"]).parse().expect("DBSIZE"))
        .collect();
    assert_eq!(per_node.iter().sum::<usize>(), 30);
    assert!(per_node.iter().all(|&n| n > 0), "{per_node:?}");
}
