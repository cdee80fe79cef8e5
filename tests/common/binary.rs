//! The real `tykwatch` binary in a throw-away home: config and data under a temp dir
//! (`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `HOME`), and none of the caller's tykwatch or Tyk
//! settings in its environment.
#![allow(dead_code)]

use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The binary with `args`, isolated; the caller may add to it before running it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
        c.args(args)
            .env_remove("TYKWATCH_CONFIG")
            .env_remove("TYKWATCH_DATA_DIR")
            .env_remove("TYK_GW_SECRET")
            .env_remove("TYK_DB_ADMIN_SECRET")
            .env_remove("TYK_GW_STORAGE_PASSWORD")
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("HOME", self.dir.path());
        c
    }

    /// Runs the binary with `args` and waits for it.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
