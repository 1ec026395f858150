//! `berth watch`: attach to the live view of a deployment (by id, or an
//! app's current one) from its start, as `berth deploy` shows it, and exit
//! the same way: 0 once it is deployed (or stopped or deleted, when that
//! was asked), 1 when it ended otherwise.

use berth_shared::exit;
use berth_shared::state::DeploymentStatus;
use clap::Args;

use super::deploy::summary;
use super::live::{LiveOptions, follow_with};
use super::output::emit;
use super::{Outcome, Session};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Deployment id, or an app name (its current deployment).
    pub target: String,
    /// With an app name: its environment (needed when it has several).
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Hide the scripts' output (berth's own lines and transitions stay).
    #[arg(short, long)]
    pub quiet: bool,
}

pub async fn watch(session: &mut Session, args: WatchArgs) -> Outcome {
    let deployment =
        super::resolve::deployment(session, &args.target, args.environment.as_deref()).await?;
    let options = LiveOptions {
        quiet: args.quiet,
        from_start: true,
    };
    let last = follow_with(session, &deployment, options).await?;
    emit(session.format, &last, || summary(&last));
    Ok(match last.status {
        DeploymentStatus::Deployed | DeploymentStatus::Stopped | DeploymentStatus::Deleted => {
            exit::OK
        }
        _ => exit::FAILED,
    })
}
