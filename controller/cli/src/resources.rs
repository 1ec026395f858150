//! `berth resource snapshots|restore`: the volume snapshots an app's
//! resources left on its hosts, and putting one back.

use berth_proto::v1::{ListSnapshotsRequest, RestoreSnapshotRequest};
use berth_shared::exit;
use berth_shared::record::SnapshotList;
use clap::Subcommand;

use super::output::{Column, ago, emit, grid, size};
use super::wire;
use super::{Outcome, Session};

#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// The volume snapshots of the app's resources on its hosts (taken
    /// before a resource with `snapshot = true` is replaced).
    Snapshots {
        /// The app.
        app: String,
        /// Its environment; needed only when it has several.
        #[arg(long = "env")]
        environment: Option<String>,
        /// Only this resource's.
        #[arg(long)]
        resource: Option<String>,
    },
    /// Put a snapshot back: the resource stops, its volume is made anew
    /// from the snapshot, and it starts again and must pass its health
    /// check. What the volume held since is gone.
    Restore {
        /// The app.
        app: String,
        /// The snapshot's name, as `berth resource snapshots` lists it.
        snapshot: String,
        /// Its environment; needed only when it has several.
        #[arg(long = "env")]
        environment: Option<String>,
        /// The resource (`[resources.NAME]`) to put it back into.
        #[arg(long)]
        resource: String,
        /// The host that keeps the snapshot.
        #[arg(long)]
        host: String,
    },
}

pub async fn run(session: &mut Session, command: ResourceCommand) -> Outcome {
    match command {
        ResourceCommand::Snapshots {
            app,
            environment,
            resource,
        } => {
            let request = ListSnapshotsRequest {
                app: app.clone(),
                environment: environment.unwrap_or_default(),
                resource: resource.unwrap_or_default(),
            };
            let reply = session.client.list_snapshots(request).await?;
            let list = wire::snapshot_list(reply.into_inner())?;
            emit(session.format, &list, || table(session, &app, &list));
        }
        ResourceCommand::Restore {
            app,
            snapshot,
            environment,
            resource,
            host,
        } => {
            let request = RestoreSnapshotRequest {
                app,
                environment: environment.unwrap_or_default(),
                resource,
                host,
                snapshot,
            };
            let reply = session.client.restore_snapshot(request).await?;
            let restored = wire::restored(reply.into_inner())?;
            emit(session.format, &restored, || {
                let mut text = format!("restored on {}:", restored.host);
                for line in &restored.lines {
                    text.push_str(&format!("\n  {line}"));
                }
                text
            });
        }
    }
    Ok(exit::OK)
}

fn table(session: &Session, app: &str, list: &SnapshotList) -> String {
    let mut text = if list.snapshots.is_empty() {
        format!(
            "no snapshots of app {app}'s resources: a resource with `snapshot = true` gets one each time it is replaced"
        )
    } else {
        let mut rows = grid(
            session.format,
            &[
                Column::Text("HOST"),
                Column::Text("ENV"),
                Column::Text("RESOURCE"),
                Column::Text("VOLUME"),
                Column::Text("SNAPSHOT"),
                Column::Text("SIZE"),
                Column::Text("TAKEN"),
            ],
        );
        for snapshot in &list.snapshots {
            rows.row(vec![
                snapshot.host.clone(),
                snapshot.environment.clone(),
                snapshot.resource.clone(),
                snapshot.volume.clone(),
                snapshot.file.clone(),
                size(snapshot.bytes),
                ago(snapshot.taken_at),
            ]);
        }
        rows.to_string()
    };
    for host in &list.unanswered {
        text.push_str(&format!("\nno answer from {host}"));
    }
    text
}
