//! The terminal loop: crossterm events, engine events and a 4 Hz tick feed the state; the
//! screen is drawn after each batch. Nothing here awaits the network.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use crossterm::{execute, queue};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::error::TryRecvError;

use super::render::render;
use super::state::{AppState, UiAction};
use super::theme::Theme;
use crate::clock::Clock;
use crate::engine::{Command, EngineHandle};
use crate::quota::board::BoardSettings;

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
        &mut engine,
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

async fn event_loop(
    terminal: &mut DefaultTerminal,
    engine: &mut EngineHandle,
    state: &mut AppState,
    theme: &Theme,
    clock: &dyn Clock,
) -> io::Result<()> {
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
            None => {}
        }
    }
}

fn draw(terminal: &mut DefaultTerminal, state: &AppState, theme: &Theme) -> io::Result<()> {
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| render(state, theme, f))?;
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    terminal.backend_mut().flush()
}
