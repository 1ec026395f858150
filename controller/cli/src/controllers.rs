//! `berth status --controllers`: the controllers of the store, which one
//! serves (with its agents and the one-at-a-time work it holds) and which
//! stand by to take over.

use berth_proto::v1::ListControllersRequest;
use berth_shared::exit;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

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
                    controller.holds.join(", ")
                },
            ]);
        }
        let standbys = list
            .controllers
            .iter()
            .filter(|controller| controller.role == berth_shared::record::ControllerRole::Standby)
            .count();
        let note = match (list.store.as_str(), standbys) {
            ("sled", _) => {
                "store: sled (one controller; a standby needs the PostgreSQL store)".to_string()
            }
            (store, 0) => format!("store: {store}; no controller stands by"),
            (store, n) => format!("store: {store}; {n} standing by to take over"),
        };
        format!("{out}\n\n{note}")
    });
    Ok(exit::OK)
}
