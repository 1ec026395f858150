//! `berth status --controllers`: the controllers serving from the store,
//! each with its agents, and the one running the once-per-store work with
//! its fencing token.

use berth_proto::v1::ListControllersRequest;
use berth_shared::exit;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

/// What the holder of the once-per-store work runs.
const ONCE_PER_STORE: &str = "lost-task and deadline sweeper, log retention, webhook delivery, git push worker, blob eviction";

pub async fn controllers(session: &mut Session) -> Outcome {
    let reply = session
        .client
        .list_controllers(ListControllersRequest {})
        .await?
        .into_inner();
    let list = wire::controllers(reply)?;
    emit(session.format, &list, || {
        let mut out = grid(
            session.format,
            &[
                Column::Text("ROLE"),
                Column::Text("HOST"),
                Column::Text("PID"),
                Column::Text("LISTEN"),
                Column::Text("SINCE"),
                Column::Text("AGENTS"),
                Column::Text("HOLDS"),
            ],
        );
        for controller in &list.controllers {
            out.row(vec![
                controller.role.as_str().to_string(),
                controller.host.clone(),
                controller.pid.to_string(),
                controller.listen.clone(),
                ago(controller.since),
                controller.agents.to_string(),
                if controller.holds.is_empty() {
                    "-".to_string()
                } else {
                    format!("once-per-store work, fencing token {}", controller.token)
                },
            ]);
        }
        let note = match list.store.as_str() {
            "sled" => "store: sled (one controller; several need the PostgreSQL store)".to_string(),
            store => format!(
                "store: {store}; {} serving; the once-per-store work: {}",
                match list.controllers.len() {
                    1 => "1 controller".to_string(),
                    n => format!("{n} controllers"),
                },
                ONCE_PER_STORE
            ),
        };
        format!("{out}\n\n{note}")
    });
    Ok(exit::OK)
}
