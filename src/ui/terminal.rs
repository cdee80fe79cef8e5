//! The terminal loop: crossterm events, engine events, the loop's own helpers (template
//! watcher, browser opener, the organisation task) and a 4 Hz tick feed the state; the screen
//! is drawn after each batch. Nothing here awaits the network or a child process: organisation
//! loads, saves and test sends run on a task of their own and answer as `UiEvent::Org`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use crossterm::{execute, queue};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::render::render;
use super::state::{
    AppState, KeyReply, KeyRequest, Listing, OrgReply, OrgRequest, SaveError, UiAction, UiEvent,
};
use super::theme::Theme;
use crate::clock::Clock;
use crate::engine::{Command, EngineHandle};
use crate::notify::email::EmailSetup;
use crate::notify::org_test::TestSender;
use crate::orgs::OrgSource;
use crate::quota::board::BoardSettings;
use crate::templates::watch::Watcher;

/// How the console was started.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The gateway URL, or "DEMO".
    pub gateway_label: String,
    pub demo: bool,
    pub poll_interval: Duration,
    pub board: BoardSettings,
    pub global_thresholds: Vec<f64>,
    pub readonly: bool,
    /// The config directory: user templates are in `<config_dir>/email_templates` (watched
    /// for edits). `None`: the shipped templates only.
    pub config_dir: Option<PathBuf>,
    /// The sender the Templates view shows (`email_backend.default_from_*`).
    pub email_from: String,
    /// The recipients it shows (`notify.email_to`).
    pub email_to: Vec<String>,
    /// Where the Orgs view loads and saves organisations; `None`: the view says how to set
    /// one up (or shows `orgs_error`).
    pub orgs: Option<OrgSource>,
    /// Why the configured organisation source cannot be used (e.g. no admin secret).
    pub orgs_error: Option<String>,
    /// `http://<[intake] listen>/events`: what an event's webhook can point at. `None`: no
    /// intake listener.
    pub intake_url: Option<String>,
    /// `[intake] secret` is set (the Dashboard cannot send it, so the Orgs view warns).
    pub intake_secret: bool,
    /// How the Orgs view's test e-mails are sent (the notifications' setup); `None`: refused.
    pub org_email: Option<EmailSetup>,
    /// The Gateway API that `m` edits trigger limits through, or why there is none.
    pub session_edits: Result<crate::tyk::gateway::Gateway, String>,
}

/// Nothing configured: no gateway label, the shipped templates, no organisations, no intake,
/// no e-mail; polling every 2 s. Tests and callers set what they need on top.
impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            gateway_label: String::new(),
            demo: false,
            poll_interval: Duration::from_secs(2),
            board: BoardSettings::default(),
            global_thresholds: Vec::new(),
            readonly: false,
            config_dir: None,
            email_from: String::new(),
            email_to: Vec::new(),
            orgs: None,
            orgs_error: None,
            intake_url: None,
            intake_secret: false,
            org_email: None,
            session_edits: Err("no gateway to edit sessions on".to_string()),
        }
    }
}

const TICK: Duration = Duration::from_millis(250);
/// How long quitting waits for the engine to stop before leaving it to the runtime.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Runs the console until the user quits. The terminal is restored on every exit path
/// (`ratatui::try_init` also installs a panic hook that restores it).
pub async fn run_console(
    mut engine: EngineHandle,
    opts: ConsoleOptions,
    theme: Theme,
    clock: Arc<dyn Clock>,
) -> io::Result<()> {
    let mut state = AppState::new(&opts, clock.now_ms());
    // The user's keymap: entries that cannot be used keep the builtin keys and are reported
    // on stderr (seen once the console exits) and in the footer.
    let (keymap, problems) = super::keymap::Keymap::load(opts.config_dir.as_deref());
    super::keymap::install(keymap);
    for p in &problems {
        eprintln!("tykwatch: {p}");
    }
    state.keymap_problems(&problems);
    let (ui_tx, mut ui_rx) = unbounded_channel();
    // Dropped (and stopped) when the console returns.
    let mut watcher = watch_templates(&opts, &ui_tx, &mut state);
    let orgs = opts
        .orgs
        .clone()
        .map(|source| OrgTask::spawn(source, opts.org_email.clone(), clock.clone(), ui_tx.clone()));
    let keys = opts
        .session_edits
        .clone()
        .ok()
        .map(|gw| KeyTask::spawn(gw, ui_tx.clone()));
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may already be on when entering the alternate screen failed.
            ratatui::restore();
            shutdown(engine).await;
            return Err(e);
        }
    };
    let result = event_loop(
        &mut terminal,
        Channels {
            engine: &mut engine,
            ui_tx: &ui_tx,
            ui_rx: &mut ui_rx,
            orgs: orgs.as_ref(),
            keys: keys.as_ref(),
            watcher: &mut watcher,
        },
        &mut state,
        &theme,
        clock.as_ref(),
    )
    .await;
    // Show the cursor before leaving the alternate screen, so dropping the terminal writes
    // nothing after it.
    let _ = terminal.show_cursor();
    drop(terminal);
    ratatui::restore();
    if let Some(o) = orgs {
        o.stop();
    }
    if let Some(k) = keys {
        k.task.abort();
    }
    shutdown(engine).await;
    result
}

async fn shutdown(engine: EngineHandle) {
    let EngineHandle {
        events,
        commands,
        task,
    } = engine;
    let _ = commands.try_send(Command::Shutdown);
    // The engine also stops when it finds the event receiver gone.
    drop(events);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
}

/// Watches the user template directory; its reports reach the state as
/// `UiEvent::TemplatesChanged`. A directory that cannot be watched is shown in the view.
fn watch_templates(
    opts: &ConsoleOptions,
    ui_tx: &UnboundedSender<UiEvent>,
    state: &mut AppState,
) -> Option<Watcher> {
    let dir = crate::templates::user_dir(opts.config_dir.as_deref()?);
    start_watch(dir, ui_tx, state)
}

fn start_watch(
    dir: PathBuf,
    ui_tx: &UnboundedSender<UiEvent>,
    state: &mut AppState,
) -> Option<Watcher> {
    let tx = ui_tx.clone();
    match Watcher::start(&dir, Watcher::DEFAULT_DEBOUNCE, move |c| {
        let _ = tx.send(UiEvent::TemplatesChanged(c));
    }) {
        Ok(w) => {
            state.set_template_watch(Ok(dir));
            Some(w)
        }
        Err(e) => {
            state.set_template_watch(Err(e.to_string()));
            None
        }
    }
}

struct Channels<'a> {
    engine: &'a mut EngineHandle,
    ui_tx: &'a UnboundedSender<UiEvent>,
    ui_rx: &'a mut UnboundedReceiver<UiEvent>,
    orgs: Option<&'a OrgTask>,
    keys: Option<&'a KeyTask>,
    /// The user template directory's watcher; started by `e` when the directory was created.
    watcher: &'a mut Option<Watcher>,
}

/// The task that reads and writes sessions at the gateway for the trigger-limit editor, one
/// request after another (a save queued behind a read sees what it read).
struct KeyTask {
    requests: UnboundedSender<KeyRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl KeyTask {
    fn spawn(gw: crate::tyk::gateway::Gateway, ui_tx: UnboundedSender<UiEvent>) -> KeyTask {
        let (requests, mut rx) = unbounded_channel::<KeyRequest>();
        let task = tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                let reply = match req {
                    KeyRequest::Prepare { target, limits } => KeyReply::Prepared(
                        crate::triggers::prepare(&gw, target, &limits)
                            .await
                            .map(Box::new),
                    ),
                    KeyRequest::Save(p) => KeyReply::Saved {
                        target: p.target.clone(),
                        result: crate::triggers::save(&gw, &p).await,
                    },
                };
                if ui_tx.send(UiEvent::Key(reply)).is_err() {
                    break;
                }
            }
        });
        KeyTask { requests, task }
    }
}

/// The task that owns the organisation source: loads and saves run one after another (a
/// reload queued behind a save sees what the save stored); test sends run beside them, since a
/// hanging webhook must not hold up a save.
struct OrgTask {
    requests: UnboundedSender<OrgRequest>,
    task: tokio::task::JoinHandle<()>,
}

/// How long a test send waits for a webhook or a mail server.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

impl OrgTask {
    fn spawn(
        source: OrgSource,
        email: Option<EmailSetup>,
        clock: Arc<dyn Clock>,
        ui_tx: UnboundedSender<UiEvent>,
    ) -> OrgTask {
        let (requests, mut rx) = unbounded_channel::<OrgRequest>();
        let task = tokio::spawn(async move {
            let tester = TestSender::new(email, TEST_TIMEOUT);
            let mut tests = tokio::task::JoinSet::new();
            while let Some(req) = rx.recv().await {
                let reply = match req {
                    OrgRequest::List => OrgReply::Listed(
                        source
                            .list()
                            .await
                            .map(|l| Listing {
                                orgs: l.orgs,
                                warnings: l.warnings,
                            })
                            .map_err(|e| e.to_string()),
                    ),
                    OrgRequest::Save { original, edited } => {
                        let id = original.id().to_string();
                        let result = source.save(&original, &edited).await.map_err(|e| match e {
                            crate::orgs::OrgError::Conflict(c) => SaveError::Conflict(c),
                            e => SaveError::Failed(e.to_string()),
                        });
                        OrgReply::Saved { id, result }
                    }
                    OrgRequest::Test(target) => {
                        let (tester, tx, now) = (tester.clone(), ui_tx.clone(), clock.now_ms());
                        tests.spawn(async move {
                            let reply = match tester {
                                Ok(t) => {
                                    let out = t.send(&target, now).await;
                                    OrgReply::Tested {
                                        event: target.event,
                                        summary: out.summary(),
                                        ok: out.ok(),
                                    }
                                }
                                Err(e) => OrgReply::Tested {
                                    event: target.event,
                                    summary: e,
                                    ok: false,
                                },
                            };
                            let _ = tx.send(UiEvent::Org(reply));
                        });
                        // Finished tests are reaped so the set does not grow.
                        while tests.try_join_next().is_some() {}
                        continue;
                    }
                };
                if ui_tx.send(UiEvent::Org(reply)).is_err() {
                    break;
                }
            }
            tests.abort_all();
        });
        OrgTask { requests, task }
    }

    fn send(&self, req: OrgRequest) -> Result<(), String> {
        self.requests
            .send(req)
            .map_err(|_| "the organisation task has stopped".to_string())
    }

    /// Quitting does not wait for a Dashboard: a save in flight either reached it or not,
    /// and the conflict check makes a retry safe.
    fn stop(self) {
        drop(self.requests);
        self.task.abort();
    }
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    ch: Channels<'_>,
    state: &mut AppState,
    theme: &Theme,
    clock: &dyn Clock,
) -> io::Result<()> {
    let Channels {
        engine,
        ui_tx,
        ui_rx,
        orgs,
        keys,
        watcher,
    } = ch;
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut engine_open = true;
    let size = terminal.size()?;
    state.resize(size.width, size.height);
    loop {
        state.tick(clock.now_ms());
        draw(terminal, state, theme)?;
        let mut action = None;
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                    action = state.handle_key(k);
                }
                Some(Ok(Event::Resize(w, h))) => state.resize(w, h),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                // stdin closed: nobody can type q any more.
                None => return Ok(()),
            },
            ev = engine.events.recv(), if engine_open => match ev {
                Some(ev) => state.apply_engine(ev),
                None => engine_open = false,
            },
            // The loop holds a sender, so this never ends.
            Some(ev) = ui_rx.recv() => {
                // A saved session is read again at once, so the detail shows what was stored.
                let saved = matches!(&ev, UiEvent::Key(KeyReply::Saved { result: Ok(_), .. }));
                state.apply_ui(ev);
                if saved {
                    let _ = engine.commands.try_send(Command::PollNow);
                }
            }
            _ = tick.tick() => {}
        }
        // Apply everything already queued before drawing, so a burst costs one frame.
        while engine_open {
            match engine.events.try_recv() {
                Ok(ev) => state.apply_engine(ev),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => engine_open = false,
            }
        }
        match action {
            Some(UiAction::Quit) => return Ok(()),
            // A full command queue already holds a poll or a shutdown: dropping is fine.
            Some(UiAction::PollNow) => {
                let _ = engine.commands.try_send(Command::PollNow);
            }
            // Never wait for the queue: the user is told and can press the key again.
            Some(UiAction::Notify(req)) => {
                let reason = match engine.commands.try_send(Command::Notify(req.clone())) {
                    Ok(()) => None,
                    Err(TrySendError::Full(_)) => {
                        Some("busy: the notifier's queue is full, try again")
                    }
                    Err(TrySendError::Closed(_)) => Some("the engine has stopped"),
                };
                if let Some(reason) = reason {
                    state.apply_ui(UiEvent::NotSent {
                        request: req,
                        reason: reason.to_string(),
                    });
                }
            }
            Some(UiAction::OpenHtml { name, html }) => {
                if let Err(e) = open_html(name, html, ui_tx.clone()) {
                    state.apply_ui(UiEvent::Opened(Err(format!("cannot open: {e}"))));
                }
            }
            Some(UiAction::Org(req)) => {
                let failed = match orgs {
                    Some(o) => o.send(req.clone()).err(),
                    None => Some("no organisation source is configured".to_string()),
                };
                if let Some(e) = failed {
                    state.apply_ui(UiEvent::Org(not_done(req, e)));
                }
            }
            Some(UiAction::EditTemplate { name, html, dir }) => {
                let result = match crate::templates::ensure_user_copy(&name, &dir) {
                    Ok(text) => {
                        let html_path = dir.join(format!("{name}.html.tmpl"));
                        let path = if html && html_path.is_file() {
                            html_path
                        } else {
                            text
                        };
                        if watcher.is_none() {
                            *watcher = start_watch(dir.clone(), ui_tx, state);
                        }
                        let edited = edit_file(terminal, &mut input, engine, state, &path).await?;
                        // Read again now, whatever the watcher reports later.
                        state.apply_ui(UiEvent::TemplatesChanged(
                            crate::templates::watch::Changed {
                                names: [name].into_iter().collect(),
                                all: false,
                            },
                        ));
                        edited.map(|()| path)
                    }
                    Err(e) => Err(format!("cannot copy {name} to edit it: {e}")),
                };
                state.apply_ui(UiEvent::Edited(result));
            }
            Some(UiAction::Key(req)) => {
                let sent = keys.is_some_and(|k| k.requests.send(req.clone()).is_ok());
                if !sent {
                    let e = crate::triggers::EditError::Unavailable(
                        "the session editor has stopped".to_string(),
                    );
                    let reply = match req {
                        KeyRequest::Prepare { .. } => KeyReply::Prepared(Err(e)),
                        KeyRequest::Save(p) => KeyReply::Saved {
                            target: p.target.clone(),
                            result: Err(e),
                        },
                    };
                    state.apply_ui(UiEvent::Key(reply));
                }
            }
            None => {}
        }
    }
}

/// Suspends the console (raw mode off, main screen), runs `$VISUAL`, else `$EDITOR`, else
/// `vi` on `path` through `sh` (as git does, so `EDITOR="code -w"` works), and restores it.
/// Engine events keep being applied meanwhile, so nothing queues up behind the editor. The
/// outer error is the terminal failing; the inner one is the editor's.
async fn edit_file(
    terminal: &mut DefaultTerminal,
    input: &mut EventStream,
    engine: &mut EngineHandle,
    state: &mut AppState,
    path: &std::path::Path,
) -> io::Result<Result<(), String>> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".to_string());
    // A new stream drops the old one, whose reader thread would otherwise take the keys the
    // editor should get; the new one reads nothing until it is polled again.
    *input = EventStream::new();
    ratatui::restore();
    let cmd_path = path.to_path_buf();
    let shown = editor.clone();
    let mut child = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{shown} \"$1\""))
            .arg("tykwatch-editor")
            .arg(&cmd_path)
            .status()
    });
    let status = loop {
        tokio::select! {
            done = &mut child => break done,
            Some(ev) = engine.events.recv() => state.apply_engine(ev),
        }
    };
    crossterm::terminal::enable_raw_mode()?;
    execute!(
        io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    )?;
    // The screen is blank: the next frame is drawn whole. (`Terminal::clear` would ask the
    // terminal for the cursor position, which not every terminal answers.)
    terminal.swap_buffers();
    let shown = super::sanitize::fit(&editor, 40);
    Ok(match status {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!(
            "the editor ({shown}) exited with {s}: set $VISUAL or $EDITOR to the one you use"
        )),
        Ok(Err(e)) => Err(format!("cannot run the editor ({shown}): {e}")),
        Err(e) => Err(format!("the editor ({shown}) did not finish: {e}")),
    })
}

/// The answer to a request that could not reach the organisation task.
fn not_done(req: OrgRequest, reason: String) -> OrgReply {
    match req {
        OrgRequest::List => OrgReply::Listed(Err(reason)),
        OrgRequest::Save { original, .. } => OrgReply::Saved {
            id: original.id().to_string(),
            result: Err(SaveError::Failed(reason)),
        },
        OrgRequest::Test(t) => OrgReply::Tested {
            event: t.event,
            summary: reason,
            ok: false,
        },
    }
}

/// Writes the HTML to a new private temporary file and opens it with the system opener, on a
/// thread: the opener may take a while, and its exit status is only known when it ends. The
/// file is left for the browser, which may read it after the opener has returned.
fn open_html(name: String, html: String, tx: UnboundedSender<UiEvent>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("open-html".into())
        .spawn(move || {
            let _ = tx.send(UiEvent::Opened(write_and_open(&name, &html)));
        })
        .map(drop)
}

fn write_and_open(name: &str, html: &str) -> Result<PathBuf, String> {
    let path = write_temp_html(name, html).map_err(|e| format!("cannot write the HTML: {e}"))?;
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    // The opener's output would land on the console's screen.
    let status = std::process::Command::new(opener)
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| {
            format!(
                "cannot run {opener}: {e} (the HTML is in {})",
                path.display()
            )
        })?;
    if status.success() {
        Ok(path)
    } else {
        Err(format!(
            "{opener} failed ({status}); the HTML is in {}",
            path.display()
        ))
    }
}

/// `create_new` (O_EXCL) so a file or symlink planted at the name is never followed; 0600 on
/// unix since the HTML may hold addresses from the sample data.
fn write_temp_html(name: &str, html: &str) -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "tykwatch-{safe}-{}-{}-{nanos}.html",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path)?;
    f.write_all(html.as_bytes())?;
    Ok(path)
}

fn draw(terminal: &mut DefaultTerminal, state: &AppState, theme: &Theme) -> io::Result<()> {
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| render(state, theme, f))?;
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    terminal.backend_mut().flush()
}
