//! `berth metrics dora`, `GET /api/v1/apps/{app}/dora` and the app page's
//! panel: the DORA figures of one app in one environment over a window.
//! Viewers and up read them. The history is read newest first in pages
//! through the app+environment index and stops a day before the window
//! (a deployment made then may end in it), at most [`MAX_DEPLOYMENTS`];
//! the figures themselves are the pure `figures::report`.

mod figures;

use std::time::Duration;

use berth_shared::record::{Deployment, DoraReport, Timestamp};

use super::{Caller, Code, Error, Result};
use crate::server::Context;
use crate::store::{ListQuery, Role, Store};
pub use figures::{Window, marks_fix};

/// The window when a request names none.
pub const DEFAULT_SINCE: &str = "30d";
/// The fix window when a request names none.
pub const DEFAULT_FIX_WINDOW: &str = "1h";
/// The longest window: a year.
const MAX_SINCE: Duration = Duration::from_secs(366 * 24 * 3600);
/// The longest fix window: a week.
const MAX_FIX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long before the window a deployment may have been made and still
/// end in it.
const LOOKBACK_MS: i64 = 24 * 3600 * 1000;
/// Most deployments one report reads.
pub const MAX_DEPLOYMENTS: usize = 20_000;
/// Deployments read per page.
const PAGE: usize = 500;

/// What to report on: the app, its environment (empty: the one
/// `resolve_environment` picks), the window back from now and the fix
/// window, as durations like `30d` or `1h` (empty: the defaults).
#[derive(Clone, Debug, Default)]
pub struct DoraRequest {
    pub app: String,
    pub environment: String,
    pub since: String,
    pub fix_window: String,
}

/// The DORA figures of `request.app` in its environment over the window
/// ending now.
pub async fn report(
    context: &Context,
    caller: &Caller,
    request: &DoraRequest,
) -> Result<DoraReport> {
    caller.require(Role::Viewer)?;
    let since = duration("since", &request.since, DEFAULT_SINCE, MAX_SINCE, false)?;
    let fix_window = duration(
        "fix window",
        &request.fix_window,
        DEFAULT_FIX_WINDOW,
        MAX_FIX_WINDOW,
        true,
    )?;
    super::apps::existing(&context.store, &request.app)?;
    let environment =
        super::resolve::resolve_environment(context, &request.app, &request.environment)?;
    let to = Timestamp::now();
    let window = Window {
        from: Timestamp(to.0 - since.as_millis() as i64),
        to,
        fix_window_ms: fix_window.as_millis() as u64,
    };
    let store = context.store.clone();
    let app = request.app.clone();
    tokio::task::spawn_blocking(move || {
        let history = history(&store, &app, &environment, window.from)?;
        Ok(figures::report(&app, &environment, &history, &window))
    })
    .await
    .map_err(|err| Error::new(Code::Internal, format!("read the history: {err}")))?
}

/// A duration from a request, or `default` when it names none;
/// `metrics/invalid-window` when it is not a duration, is zero (unless
/// `zero_ok`) or longer than `max`.
fn duration(
    name: &str,
    text: &str,
    default: &str,
    max: Duration,
    zero_ok: bool,
) -> Result<Duration> {
    let text = if text.trim().is_empty() {
        default
    } else {
        text
    };
    let invalid = |why: String| Error::new(Code::MetricsInvalidWindow, why);
    let value = berth_shared::time::parse_duration(text)
        .map_err(|err| invalid(format!("{name}: {err}")))?;
    if value.is_zero() && !zero_ok {
        return Err(invalid(format!(
            "{name}: `{text}` is empty; name a window like 7d or 30d"
        )));
    }
    if value > max {
        return Err(invalid(format!(
            "{name}: `{text}` is too long; at most {}",
            berth_shared::time::format_duration(max)
        )));
    }
    Ok(value)
}

/// The app+environment's deployments made since a day before `from`,
/// oldest first.
fn history(
    store: &Store,
    app: &str,
    environment: &str,
    from: Timestamp,
) -> Result<Vec<Deployment>> {
    let mut newest_first: Vec<Deployment> = Vec::new();
    loop {
        let page = store.list_deployments(&ListQuery {
            app: Some(app.to_string()),
            environment: Some(environment.to_string()),
            limit: PAGE,
            offset: newest_first.len(),
            ..Default::default()
        })?;
        let full = page.len() == PAGE;
        let done = page
            .last()
            .is_none_or(|oldest| oldest.created_at.0 < from.0 - LOOKBACK_MS);
        newest_first.extend(page);
        if !full || done || newest_first.len() >= MAX_DEPLOYMENTS {
            break;
        }
    }
    newest_first.reverse();
    Ok(newest_first)
}

#[cfg(test)]
mod tests;
