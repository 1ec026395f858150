//! `berth exec`: one command on every matching host, sent down the agents'
//! streams in parallel, with each host's output streamed back as it comes
//! and the whole run stored as a fleet job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proto::v1::ExecLine;
use berth_shared::record::{FleetJob, HostRun, Timestamp};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{Instrument, info, info_span};

use super::{Caller, Code, Error, Result, Stream};
use crate::server::Context;
use crate::store::{AgentRecord, Role};

/// `berth exec`: a program and its arguments (not a shell line), and the
/// hosts to run it on.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub selector: String,
    pub argv: Vec<String>,
    /// How long each host may run it; zero for the default.
    pub timeout: Duration,
}

/// A line a host's command printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLine {
    pub stderr: bool,
    pub line: String,
}

/// What a fleet exec yields, in order: hosts' output as it comes, each
/// host's end, and last the stored job.
#[derive(Clone, Debug)]
pub enum ExecEvent {
    Output {
        host: String,
        lines: Vec<OutputLine>,
    },
    /// A host finished (its output is in the events before).
    HostDone(HostRun),
    /// Every host finished; the job is stored and audited.
    Finished(FleetJob),
}

type Events = mpsc::Sender<Result<ExecEvent>>;

/// Default time a host may run the command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest time a host may run the command.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Extra time for a host's answer to come back after its timeout.
const ANSWER_GRACE: Duration = Duration::from_secs(5);
/// Most arguments, and most bytes in all of them.
const MAX_ARGS: usize = 256;
const MAX_ARGV_BYTES: usize = 64 * 1024;
/// Most output bytes kept per host in the stored job.
const MAX_STORED_OUTPUT: usize = 1024 * 1024;

fn check(request: &ExecRequest) -> Result<Duration> {
    if request.argv.first().is_none_or(String::is_empty) {
        return Err(Error::invalid(
            "no command given; put it after `--`, e.g. berth exec --selector role=web -- uptime",
        ));
    }
    let bytes: usize = request.argv.iter().map(String::len).sum();
    if request.argv.len() > MAX_ARGS || bytes > MAX_ARGV_BYTES {
        return Err(Error::invalid(format!(
            "the command has {} arguments and {bytes} bytes; the limits are {MAX_ARGS} and {MAX_ARGV_BYTES}",
            request.argv.len()
        )));
    }
    let timeout = if request.timeout.is_zero() {
        DEFAULT_TIMEOUT
    } else {
        request.timeout
    };
    if timeout > MAX_TIMEOUT {
        return Err(Error::invalid(format!(
            "the timeout is {}; the longest allowed is {}",
            berth_shared::time::format_duration(timeout),
            berth_shared::time::format_duration(MAX_TIMEOUT)
        )));
    }
    Ok(timeout)
}

/// Jobs one `ListJobs` call returns by default, and at most.
const DEFAULT_JOBS: u32 = 50;
const MAX_JOBS: u32 = 1000;

/// The newest stored fleet jobs, without their output (`berth jobs show`
/// has it), so a page of them stays small.
pub fn list_jobs(context: &Context, caller: &Caller, limit: u32) -> Result<Vec<FleetJob>> {
    caller.require(Role::Viewer)?;
    let limit = if limit == 0 {
        DEFAULT_JOBS
    } else {
        limit.min(MAX_JOBS)
    };
    let mut jobs = context.store.list_jobs(limit as usize)?;
    for host in jobs.iter_mut().flat_map(|job| job.hosts.iter_mut()) {
        host.output.clear();
    }
    Ok(jobs)
}

/// One stored fleet job, with its output.
pub fn get_job(context: &Context, caller: &Caller, id: &str) -> Result<FleetJob> {
    caller.require(Role::Viewer)?;
    Ok(context.store.get_job(id)?)
}

/// Starts the fleet exec and returns its event stream.
pub fn exec(
    context: Arc<Context>,
    caller: &Caller,
    request: ExecRequest,
) -> Result<Stream<ExecEvent>> {
    caller.require(Role::Operator)?;
    let timeout = check(&request)?;
    let agents = super::target::select_agents(&context, &request.selector)?;
    if agents.is_empty() {
        return Err(Error::new(
            Code::TargetNoMatch,
            format!(
                "no agent matches the selector `{}`; see `berth agents ls`",
                request.selector
            ),
        ));
    }
    let job_id = ulid::Ulid::new().to_string();
    let who = caller.who();
    let (events, receiver) = mpsc::channel(256);
    let span = info_span!("fleet_exec", %job_id, hosts = agents.len());
    // Tracked, so a controller stopping mid-exec still stores and audits
    // the job (each host's run ends at once, saying why).
    let tracker = context.tasks.clone();
    tracker.spawn(
        async move {
            info!(argv = ?request.argv, %who, "fleet exec started");
            let started = Timestamp::now();
            let runs = agents
                .iter()
                .map(|agent| run_on(&context, agent, &request.argv, timeout, &events));
            let hosts = futures_util::future::join_all(runs).await;
            let job = FleetJob {
                id: job_id.clone(),
                argv: request.argv.clone(),
                selector: request.selector.clone(),
                triggered_by: who.clone(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                started_at: started,
                finished_at: Timestamp::now(),
                hosts,
            };
            let failed = job.hosts.iter().filter(|host| host.status != "ok").count();
            let outcome = if failed == 0 {
                "ok".to_string()
            } else {
                format!("{failed} of {} hosts did not succeed", job.hosts.len())
            };
            let stored = context.store.put_job(&job).and_then(|()| {
                context.store.audit(
                    &who,
                    "exec",
                    &format!("job {job_id} {}", request.argv.join(" ")),
                    &outcome,
                )
            });
            let flushed = match stored {
                Ok(()) => context.store.flush().await,
                Err(err) => Err(err),
            };
            if let Err(err) = flushed {
                let err = Error::from(err);
                let message = format!("could not store the job: {}", err.message);
                let _ = events.send(Err(Error::new(err.code, message))).await;
                return;
            }
            info!(%outcome, "fleet exec finished");
            let _ = events.send(Ok(ExecEvent::Finished(job))).await;
        }
        .instrument(span),
    );
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

/// Runs the command on one host, forwarding its output as it arrives.
async fn run_on(
    context: &Context,
    agent: &AgentRecord,
    argv: &[String],
    timeout: Duration,
    events: &Events,
) -> HostRun {
    let started = Instant::now();
    let mut run = HostRun {
        host: agent.name.clone(),
        status: String::new(),
        exit_code: None,
        output: Vec::new(),
        error: None,
        duration_ms: 0,
    };
    // Asked on its stream here, or through the controller it is
    // connected to (`cluster/relay.rs`).
    let asked = if context.is_online(agent.id) {
        context
            .registry
            .exec(agent.id, argv, timeout, ANSWER_GRACE)
            .await
    } else {
        None
    };
    match asked {
        None => {
            run.status = if context.is_online(agent.id) {
                "no_answer".into()
            } else {
                "offline".into()
            };
            run.error = Some(format!("host {} is not connected", agent.name));
        }
        Some((request_id, mut output)) => {
            let deadline = tokio::time::Instant::now() + timeout + ANSWER_GRACE;
            let mut stored_bytes = 0;
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, output.recv()) => next,
                    () = context.shutdown.cancelled() => {
                        run.status = "no_answer".into();
                        run.error = Some(format!(
                            "the controller was stopped before host {} answered",
                            agent.name
                        ));
                        break;
                    }
                };
                match next {
                    Ok(Some(message)) => {
                        forward(events, &agent.name, &message.lines).await;
                        for line in message.lines {
                            stored_bytes += line.line.len();
                            if stored_bytes <= MAX_STORED_OUTPUT {
                                run.output.push(stored_line(line));
                            }
                        }
                        if message.finished {
                            (run.status, run.exit_code, run.error) = crate::wire::exec_finished(
                                message.status,
                                message.exit_code,
                                message.error,
                            );
                            break;
                        }
                    }
                    Ok(None) => {
                        run.status = "no_answer".into();
                        run.error =
                            Some(format!("host {} went away before it answered", agent.name));
                        break;
                    }
                    Err(_) => {
                        run.status = "no_answer".into();
                        run.error = Some(format!(
                            "host {} did not answer within {} (timeout {} plus {} for the answer)",
                            agent.name,
                            berth_shared::time::format_duration(timeout + ANSWER_GRACE),
                            berth_shared::time::format_duration(timeout),
                            berth_shared::time::format_duration(ANSWER_GRACE)
                        ));
                        break;
                    }
                }
            }
            context.registry.end_exec(request_id);
        }
    }
    run.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let done = HostRun {
        output: Vec::new(),
        ..run.clone()
    };
    let _ = events.send(Ok(ExecEvent::HostDone(done))).await;
    run
}

fn stored_line(line: ExecLine) -> String {
    if line.stream() == berth_proto::v1::OutputStream::Stderr {
        format!("stderr: {}", line.line)
    } else {
        line.line
    }
}

async fn forward(events: &Events, host: &str, lines: &[ExecLine]) {
    if lines.is_empty() {
        return;
    }
    let lines = lines
        .iter()
        .map(|line| OutputLine {
            stderr: line.stream() == berth_proto::v1::OutputStream::Stderr,
            line: line.line.clone(),
        })
        .collect();
    // A client that went away stops getting lines; the job is still stored.
    let _ = events
        .send(Ok(ExecEvent::Output {
            host: host.to_string(),
            lines,
        }))
        .await;
}
