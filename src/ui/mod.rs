//! The interactive console (k9s conventions): state, keymap, rendering, terminal loop.
//!
//! `state::AppState` changes only through engine events, keys and ticks; `render::render` draws
//! it as a pure function; `keymap` is the one table behind key handling, hints and help.

pub mod format;
pub mod keymap;
pub mod layout;
pub mod list;
pub mod render;
pub mod sanitize;
pub mod state;
pub mod table;
pub mod terminal;
pub mod theme;

mod detail;
mod events;
mod footer;
mod header;
mod help;
mod notifications;
mod orgs;
mod picker;
mod preview;
mod quotas;
mod triggers;
mod widgets;

pub use render::render;
pub use state::{AppState, UiAction, UiEvent};
pub use terminal::{ConsoleOptions, run_console};
