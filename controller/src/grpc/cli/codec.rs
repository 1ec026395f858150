//! The `Cli` service's conversions of requests into the application
//! layer's plain types, and of its stream items into messages. Records
//! become messages in `records.rs`.

use std::time::Duration;

use berth_proto::v1::{
    CreateDeploymentRequest, ExecLine, FleetExecEvent, FleetExecRequest, GetLogsRequest,
    ListDeploymentsRequest, LogRecord, LogsExpired, OutputStream, PutBlobChunk, RollbackRequest,
};
use futures_util::{Stream, StreamExt};
use tonic::{Status, Streaming};

use crate::ops::create::NewDeployment;
use crate::ops::deployments::ListRequest;
use crate::ops::exec::{ExecEvent, ExecRequest};
use crate::ops::follow::{LogFilters, LogItem, LogsRequest};
use crate::ops::rerun::{Claim, Rollback};
use crate::ops::stop::AppRef;
use crate::ops::{self, Code, Error};

/// Maps an operation's stream into replies, errors into statuses.
pub fn stream_of<T, R>(
    items: ops::Stream<T>,
    encode: impl Fn(T) -> Result<R, Status> + Send + 'static,
) -> super::super::BoxStream<R>
where
    T: 'static,
    R: Send + 'static,
{
    Box::pin(items.map(move |item| item.map_err(Status::from).and_then(&encode)))
}

/// An upload's chunks after the first, which named the blob, as plain data.
pub fn chunks(
    first: Vec<u8>,
    rest: Streaming<PutBlobChunk>,
) -> impl Stream<Item = ops::Result<Vec<u8>>> + Unpin {
    let rest = rest.map(|chunk| {
        chunk.map(|chunk| chunk.data).map_err(|status| {
            Error::new(
                Code::RequestInvalid,
                format!("the upload broke off: {}", status.message()),
            )
        })
    });
    futures_util::stream::once(std::future::ready(Ok(first))).chain(rest)
}

/// The first chunk of an upload, which names the blob.
pub async fn first_chunk(chunks: &mut Streaming<PutBlobChunk>) -> Result<PutBlobChunk, Status> {
    chunks
        .message()
        .await?
        .ok_or_else(|| Error::invalid("the upload sent no data").into())
}

pub fn new_deployment(request: CreateDeploymentRequest) -> NewDeployment {
    NewDeployment {
        image_archive: Some(request.image_archive_digest)
            .filter(|digest| !digest.is_empty())
            .map(|digest| (digest, request.image_archive_size)),
        manifest_toml: request.manifest_toml,
        environment: request.environment,
        version: request.version,
        bundle_digest: request.bundle_digest,
        bundle_size: request.bundle_size,
        idempotency_key: request.idempotency_key,
        force: request.force,
        queue: request.queue,
        rebuild: request.rebuild,
        wait_for_agents: Duration::from_millis(request.wait_for_agents_ms),
        provenance: crate::ops::provenance::Provenance {
            message: request.message,
            source_ref: request.source_ref,
            commit_sha: request.commit_sha,
            commit_time: request.commit_time_ms.map(berth_shared::record::Timestamp),
            commit_author: None,
            build_url: request.build_url,
        },
        trigger: crate::ops::provenance::Trigger::Cli,
    }
}

pub fn list_request(request: ListDeploymentsRequest) -> ListRequest {
    ListRequest {
        app: request.app,
        environment: request.environment,
        statuses: request.status,
        limit: request.limit,
        triggered_by: request.triggered_by,
        search: request.search,
        sort: request.sort,
        ascending: request.ascending,
        offset: request.offset,
        until: None,
    }
}

pub fn app_ref(app: String, environment: String) -> AppRef {
    AppRef { app, environment }
}

pub fn rollback(request: RollbackRequest) -> Result<Rollback, Status> {
    let to = Some(request.to_id)
        .filter(|id| !id.is_empty())
        .map(|id| ops::parse_deployment_id(&id))
        .transpose()?;
    Ok(Rollback {
        app: app_ref(request.app, request.environment),
        to,
        claim: Claim {
            force: request.force,
            queue: request.queue,
        },
    })
}

pub fn logs_request(request: GetLogsRequest) -> Result<LogsRequest, Status> {
    Ok(LogsRequest {
        deployment_id: ops::parse_deployment_id(&request.deployment_id)?,
        filters: LogFilters {
            host: request.host,
            stage: request.stage,
            stream: request.stream,
            level: request.level,
            since_ms: request.since_ms,
        },
        follow: request.follow,
        tail: request.tail,
        app_output: request.app_output,
        after_seq: request
            .after_seq
            .iter()
            .filter_map(|(task, seq)| Some((task.parse().ok()?, *seq)))
            .collect(),
        resource: request.resource,
    })
}

pub fn log_record(item: LogItem) -> Result<LogRecord, Status> {
    Ok(match item {
        LogItem::Line(line) => LogRecord {
            host: line.host,
            stage: line.stage,
            stream: line.stream,
            seq: line.seq,
            ts_ms: line.ts_ms,
            line: line.line,
            task_id: line.task_id.map(|id| id.to_string()).unwrap_or_default(),
            expired: None,
        },
        LogItem::Expired {
            before_ms,
            retention_ms,
        } => LogRecord {
            expired: Some(LogsExpired {
                before_ms,
                retention_ms,
            }),
            ..LogRecord::default()
        },
    })
}

pub fn exec_request(request: FleetExecRequest) -> ExecRequest {
    ExecRequest {
        selector: request.selector,
        argv: request.argv,
        timeout: Duration::from_millis(request.timeout_ms),
    }
}

pub fn exec_event(event: ExecEvent) -> Result<FleetExecEvent, Status> {
    Ok(match event {
        ExecEvent::Output { host, lines } => FleetExecEvent {
            host,
            lines: lines
                .into_iter()
                .map(|line| ExecLine {
                    stream: if line.stderr {
                        OutputStream::Stderr
                    } else {
                        OutputStream::Stdout
                    }
                    .into(),
                    line: line.line,
                })
                .collect(),
            ..Default::default()
        },
        ExecEvent::HostDone(run) => FleetExecEvent {
            host: run.host,
            status: run.status,
            exit_code: run.exit_code,
            error: run.error.unwrap_or_default(),
            ..Default::default()
        },
        ExecEvent::Finished(job) => FleetExecEvent {
            job: Some(super::records::fleet_job(job)),
            ..Default::default()
        },
    })
}
