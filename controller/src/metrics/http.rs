//! HTTP API metrics, counted by one middleware on the API's router
//! ([`track`], the outermost layer of [`crate::http::router`]):
//!
//! - `berth_http_requests_total{method,route,status}`
//! - `berth_http_request_duration_seconds{method,route}`
//!
//! The route is the template axum matched (`/api/v1/deployments/{id}`),
//! never the raw path, so a client cannot grow the label set; a request no
//! route matched is `unmatched`, a method outside HTTP's own is `other`.
//! An event stream is counted when its response headers are sent: its
//! duration is the time to start streaming.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: &'static str,
    route: String,
}

/// Seconds from 1 ms to about 65 s, doubling.
pub(super) fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub(crate) struct HttpMetrics {
    requests: Family<Answered, Counter>,
    durations: Family<Route, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> HttpMetrics {
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP API requests answered, by method, route template and status",
            requests.clone(),
        );
        let durations: Family<Route, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(request_buckets);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP API request (to its response headers)",
            Unit::Seconds,
            durations.clone(),
        );
        HttpMetrics {
            requests,
            durations,
        }
    }

    /// One request answered.
    pub(crate) fn answered(&self, method: &Method, route: Option<&str>, status: u16, seconds: f64) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched").to_string();
        self.durations
            .get_or_create(&Route {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&Answered {
                method,
                route,
                status,
            })
            .inc();
    }
}

/// A bounded method label.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", |known| known.as_str())
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http.answered(
        &method,
        route.as_deref(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_http_are_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let odd = Method::from_bytes(b"BREW").expect("an extension method");
        assert_eq!(method_label(&odd), "other");
    }
}
