//! `berth status`: what version of each app runs where, since when, and
//! per host what its agent reports.

use berth_proto::v1::GetStatusRequest;
use berth_shared::exit;
use berth_shared::record::AppStatus;

use super::output::{Column, ago, emit, grid};
use super::wire;
use super::{Outcome, Session};

/// The deployment holding the app, and how many wait behind it.
fn in_progress_text(row: &AppStatus) -> String {
    let mut holder = row.in_progress.map(|id| id.to_string()).unwrap_or_default();
    if let Some(state) = &row.build_state {
        holder = format!("{holder} ({state})");
    }
    let text = match row.queued.len() {
        0 => holder,
        waiting => format!("{holder} (+{waiting} queued)").trim().to_string(),
    };
    match &row.approval {
        Some(approval) => format!("{text} {approval}").trim().to_string(),
        None => text,
    }
}

pub async fn status(session: &mut Session, environment: Option<String>) -> Outcome {
    let reply = session
        .client
        .get_status(GetStatusRequest {
            environment: environment.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let rows: Vec<AppStatus> = wire::app_statuses(reply)?;
    emit(session.format, &rows, || {
        let mut out = grid(
            session.format,
            &[
                Column::Text("APP"),
                Column::Text("ENV"),
                Column::Text("VERSION"),
                Column::Text("STATUS"),
                Column::Text("HEALTH"),
                Column::Text("SINCE"),
                Column::Text("HOSTS"),
                Column::Id("DEPLOYMENT"),
                Column::Text("IN PROGRESS"),
            ],
        );
        for row in &rows {
            out.row(vec![
                row.app.clone(),
                row.environment.clone(),
                row.version.clone(),
                row.status.to_string(),
                row.health.clone().unwrap_or_else(|| "-".into()),
                ago(row.since),
                row.hosts.join(", "),
                row.deployment_id.to_string(),
                in_progress_text(row),
            ]);
        }
        if rows.is_empty() {
            "nothing deployed yet".to_string()
        } else {
            format!(
                "{out}\n\n{}{}{}",
                host_table(&rows, session.format),
                resources_note(&rows),
                secrets_note(&rows)
            )
        }
    });
    // The fleet's state is only half of it: say so when the controller
    // cannot take more work.
    if let Ok(me) = session
        .client
        .who_am_i(berth_proto::v1::WhoAmIRequest {})
        .await
        && let Some(warning) = super::health::store_warning(&me.into_inner())
    {
        eprintln!("warning: {warning}");
    }
    Ok(exit::OK)
}

/// Hosts running a deployment made before its secrets changed, one line
/// each after the host table.
fn secrets_note(rows: &[AppStatus]) -> String {
    let mut note = String::new();
    for row in rows {
        for host in row
            .host_states
            .iter()
            .filter(|host| !host.secrets_changed.is_empty())
        {
            note.push_str(&format!(
                "\n{}/{} on {} runs deployment {} with older secrets: {}; deploy again to use them",
                row.app,
                row.environment,
                host.host,
                host.deployment_id,
                host.secrets_changed.join(", ")
            ));
        }
    }
    if note.is_empty() {
        note
    } else {
        format!("\n{note}")
    }
}

/// The resources of each app on each host, one line each after the host
/// table: `web/production on web-1: resource db running postgres:16
/// (healthy), volumes ...`.
fn resources_note(rows: &[AppStatus]) -> String {
    let mut note = String::new();
    for row in rows {
        for host in &row.host_states {
            for resource in &host.resources {
                note.push_str(&format!(
                    "\n{}/{} on {}: resource {} {} {}{}{}",
                    row.app,
                    row.environment,
                    host.host,
                    resource.name,
                    resource.state,
                    resource.image,
                    if resource.health.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", resource.health)
                    },
                    if resource.volumes.is_empty() {
                        String::new()
                    } else {
                        format!(", volumes {}", resource.volumes.join(" "))
                    }
                ));
            }
        }
    }
    if note.is_empty() {
        note
    } else {
        format!("\n{note}")
    }
}

/// `berth status`'s second table: what each host runs now.
fn host_table(rows: &[AppStatus], format: super::Format) -> String {
    let mut out = grid(
        format,
        &[
            Column::Text("APP"),
            Column::Text("ENV"),
            Column::Text("HOST"),
            Column::Text("VERSION"),
            Column::Text("STATE"),
            Column::Text("HEALTH"),
            Column::Id("DEPLOYMENT"),
            Column::Full("LAST REPAIR"),
        ],
    );
    for row in rows {
        for host in &row.host_states {
            let repair = match (&host.last_repair, host.last_repair_at) {
                (Some(repair), Some(at)) => format!("{} ({repair})", ago(at)),
                _ => "-".into(),
            };
            out.row(vec![
                row.app.clone(),
                row.environment.clone(),
                host.host.clone(),
                Some(host.version.clone())
                    .filter(|version| !version.is_empty())
                    .unwrap_or_else(|| "-".into()),
                host.state.clone(),
                host.health.clone().unwrap_or_else(|| "-".into()),
                Some(host.deployment_id.clone())
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| "-".into()),
                repair,
            ]);
        }
    }
    out.to_string()
}
