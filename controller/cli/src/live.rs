//! The live view of `berth deploy`, `watch`, `cancel`, `retry` and friends:
//! the deployment's transitions (from `WatchDeployment` snapshots), berth's
//! own progress lines and the scripts' output (from a `GetLogs` follow), in
//! the order they happened (module `view`).
//!
//! The view outlives the controller: when the connection breaks (a restart,
//! a network cut) it says so on stderr, reconnects with backoff and goes on
//! where it was, since the controller keeps every transition and line. It
//! remembers how many transitions it printed and the last line number it
//! received per task, and asks only for what comes after (`after_seq`), so
//! nothing is printed twice. Ctrl-C leaves the deployment running and says
//! how to follow it again.

mod view;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_proto::v1::{GetDeploymentRequest, GetLogsRequest, LogRecord};
use berth_shared::exit;
use berth_shared::record::Deployment;
use tonic::Code;

use super::output::transition_text;
use super::wire;
use super::{Failure, Session};
use view::View;

/// Exit code when Ctrl-C ends a live view (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;
/// First pause before reconnecting, and the longest one.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How long the view tries to reach a controller that went away.
const GIVE_UP: Duration = Duration::from_secs(300);

/// What a live view shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveOptions {
    /// Hide the scripts' output (`--quiet`).
    pub quiet: bool,
    /// Show the deployment's whole story so far (`berth watch`), not only
    /// what happens from now on.
    pub from_start: bool,
}

/// Prints each new transition and progress line until the deployment is
/// quiet; returns the last snapshot.
pub async fn follow(session: &mut Session, deployment: &Deployment) -> Result<Deployment, Failure> {
    follow_with(session, deployment, LiveOptions::default()).await
}

/// [`follow`] with options.
pub async fn follow_with(
    session: &mut Session,
    deployment: &Deployment,
    options: LiveOptions,
) -> Result<Deployment, Failure> {
    let mut live = Live::new(session, deployment, options);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let mut link = Link::default();
    loop {
        let attached = tokio::select! {
            attached = live.attach(session, &mut link) => attached,
            _ = &mut interrupt => return Err(live.interrupted()),
        };
        let reason = match attached {
            Ok(()) => return Ok(live.last),
            Err(Broken::Final(failure)) => {
                live.view.flush();
                return Err(failure);
            }
            Err(Broken::Connection(reason)) => reason,
        };
        live.view.flush();
        let pause = link
            .lost(&reason)
            .map_err(|waited| live.unreachable(waited, &reason))?;
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = &mut interrupt => return Err(live.interrupted()),
        }
        // Onto another controller of the list when this one stays away; a
        // failed dial is the next loss, paced by the same backoff.
        let _ = session.redial().await;
    }
}

/// Why a live view stopped before the deployment was quiet.
enum Broken {
    /// The connection to the controller went; try again.
    Connection(String),
    /// A refusal or an unreadable reply; trying again would not help.
    Final(Failure),
}

impl From<tonic::Status> for Broken {
    fn from(status: tonic::Status) -> Broken {
        if is_connection_loss(&status) {
            Broken::Connection(status.message().to_string())
        } else {
            Broken::Final(status.into())
        }
    }
}

/// True for the failures a lost or restarting controller causes.
fn is_connection_loss(status: &tonic::Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded => true,
        Code::Internal => ["h2", "connection", "transport"]
            .iter()
            .any(|word| status.message().contains(word)),
        _ => false,
    }
}

/// The state of the connection: since when it is lost, and the next pause.
#[derive(Default)]
struct Link {
    lost_since: Option<Instant>,
    retry: Duration,
}

impl Link {
    /// Notes a lost connection (said once per loss); the pause before the
    /// next try, or how long it has been lost when it is time to give up.
    fn lost(&mut self, reason: &str) -> Result<Duration, Duration> {
        let since = *self.lost_since.get_or_insert_with(|| {
            eprintln!("lost the controller, reconnecting ({reason})");
            Instant::now()
        });
        if since.elapsed() > GIVE_UP {
            return Err(since.elapsed());
        }
        self.retry = (self.retry * 2).clamp(FIRST_RETRY, MAX_RETRY);
        // Full jitter, so many views do not come back at the same moment.
        Ok(self.retry.mul_f64(rand::random_range(0.5..=1.0)))
    }

    /// Notes that both streams are open again.
    fn attached(&mut self) {
        if self.lost_since.take().is_some() {
            eprintln!("reconnected to the controller; going on where the view was");
        }
        self.retry = Duration::ZERO;
    }
}

/// One live view: what it printed so far and the last snapshot.
struct Live {
    view: View,
    /// Transitions of `last` already shown.
    printed: usize,
    /// Per task id, the highest line number received.
    seen: HashMap<String, u64>,
    last: Deployment,
}

impl Live {
    fn new(session: &Session, deployment: &Deployment, options: LiveOptions) -> Live {
        let mut seen = HashMap::new();
        // A deployment that already ran (stop, delete, redeploy, cancel)
        // does not replay the lines of its finished tasks.
        let ran_before = deployment.status != berth_shared::state::DeploymentStatus::Pending;
        if ran_before && !options.from_start {
            for task in deployment
                .tasks
                .iter()
                .filter(|task| task.status.is_final())
            {
                seen.insert(task.id.to_string(), u64::MAX);
            }
        }
        Live {
            view: View::new(session.format, !options.quiet),
            printed: if options.from_start {
                0
            } else {
                deployment.transitions.len()
            },
            seen,
            last: deployment.clone(),
        }
    }

    /// Follows the deployment over one connection until it is quiet.
    async fn attach(&mut self, session: &mut Session, link: &mut Link) -> Result<(), Broken> {
        let id = self.last.id.to_string();
        let mut watch = session
            .client
            .watch_deployment(GetDeploymentRequest { id: id.clone() })
            .await?
            .into_inner();
        let request = GetLogsRequest {
            deployment_id: id,
            follow: true,
            after_seq: self.seen.clone(),
            ..GetLogsRequest::default()
        };
        let mut logs = session.client.clone().get_logs(request).await?.into_inner();
        link.attached();
        let mut logs_open = true;
        loop {
            let due = self.view.due();
            tokio::select! {
                reply = watch.message() => match reply? {
                    Some(reply) => self.add_snapshot(wire::deployment(reply).map_err(Broken::Final)?),
                    None if berth_shared::record::is_quiet(&self.last) => break,
                    // The controller is shutting down.
                    None => return Err(Broken::Connection("the controller ended the live view".into())),
                },
                record = logs.message(), if logs_open => match record {
                    Ok(Some(record)) => self.add_line(&record),
                    Ok(None) => logs_open = false,
                    Err(status) if is_connection_loss(&status) => return Err(status.into()),
                    // The live view goes on without lines if their stream fails.
                    Err(_) => logs_open = false,
                },
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    self.view.flush_due();
                }
            }
        }
        // Lines still in flight when the deployment settled.
        while logs_open {
            match tokio::time::timeout(Duration::from_secs(2), logs.message()).await {
                Ok(Ok(Some(record))) => self.add_line(&record),
                _ => logs_open = false,
            }
        }
        self.view.flush();
        Ok(())
    }

    fn add_snapshot(&mut self, current: Deployment) {
        for transition in current.transitions.iter().skip(self.printed) {
            // Numbered entries are ordered within their task.
            let numbered = transition
                .seq
                .zip(transition.task.map(|task| task.to_string()));
            self.view.add(numbered, transition_text(transition));
        }
        self.printed = self.printed.max(current.transitions.len());
        self.last = current;
    }

    fn add_line(&mut self, record: &LogRecord) {
        if record.task_id.is_empty() {
            return;
        }
        let seen = self.seen.entry(record.task_id.clone()).or_insert(0);
        if record.seq <= *seen {
            return;
        }
        *seen = record.seq;
        self.view.add_line(record);
    }

    /// Ctrl-C: what was received is shown, then how to follow it again.
    fn interrupted(&mut self) -> Failure {
        self.view.flush();
        let id = self.last.id;
        eprintln!(
            "interrupted: deployment {id} goes on on the controller; follow it again with `berth watch {id}` (or `berth logs {id} -f`)"
        );
        Failure::new(INTERRUPTED, String::new())
    }

    fn unreachable(&self, waited: Duration, reason: &str) -> Failure {
        let id = self.last.id;
        Failure::new(
            exit::FAILED,
            format!(
                "the controller has been unreachable for {} ({reason}); deployment {id} may still be running: follow it again with `berth watch {id}` once the controller is back",
                berth_shared::time::format_duration(Duration::from_secs(waited.as_secs()))
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::is_connection_loss;

    #[test]
    fn a_lost_controller_is_retried_and_a_refusal_is_not() {
        for status in [
            Status::unavailable("tcp connect error: Connection refused"),
            Status::unknown("h2 protocol error: error reading a body from connection"),
            Status::internal("h2 protocol error: stream no longer needed"),
            Status::cancelled("operation was canceled"),
        ] {
            assert!(is_connection_loss(&status), "{status:?}");
        }
        for status in [
            Status::not_found("deployment x not found"),
            Status::permission_denied("no"),
            Status::invalid_argument("bad id"),
            Status::internal("the record is damaged"),
        ] {
            assert!(!is_connection_loss(&status), "{status:?}");
        }
    }
}
