//! `[gateway.storage]`: tyk.conf's `storage` section copied over loads; mistakes name the key
//! and the line.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::time::Duration;

use tykwatch::config::{Config, ConfigError};
use tykwatch::tyk::redis::{RedisSettings, Topology};

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::load_from_str(text, "/etc/tykwatch/config.toml", &|name| {
        (name == "REDIS_PASSWORD").then(|| "s3cret-redis".to_string())
    })
}

fn err(text: &str) -> String {
    match load(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_copied_tyk_storage_section_loads() {
    let c = load(
        r#"
[gateway]
hash_keys = true

[gateway.storage]
type = "redis"
host = "redis.internal"
port = 6380
username = "tyk"
password = "${REDIS_PASSWORD}"
database = 2
optimisation_max_idle = 2000
optimisation_max_active = 4000
timeout = 5
use_ssl = false
"#,
    )
    .expect("loads");
    assert!(!c.is_demo(), "Redis alone is a real gateway");
    let s = c.gateway.storage.as_ref().expect("storage");
    assert_eq!(s.addresses(), vec!["redis.internal:6380"]);
    assert_eq!(s.timeout, Duration::from_secs(5));
    // The password is a secret: never printed.
    assert!(!format!("{s:?}").contains("s3cret-redis"));
    let r = RedisSettings::from_config(s, None);
    assert_eq!(r.password, "s3cret-redis");
    assert_eq!(r.topology, Topology::Single);
    assert_eq!(r.label(), "redis://redis.internal:6380/2");
    // TYK_GW_STORAGE_PASSWORD wins, as tyk.conf's env override does.
    let r = RedisSettings::from_config(s, Some("from-env".into()));
    assert_eq!(r.password, "from-env");
}

#[test]
fn cluster_and_sentinel() {
    let c = load(
        r#"
[gateway.storage]
enable_cluster = true
addrs = ["10.0.0.1:7000", "10.0.0.2:7000", "[::1]:7001"]
"#,
    )
    .expect("cluster");
    let r = RedisSettings::from_config(c.gateway.storage.as_ref().expect("s"), None);
    assert_eq!(r.topology, Topology::Cluster);
    assert_eq!(r.addrs.len(), 3);
    let c = load(
        r#"
[gateway.storage]
master_name = "mymaster"
addrs = ["sentinel-1:26379"]
sentinel_password = "x"
"#,
    )
    .expect("sentinel");
    let r = RedisSettings::from_config(c.gateway.storage.as_ref().expect("s"), None);
    assert_eq!(
        r.topology,
        Topology::Sentinel {
            master_name: "mymaster".into()
        }
    );
}

#[test]
fn mistakes_name_the_key_and_line() {
    let e = err("[gateway.storage]\naddrs = [\"a:1\"]\nhost = \"b\"\n");
    assert!(
        e.contains(":3:") && e.contains("gateway.storage.host") && e.contains("not both"),
        "{e}"
    );
    let e = err("[gateway.storage]\nhots = \"b\"\n");
    assert!(
        e.contains(":2:") && e.contains("unknown key") && e.contains("hots"),
        "{e}"
    );
    let e = err("[gateway.storage]\nenable_cluster = true\ndatabase = 1\n");
    assert!(
        e.contains("gateway.storage.database") && e.contains("only database 0"),
        "{e}"
    );
    let e = err("[gateway.storage]\naddrs = [\"ok:1\", \"nope\"]\n");
    assert!(e.contains(":2:") && e.contains("not host:port"), "{e}");
    let e = err("[gateway.storage]\nport = 70000\n");
    assert!(
        e.contains("gateway.storage.port") && e.contains("1 to 65535"),
        "{e}"
    );
    let e = err("[gateway.storage]\ntype = \"mongo\"\n");
    assert!(e.contains("only \"redis\""), "{e}");
    let e = err("[gateway.storage]\nmaster_name = \"m\"\n");
    assert!(
        e.contains("gateway.storage.addrs") && e.contains("Sentinel"),
        "{e}"
    );
    let e =
        err("[gateway.storage]\nmaster_name = \"m\"\nenable_cluster = true\naddrs = [\"s:1\"]\n");
    assert!(e.contains("exclude each other"), "{e}");
    let e = err("[gateway.storage]\nca_file = \"/etc/ca.pem\"\n");
    assert!(e.contains("gateway.storage.use_ssl"), "{e}");
    let e = err("[gateway.storage]\nbatch = 1\n");
    assert!(e.contains("gateway.storage.batch"), "{e}");
}
