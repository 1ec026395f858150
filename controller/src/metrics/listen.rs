//! Where `GET /metrics` listens (`serve --metrics-listen ADDR`, default
//! [`DEFAULT_METRICS_LISTEN`]; `off` disables it), and its listener: plain
//! HTTP with the HTTP API's bounds (connection caps, header deadline,
//! graceful shutdown: [`crate::http::spawn_named`]), one route. The
//! metrics name apps and environments, so an address other than loopback
//! is allowed but warned about: put it behind a firewall or a proxy.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Metrics;
use crate::http::Bound;

/// `/metrics`' address unless `--metrics-listen` says otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// `--metrics-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    On(SocketAddr),
}

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(text: &str) -> Result<MetricsListen, String> {
        if text.trim() == "off" {
            return Ok(MetricsListen::Off);
        }
        text.trim().parse().map(MetricsListen::On).map_err(|_| {
            format!("`{text}` is not an address like 127.0.0.1:9464 (or `off` for no metrics)")
        })
    }
}

/// The metrics listener's settings.
#[derive(Clone, Copy, Debug)]
pub struct MetricsConfig {
    pub listen: MetricsListen,
    /// The address is the default, not asked for: when it cannot be bound
    /// the controller runs without metrics and says so.
    pub best_effort: bool,
}

impl Default for MetricsConfig {
    /// Off: what a controller made in code (`dev`, tests) starts with.
    fn default() -> MetricsConfig {
        MetricsConfig {
            listen: MetricsListen::Off,
            best_effort: false,
        }
    }
}

impl MetricsConfig {
    /// [`DEFAULT_METRICS_LISTEN`], skipped with a warning when taken.
    pub fn default_address() -> MetricsConfig {
        MetricsConfig {
            listen: MetricsListen::On(SocketAddr::from(([127, 0, 0, 1], 9464))),
            best_effort: true,
        }
    }
}

/// Binds the listener; `None` when metrics are off (or the default
/// address is taken).
pub async fn bind(config: &MetricsConfig) -> Result<Option<Bound>> {
    let MetricsListen::On(address) = config.listen else {
        return Ok(None);
    };
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) if config.best_effort => {
            tracing::warn!(
                %address, error = %err,
                "metrics are off: their default address cannot be bound; give --metrics-listen ADDR (or `off`)"
            );
            return Ok(None);
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "listen for metrics on {address} (--metrics-listen; `off` turns it off)"
            )));
        }
    };
    let local = listener
        .local_addr()
        .context("read the metrics' bound address")?;
    if !local.ip().is_loopback() {
        tracing::warn!(address = %local, "metrics listen on an address other hosts may reach, in plain HTTP; they name apps and environments, so keep the port behind a firewall");
    }
    Ok(Some(Bound {
        listener,
        local,
        tls: None,
        trusted_proxies: Vec::new(),
    }))
}

/// Serves `GET /metrics` on `bound` until `shutdown`, on `tasks`.
pub fn spawn(
    bound: Bound,
    metrics: Arc<Metrics>,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    crate::http::spawn_named("metrics", bound, router, tasks, shutdown);
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, super::CONTENT_TYPE)], metrics.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_reads_an_address_or_off() {
        assert_eq!("off".parse(), Ok(MetricsListen::Off));
        assert_eq!(
            "127.0.0.1:0".parse(),
            Ok(MetricsListen::On(SocketAddr::from(([127, 0, 0, 1], 0))))
        );
        assert!("9464".parse::<MetricsListen>().is_err());
    }
}
