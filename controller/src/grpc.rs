//! The gRPC services: `Enroll` (no client certificate needed), `Agent`
//! (agent certificates) and `Cli` (user certificates, role-checked), with the
//! authentication interceptor and the one place errors become statuses.

mod agent;
pub mod auth;
pub mod cli;
mod enroll;
pub mod status;

pub use agent::AgentApi;
pub use cli::CliApi;
pub use enroll::EnrollApi;

/// A boxed response stream.
pub type BoxStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, tonic::Status>> + Send>>;
