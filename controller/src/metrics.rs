//! The controller's Prometheus metrics (`GET /metrics` on
//! `--metrics-listen`, see [`listen`]): one [`Metrics`] holding the
//! `prometheus-client` registry and every family, shared in
//! [`crate::server::Context`]. Each concept counts in one place:
//! deployments ([`deployments`]) where the store commits a change of a
//! deployment, HTTP requests ([`http`]) in a middleware of the API's
//! router, gRPC requests ([`grpc`]) in a layer of the tonic server, the
//! fleet and the store ([`fleet`]) read at scrape time.
//!
//! Labels are bounded: app and environment names (checked names, a few per
//! installation), route templates never raw paths, known gRPC methods; no
//! label ever holds a secret, a token or a user's input beyond those names.

mod deployments;
mod fleet;
pub mod grpc;
pub mod http;
pub mod listen;

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use deployments::Before;
pub use listen::{DEFAULT_METRICS_LISTEN, MetricsConfig, MetricsListen};

/// The content type of the OpenMetrics text format `GET /metrics` answers
/// with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    deployments: deployments::Deployments,
    pub(crate) http: http::HttpMetrics,
    pub(crate) grpc: grpc::GrpcMetrics,
    streams: Gauge,
    reconnects: Counter,
    log_lines: Counter,
    log_bytes: Counter,
    webhook_deliveries: prometheus_client::metrics::family::Family<Outcome, Counter>,
    webhook_failures: Counter,
    git_deliveries: prometheus_client::metrics::family::Family<Outcome, Counter>,
}

/// A webhook delivery's outcome label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

impl Metrics {
    /// Registers every family; `agents` is read at each scrape for the
    /// agents online.
    pub fn new(agents: Arc<crate::registry::Registry>) -> Metrics {
        let mut registry = Registry::with_prefix("berth");
        let deployments = deployments::Deployments::register(&mut registry);
        let http = http::HttpMetrics::register(&mut registry);
        let grpc = grpc::GrpcMetrics::register(&mut registry);
        let streams = Gauge::default();
        registry.register(
            "agent_streams_connected",
            "Agent streams open now (an agent's replaced stream counts until it has ended)",
            streams.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "agent_stream_reconnects",
            "Agent streams opened by an agent this controller had seen connected since it started",
            reconnects.clone(),
        );
        let log_lines = Counter::default();
        registry.register(
            "log_lines_stored",
            "Log lines stored (each once, with the events that carried them)",
            log_lines.clone(),
        );
        let log_bytes = Counter::default();
        registry.register_with_unit(
            "log_stored",
            "Bytes of log line text stored",
            prometheus_client::registry::Unit::Bytes,
            log_bytes.clone(),
        );
        let webhook_deliveries = prometheus_client::metrics::family::Family::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome (succeeded: a 2xx answer; failed: anything else, retried later)",
            webhook_deliveries.clone(),
        );
        let webhook_failures = Counter::default();
        registry.register(
            "webhook_delivery_failures",
            "Webhook delivery attempts that failed (no answer, or not 2xx)",
            webhook_failures.clone(),
        );
        let git_deliveries = prometheus_client::metrics::family::Family::default();
        registry.register(
            "git_deliveries",
            "Deliveries to git push hooks by outcome (accepted, ignored, refused: a bad signature or token, replayed)",
            git_deliveries.clone(),
        );
        registry.register_collector(Box::new(fleet::Live { agents }));
        Metrics {
            registry,
            deployments,
            http,
            grpc,
            streams,
            reconnects,
            log_lines,
            log_bytes,
            webhook_deliveries,
            webhook_failures,
            git_deliveries,
        }
    }

    /// The OpenMetrics text of every metric, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// A committed change of a deployment (called by the store after its
    /// transaction, once per commit): see [`deployments`].
    pub fn deployment_changed(&self, before: &Before, after: &berth_shared::record::Deployment) {
        self.deployments.changed(before, after);
    }

    /// Log lines a committed transaction stored.
    pub fn logs_stored(&self, lines: u64, bytes: u64) {
        self.log_lines.inc_by(lines);
        self.log_bytes.inc_by(bytes);
    }

    /// An agent's stream opened; `reconnect` when this agent was connected
    /// before (since the controller started). The stream counts as
    /// connected until the returned guard is dropped.
    pub fn stream_opened(self: &Arc<Self>, reconnect: bool) -> StreamGuard {
        if reconnect {
            self.reconnects.inc();
        }
        self.streams.inc();
        StreamGuard {
            metrics: self.clone(),
        }
    }

    /// One delivery to a git push hook: `accepted`, `ignored`, `refused`
    /// or `replayed`.
    pub fn git_delivery(&self, outcome: &'static str) {
        self.git_deliveries
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// One webhook delivery attempt ended (the webhook worker calls it).
    pub fn webhook_delivery(&self, succeeded: bool) {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        self.webhook_deliveries
            .get_or_create(&Outcome { outcome })
            .inc();
        if !succeeded {
            self.webhook_failures.inc();
        }
    }
}

/// An open agent stream, counted in `berth_agent_streams_connected` until
/// dropped.
pub struct StreamGuard {
    metrics: Arc<Metrics>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.metrics.streams.dec();
    }
}

#[cfg(test)]
mod tests;
