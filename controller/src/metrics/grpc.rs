//! gRPC metrics, counted by one tower layer on the tonic server
//! ([`GrpcLayer`], in `server::run`), for the `Agent`, `Cli` and `Enroll`
//! services alike:
//!
//! - `berth_grpc_requests_total{method,code}`
//! - `berth_grpc_request_duration_seconds{method}`
//!
//! The method is one of `proto/berth.proto`'s ([`berth_proto::METHOD_PATHS`],
//! without the leading `/`), or `unknown`. A call is counted when its
//! response headers are sent: the code is the one those headers carry (an
//! error answered at once), else `Ok`; a stream is counted when it
//! starts, and its duration is the time to start it. A call that fails
//! after its headers (a stream cut later) counts as `Ok`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    method: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: &'static str,
}

pub(crate) struct GrpcMetrics {
    requests: Family<Answered, Counter>,
    durations: Family<Method, Histogram, fn() -> Histogram>,
}

impl GrpcMetrics {
    pub(super) fn register(registry: &mut Registry) -> GrpcMetrics {
        let requests = Family::default();
        registry.register(
            "grpc_requests",
            "gRPC calls answered, by method and the code of their response headers",
            requests.clone(),
        );
        let durations: Family<Method, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(super::http::request_buckets);
        registry.register_with_unit(
            "grpc_request_duration",
            "Time to a gRPC call's response headers (a stream's start)",
            Unit::Seconds,
            durations.clone(),
        );
        GrpcMetrics {
            requests,
            durations,
        }
    }

    /// One call answered with `code` (a `grpc-status` value).
    fn answered(&self, path: &str, code: i32, seconds: f64) {
        let method = method_label(path);
        self.durations
            .get_or_create(&Method { method })
            .observe(seconds);
        self.requests
            .get_or_create(&Answered {
                method,
                code: code_label(code),
            })
            .inc();
    }
}

/// The method's name when `path` is one of berth's, else `unknown`.
fn method_label(path: &str) -> &'static str {
    berth_proto::METHOD_PATHS
        .iter()
        .find(|known| **known == path)
        .map_or("unknown", |known| known.trim_start_matches('/'))
}

fn code_label(code: i32) -> &'static str {
    use tonic::Code::*;
    match tonic::Code::from_i32(code) {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// The code in a response's headers, `Ok` (0) when they carry none.
fn code_of<B>(response: &Response<B>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// The layer counting every call.
#[derive(Clone)]
pub struct GrpcLayer {
    pub metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for GrpcLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service whose calls are counted.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type Answer<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, R> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Answer<Response<R>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path().to_string();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            // A transport error never reached a handler: counted as
            // `Unknown`, its code being none of gRPC's.
            let code = result.as_ref().map_or(2, code_of);
            metrics
                .grpc
                .answered(&path, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_berths_methods_are_labels() {
        assert_eq!(
            method_label("/berth.v1.Cli/CreateDeployment"),
            "berth.v1.Cli/CreateDeployment"
        );
        assert_eq!(method_label("/berth.v1.Cli/NoSuchThing"), "unknown");
        assert_eq!(method_label("/../etc"), "unknown");
    }

    #[test]
    fn the_code_comes_from_the_headers() {
        let plain = Response::new(());
        assert_eq!(code_label(code_of(&plain)), "Ok");
        let refused = Response::builder()
            .header("grpc-status", "5")
            .body(())
            .expect("a response");
        assert_eq!(code_label(code_of(&refused)), "NotFound");
    }
}
