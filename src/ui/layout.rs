//! The screen's geometry, in one place that the state and the drawing both call: the regions
//! (header, banner, body, footer) at a terminal size, and what the state needs of each view's
//! layout to page and keep cursors visible (rows of the quotas table, the Templates list and
//! preview width, the Orgs list and form, the detail panes). The views' own splits of the body
//! live next to their drawing; this module is the only way the state reaches them.

use ratatui::layout::Rect;

use super::state::{AppState, View};
use super::{events, header, notifications, orgs, preview, quotas};

/// Below this the layout cannot hold a useful table; a message is shown instead.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

/// Rows of the header block.
const HEADER_ROWS: u16 = 4;

pub(crate) struct Regions {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub body: Rect,
    pub footer: Rect,
}

pub(crate) fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

pub(crate) fn layout(state: &AppState, area: Rect) -> Regions {
    let header_h = HEADER_ROWS.min(area.height);
    let banner_h =
        header::banner_rows(state, area.width).min(area.height.saturating_sub(header_h + 5));
    let footer_h = 1.min(area.height.saturating_sub(header_h + banner_h));
    let body_h = area.height.saturating_sub(header_h + banner_h + footer_h);
    let row = |y: u16, h: u16| Rect::new(area.x, area.y + y, area.width, h);
    Regions {
        header: row(0, header_h),
        banner: (banner_h > 0).then(|| row(header_h, banner_h)),
        body: row(header_h + banner_h, body_h),
        footer: row(header_h + banner_h + body_h, footer_h),
    }
}

/// Data rows the quotas table shows at the state's terminal size (for paging). The
/// notifications table has the same frame.
pub(crate) fn table_rows(state: &AppState) -> usize {
    let (w, h) = state.size();
    let area = Rect::new(0, 0, w, h);
    if too_small(area) {
        return 1;
    }
    quotas::data_rows(layout(state, area).body)
}

/// The body at the state's terminal size.
fn body_area(state: &AppState) -> Rect {
    let (w, h) = state.size();
    layout(state, Rect::new(0, 0, w, h)).body
}

/// What the Templates view's layout gives the state: rows to page by and the width the
/// preview is rendered for.
pub(crate) struct TemplatesGeometry {
    pub list_rows: usize,
    pub body_rows: usize,
    pub body_width: usize,
}

pub(crate) fn templates_geometry(state: &AppState) -> TemplatesGeometry {
    let g = preview::geometry(body_area(state), state.templates().names());
    TemplatesGeometry {
        list_rows: usize::from(g.list_inner.height),
        body_rows: usize::from(g.body.height),
        body_width: usize::from(g.body.width),
    }
}

/// Rows the Orgs view's list and event form show (for paging and keeping cursors visible).
pub(crate) struct OrgsGeometry {
    pub list_rows: usize,
    pub form_rows: usize,
}

pub(crate) fn orgs_geometry(state: &AppState) -> OrgsGeometry {
    let l = orgs::layout(body_area(state), state.orgs().order().len());
    OrgsGeometry {
        list_rows: orgs::list_rows(&l),
        form_rows: orgs::form_rows(&l),
    }
}

/// (rows, width) of the event detail's payload pane.
pub(crate) fn event_payload_pane(state: &AppState) -> (usize, usize) {
    let r = events::payload_inner(body_area(state));
    (usize::from(r.height), usize::from(r.width))
}

/// (rows, width) of the notification detail's request pane.
pub(crate) fn request_pane(state: &AppState) -> (usize, usize) {
    let item = match state.view() {
        View::Notification(k) => state.notifications().item(k),
        _ => None,
    };
    let r = notifications::request_inner(body_area(state), item);
    (usize::from(r.height), usize::from(r.width))
}
