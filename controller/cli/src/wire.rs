//! The controller's replies as the berth-shared records this CLI prints
//! (`-o json` serializes the record, the stable contract). The reverse of
//! the controller's `grpc/cli/records.rs`.
//!
//! Reading a reply can fail: an enum value this CLI does not know, an id
//! that is not one, a manifest that does not parse, a reply missing its
//! record. Each is a [`Failure`] saying the controller sent something this
//! CLI cannot read (a controller newer than the CLI, most likely), never a
//! panic. Every conversion destructures its message completely, so a field
//! added to a message does not compile until it is read here.
//!
//! This file holds the helpers, the enums and the replies that carry
//! deployments; `wire/deployment.rs` the deployment's parts,
//! `wire/fleet.rs` the fleet's records, `wire/admin.rs` the
//! administration's, `wire/apps.rs` the app catalogue's and
//! `wire/environments.rs` environments', `wire/secrets.rs` the secret
//! store's.

use std::fmt::Display;
use std::str::FromStr;

use berth_proto::v1 as pb;
use berth_shared::exit;
use berth_shared::record::{Deployment, TaskKind, Timestamp};
use berth_shared::state::{DeploymentStatus, TaskStatus};

use super::Failure;

mod admin;
mod apps;
mod deployment;
mod dora;
mod environments;
mod fleet;
mod hooks;
mod people;
mod resources;
mod secrets;
#[cfg(test)]
mod tests;
mod webhooks;

pub use admin::{audit, logged_out, purged, registries, registry};
pub use apps::{app, app_list, rating};
pub use deployment::deployment_message;
pub use dora::dora;
pub use environments::{environment, environments};
pub use fleet::{
    agent, agents, app_statuses, controllers, fleet_job, host_inspect, job, jobs, token, tokens,
};
pub use hooks::{created_hook, hook, hooks};
pub use people::{api_token, api_tokens, created_api_token, user, users};
pub use resources::{restored, snapshot_list};
pub use secrets::{secret, secrets};
pub use webhooks::{created_webhook, deliveries, delivery_reply, webhook, webhooks};

/// The failure for something in a reply this CLI cannot read.
fn unreadable(what: impl Display) -> Failure {
    Failure::new(
        exit::FAILED,
        format!(
            "the controller sent {what}, which this CLI cannot read; install a matching berth CLI"
        ),
    )
}

/// The record a reply must carry.
fn required<T>(record: Option<T>, what: &str) -> Result<T, Failure> {
    record.ok_or_else(|| unreadable(format!("a reply without its {what}")))
}

/// Every message of a list as its record, in order.
fn all<M, R>(messages: Vec<M>, read: impl Fn(M) -> Result<R, Failure>) -> Result<Vec<R>, Failure> {
    messages.into_iter().map(read).collect()
}

/// An id (or another value parsed from its text form).
fn parse<T: FromStr>(text: &str, what: &str) -> Result<T, Failure> {
    text.parse()
        .map_err(|_| unreadable(format!("{what} `{text}`")))
}

fn parse_opt<T: FromStr>(text: Option<String>, what: &str) -> Result<Option<T>, Failure> {
    text.map(|text| parse(&text, what)).transpose()
}

fn ts(ms: i64) -> Timestamp {
    Timestamp(ms)
}

fn ts_opt(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(Timestamp)
}

/// The deployment a `DeploymentReply` carries.
pub fn deployment(reply: pb::DeploymentReply) -> Result<Deployment, Failure> {
    let pb::DeploymentReply { deployment } = reply;
    deployment_message(required(deployment, "deployment")?)
}

/// Deployments as records, in order.
pub fn deployments(messages: Vec<pb::Deployment>) -> Result<Vec<Deployment>, Failure> {
    all(messages, deployment_message)
}

pub fn deployment_status(value: i32) -> Result<DeploymentStatus, Failure> {
    use pb::DeploymentStatus as P;
    let unknown = || unreadable(format!("a deployment status ({value})"));
    Ok(match P::try_from(value).map_err(|_| unknown())? {
        P::Unspecified => return Err(unknown()),
        P::PendingApproval => DeploymentStatus::PendingApproval,
        P::Pending => DeploymentStatus::Pending,
        P::SetupRunning => DeploymentStatus::SetupRunning,
        P::SetupComplete => DeploymentStatus::SetupComplete,
        P::Building => DeploymentStatus::Building,
        P::Deploying => DeploymentStatus::Deploying,
        P::Deployed => DeploymentStatus::Deployed,
        P::Failed => DeploymentStatus::Failed,
        P::Canceled => DeploymentStatus::Canceled,
        P::TimedOut => DeploymentStatus::TimedOut,
        P::Stopped => DeploymentStatus::Stopped,
        P::Superseded => DeploymentStatus::Superseded,
        P::Deleted => DeploymentStatus::Deleted,
    })
}

pub fn task_status(value: i32) -> Result<TaskStatus, Failure> {
    use pb::TaskStatus as P;
    let unknown = || unreadable(format!("a task status ({value})"));
    Ok(match P::try_from(value).map_err(|_| unknown())? {
        P::Unspecified => return Err(unknown()),
        P::Queued => TaskStatus::Queued,
        P::Assigned => TaskStatus::Assigned,
        P::Setup => TaskStatus::Setup,
        P::Build => TaskStatus::Build,
        P::Deploy => TaskStatus::Deploy,
        P::Proxy => TaskStatus::Proxy,
        P::Health => TaskStatus::Health,
        P::Stop => TaskStatus::Stop,
        P::Delete => TaskStatus::Delete,
        P::Done => TaskStatus::Done,
        P::Failed => TaskStatus::Failed,
        P::Canceled => TaskStatus::Canceled,
        P::TimedOut => TaskStatus::TimedOut,
        P::Lost => TaskStatus::Lost,
    })
}

pub fn task_kind(value: i32) -> Result<TaskKind, Failure> {
    use pb::TaskKind as P;
    let unknown = || unreadable(format!("a task kind ({value})"));
    Ok(match P::try_from(value).map_err(|_| unknown())? {
        P::Unspecified => return Err(unknown()),
        P::Deploy => TaskKind::Deploy,
        P::Stop => TaskKind::Stop,
        P::Delete => TaskKind::Delete,
        P::Build => TaskKind::Build,
        P::Restore => TaskKind::Restore,
    })
}
