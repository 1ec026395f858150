//! berth's controller: the daemon that keeps desired deployments, their
//! history and their logs in sled, serves agents and the CLI over one mTLS
//! gRPC listener, and dispatches work into agents' free slots. The `berth`
//! CLI is its own crate (`controller/cli`), a client of the `Cli` service.
//!
//! Main types: [`server::Context`] (what the services share),
//! [`store::Store`], [`dispatcher::Dispatcher`], [`registry::Registry`].
//!
//! Invariant: this crate never depends on `berth-agent`.

pub mod backup;
pub mod blob;
pub mod cluster;
pub mod crypto;
pub mod dev;
pub mod dispatcher;
pub mod grpc;
pub mod hooks;
pub mod http;
pub mod hub;
pub mod init;
pub mod key_file;
pub mod limit;
pub mod listener;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod paths;
pub mod progress;
pub mod registry;
pub mod restart;
pub mod rotate;
pub mod rotate_key;
pub mod server;
pub mod store;
pub mod store_choice;
pub mod sweepers;
#[cfg(test)]
mod testing;
pub mod web;
pub mod webhooks;
pub mod wire;
