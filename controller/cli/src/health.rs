//! `berth health`: whether the controller answers and can store new work,
//! as an exit code for supervisors and container health checks, and the
//! warning other commands print while it cannot.

use berth_proto::v1::{WhoAmIRequest, WhoAmIResponse};
use berth_shared::exit;

use super::output::{ago, emit};
use super::{Outcome, Session};

/// What is wrong with the controller's store, as a sentence; `None` while
/// it is writable.
pub fn store_warning(me: &WhoAmIResponse) -> Option<String> {
    if me.store_problem.is_empty() {
        return None;
    }
    let since = i64::try_from(me.store_problem_since_ms).unwrap_or(i64::MAX);
    Some(format!(
        "the controller cannot store new work (since {}): {}. New deploys are refused until disk space is freed on the controller's data directory; it then resumes by itself.",
        ago(berth_shared::record::Timestamp(since)),
        me.store_problem
    ))
}

pub async fn health(session: &mut Session) -> Outcome {
    let me = session
        .client
        .who_am_i(WhoAmIRequest {})
        .await?
        .into_inner();
    let warning = store_warning(&me);
    emit(
        session.format,
        &serde_json::json!({
            "healthy": warning.is_none(),
            "store_problem": (!me.store_problem.is_empty()).then_some(&me.store_problem),
            "store_problem_since_ms": (me.store_problem_since_ms > 0).then_some(me.store_problem_since_ms),
        }),
        || match &warning {
            None => "ok: the controller answers and can store new work".into(),
            Some(warning) => format!("unhealthy: {warning}"),
        },
    );
    Ok(if warning.is_some() {
        exit::FAILED
    } else {
        exit::OK
    })
}
