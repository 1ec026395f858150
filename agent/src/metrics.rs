//! The agent's Prometheus metrics (`berth-agent run --metrics-listen
//! ADDR`, off by default), served by a tiny HTTP/1.1 server ([`serve`]).
//! What a scrape reads:
//!
//! - `berth_agent_running_tasks`: tasks running now (not those waiting
//!   for a slot).
//! - `berth_agent_spool_bytes` and `berth_agent_spool_events`: the
//!   outbox's spool files and its events not acknowledged yet.
//! - `berth_agent_dropped_lines_total`: log lines dropped because a
//!   task's spool (or the memory kept when it cannot be written) was full.
//! - `berth_agent_docker_reachable` and `berth_agent_caddy_reachable`: 1
//!   when Docker (`--docker-host`) and Caddy's admin API (`--caddy-admin`)
//!   answered at this scrape, within [`PROBE_WAIT`], else 0. Both always
//!   have an address (their defaults), so both are always exported.
//! - `berth_agent_health_checks_total{app,result}`: the periodic health
//!   checks of deployed apps (`stage::monitor`), `healthy` or `unhealthy`.

mod serve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::{Registry, Unit};

use crate::Agent;

/// How long a scrape waits for Docker and for Caddy.
pub const PROBE_WAIT: Duration = Duration::from_secs(2);

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Check {
    app: String,
    result: &'static str,
}

/// The results of health checks, by app and result.
#[derive(Clone, Debug, Default)]
pub struct HealthChecks(Family<Check, Counter>);

impl HealthChecks {
    /// One check of `app` ended.
    pub fn record(&self, app: &str, healthy: bool) {
        let result = if healthy { "healthy" } else { "unhealthy" };
        self.0
            .get_or_create(&Check {
                app: app.to_string(),
                result,
            })
            .inc();
    }
}

/// The registry and what a scrape refreshes.
pub struct Metrics {
    registry: Registry,
    agent: Arc<Agent>,
    docker: Gauge,
    caddy: Gauge,
}

impl Metrics {
    pub fn new(agent: Arc<Agent>) -> Metrics {
        let mut registry = Registry::with_prefix("berth_agent");
        let docker = Gauge::default();
        registry.register(
            "docker_reachable",
            "1 when Docker answered at this scrape, else 0",
            docker.clone(),
        );
        let caddy = Gauge::default();
        registry.register(
            "caddy_reachable",
            "1 when Caddy's admin API answered at this scrape, else 0",
            caddy.clone(),
        );
        registry.register(
            "health_checks",
            "Periodic health checks of deployed apps, by app and result",
            agent.monitor.checks().0.clone(),
        );
        registry.register_collector(Box::new(Live {
            agent: agent.clone(),
        }));
        Metrics {
            registry,
            agent,
            docker,
            caddy,
        }
    }

    /// Asks Docker and Caddy whether they answer, then encodes everything.
    pub async fn scrape(&self) -> String {
        let docker = tokio::time::timeout(
            PROBE_WAIT,
            crate::stage::docker::probe(&self.agent.docker_host),
        );
        let caddy = tokio::time::timeout(PROBE_WAIT, self.agent.caddy.ping());
        let (docker, caddy) = tokio::join!(docker, caddy);
        self.docker.set(i64::from(matches!(docker, Ok(Ok(_)))));
        self.caddy.set(i64::from(matches!(caddy, Ok(Ok(())))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// What is read from the agent at each scrape.
struct Live {
    agent: Arc<Agent>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        let running = gauge(self.agent.running_tasks() as u64);
        running.encode(encoder.encode_descriptor(
            "running_tasks",
            "Tasks running now (not those waiting for a slot)",
            None,
            running.metric_type(),
        )?)?;
        let spooled = self.agent.outbox.spooled();
        let bytes = gauge(spooled.bytes);
        bytes.encode(encoder.encode_descriptor(
            "spool",
            "Bytes of the outbox's spool files",
            Some(&Unit::Bytes),
            bytes.metric_type(),
        )?)?;
        let events = gauge(spooled.events);
        events.encode(encoder.encode_descriptor(
            "spool_events",
            "Events in the spool not acknowledged by the controller yet",
            None,
            events.metric_type(),
        )?)?;
        let dropped = ConstCounter::new(self.agent.outbox.dropped_lines());
        dropped.encode(encoder.encode_descriptor(
            "dropped_lines",
            "Log lines dropped because a task's spool was full",
            None,
            dropped.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Binds `address` and serves `GET /metrics` on the agent's task tracker
/// until it shuts down.
pub async fn spawn(agent: Arc<Agent>, address: SocketAddr) -> Result<()> {
    use anyhow::Context as _;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listen for metrics on {address} (--metrics-listen)"))?;
    let local = listener
        .local_addr()
        .context("read the metrics' bound address")?;
    if !local.ip().is_loopback() {
        tracing::warn!(address = %local, "metrics listen on an address other hosts may reach, in plain HTTP; they name apps, so keep the port behind a firewall");
    }
    tracing::info!(url = %format!("http://{local}/metrics"), "metrics listening");
    let metrics = Arc::new(Metrics::new(agent.clone()));
    let tasks = agent.tasks.clone();
    agent
        .tasks
        .spawn(serve::run(listener, metrics, tasks, agent.shutdown.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_are_counted_by_app_and_result() {
        let checks = HealthChecks::default();
        checks.record("shop", true);
        checks.record("shop", true);
        checks.record("shop", false);
        let mut registry = Registry::with_prefix("berth_agent");
        registry.register("health_checks", "Checks", checks.0.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            r#"berth_agent_health_checks_total{app="shop",result="healthy"} 2"#,
            r#"berth_agent_health_checks_total{app="shop",result="unhealthy"} 1"#,
        ] {
            assert!(
                text.lines().any(|seen| seen == line),
                "no `{line}` in\n{text}"
            );
        }
    }
}
