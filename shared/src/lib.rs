//! Types every part of berth needs: the manifest model and its validation,
//! the deployment and task state machine, ids, labels and selectors, the
//! stable JSON records the CLI prints, PKI helpers (CA, CSR, pins) and the
//! credential bundle format.
//!
//! Invariant: this crate does no network or disk I/O of its own beyond
//! reading and writing the small files a caller names (and giving a data
//! directory's files to its owner), and depends on no
//! tonic, sled, bollard or sysinfo.

pub mod bundle;
pub mod credentials;
pub mod exit;
pub mod id;
pub mod labels;
pub mod manifest;
pub mod masking;
pub mod ownership;
pub mod pki;
pub mod query;
pub mod record;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod state;
pub mod text;
pub mod time;
pub mod variables;
