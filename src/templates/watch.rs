//! Watches the user template directory and reports which templates changed, debounced so an
//! editor's save (write + rename + chmod) is one report. The preview pane reloads
//! [`super::Templates`] and re-renders on each report.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use tykwatch::templates::watch::Watcher;
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! let _watcher = Watcher::start(
//!     std::path::Path::new("/home/me/.config/tykwatch/email_templates"),
//!     Watcher::DEFAULT_DEBOUNCE,
//!     move |changed| {
//!         let _ = tx.send(changed);
//!     },
//! )?;
//! // in the UI loop: while let Ok(changed) = rx.try_recv() { … }
//! # Ok::<(), tykwatch::templates::TemplateError>(())
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};

use super::{ErrorKind, FileRole, TemplateError, classify};

/// What changed since the last report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// Templates whose files or samples changed.
    pub names: BTreeSet<String>,
    /// Everything may render differently: the layout changed, the directory appeared or
    /// vanished, or the OS dropped events.
    pub all: bool,
}

impl Changed {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.all
    }

    /// Whether the template `name` needs re-rendering.
    pub fn affects(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }
}

enum Msg {
    Fs(notify::Result<notify::Event>),
    Stop,
}

/// A running watch; stops when dropped.
pub struct Watcher {
    _inner: Arc<Mutex<RecommendedWatcher>>,
    control: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Quiet time after the last event before reporting.
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);

    /// Watches `dir` (recursively, for `samples/`). If it does not exist yet its parent is
    /// watched until it appears. `on_change` runs on the watcher's thread.
    pub fn start<F>(dir: &Path, debounce: Duration, on_change: F) -> Result<Watcher, TemplateError>
    where
        F: FnMut(Changed) + Send + 'static,
    {
        let fail = |e: notify::Error| {
            TemplateError::new(ErrorKind::Io, format!("cannot watch for changes: {e}"))
                .at(dir.display().to_string(), None)
        };
        let (tx, rx) = mpsc::channel();
        let handler_tx = tx.clone();
        let watcher = notify::recommended_watcher(move |ev| {
            let _ = handler_tx.send(Msg::Fs(ev));
        })
        .map_err(fail)?;
        let watcher = Arc::new(Mutex::new(watcher));
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let parent = dir.parent().map(Path::to_path_buf);
        let watching_dir = {
            let mut w = watcher
                .lock()
                .map_err(|_| TemplateError::new(ErrorKind::Io, "watcher state poisoned"))?;
            if dir.is_dir() {
                w.watch(&dir, RecursiveMode::Recursive).map_err(fail)?;
                true
            } else if let Some(parent) = parent.as_deref().filter(|p| p.is_dir()) {
                w.watch(parent, RecursiveMode::NonRecursive).map_err(fail)?;
                false
            } else {
                return Err(TemplateError::new(
                    ErrorKind::Io,
                    "neither the template directory nor its parent exists",
                )
                .at(dir.display().to_string(), None));
            }
        };
        let state = Loop {
            dir,
            watcher: watcher.clone(),
            watching_dir,
        };
        let thread = std::thread::Builder::new()
            .name("template-watch".into())
            .spawn(move || state.run(rx, debounce, on_change))
            .map_err(|e| TemplateError::new(ErrorKind::Io, format!("cannot start watcher: {e}")))?;
        Ok(Watcher {
            _inner: watcher,
            control: tx,
            thread: Some(thread),
        })
    }

    /// [`Self::start`] reporting on a std channel.
    pub fn channel(dir: &Path) -> Result<(Watcher, mpsc::Receiver<Changed>), TemplateError> {
        let (tx, rx) = mpsc::channel();
        let w = Self::start(dir, Self::DEFAULT_DEBOUNCE, move |c| {
            let _ = tx.send(c);
        })?;
        Ok((w, rx))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.control.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    dir: PathBuf,
    watcher: Arc<Mutex<RecommendedWatcher>>,
    watching_dir: bool,
}

impl Loop {
    fn run<F: FnMut(Changed)>(
        mut self,
        rx: mpsc::Receiver<Msg>,
        debounce: Duration,
        mut on_change: F,
    ) {
        // A steady stream of writes still gets reported at least this often.
        let max_wait = debounce * 4;
        loop {
            let mut changed = Changed::default();
            match rx.recv() {
                Ok(Msg::Fs(ev)) => self.absorb(ev, &mut changed),
                Ok(Msg::Stop) | Err(_) => return,
            }
            let first = Instant::now();
            let mut last = first;
            loop {
                let deadline = (last + debounce).min(first + max_wait);
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                match rx.recv_timeout(deadline - now) {
                    Ok(Msg::Fs(ev)) => {
                        self.absorb(ev, &mut changed);
                        last = Instant::now();
                    }
                    Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => break,
                }
            }
            if !changed.is_empty() {
                on_change(changed);
            }
        }
    }

    fn absorb(&mut self, ev: notify::Result<notify::Event>, changed: &mut Changed) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(_) => {
                changed.all = true;
                return;
            }
        };
        if ev.need_rescan() {
            changed.all = true;
        }
        if matches!(ev.kind, EventKind::Access(_)) {
            return;
        }
        for path in &ev.paths {
            if path == &self.dir {
                // The directory itself appeared or vanished.
                changed.all = true;
                self.rewatch();
                continue;
            }
            let Ok(rel) = path.strip_prefix(&self.dir) else {
                continue;
            };
            if rel == Path::new("samples") {
                changed.all = true;
                continue;
            }
            match classify(rel) {
                Some(FileRole::Template { name, .. }) if name == "layout" => changed.all = true,
                Some(FileRole::Template { name, .. }) | Some(FileRole::Sample { name, .. }) => {
                    changed.names.insert(name);
                }
                None => {}
            }
        }
    }

    /// Switches between watching the directory and its parent as it comes and goes.
    fn rewatch(&mut self) {
        let Ok(mut w) = self.watcher.lock() else {
            return;
        };
        if self.dir.is_dir() && !self.watching_dir {
            if w.watch(&self.dir, RecursiveMode::Recursive).is_ok() {
                self.watching_dir = true;
            }
        } else if !self.dir.is_dir() && self.watching_dir {
            self.watching_dir = false;
            if let Some(parent) = self.dir.parent() {
                let _ = w.watch(parent, RecursiveMode::NonRecursive);
            }
        }
    }
}
