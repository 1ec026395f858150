//! Stage executors. Each kind of stage lives in its own module; today that is
//! script stages ([`shell`]). A stage that fails is an outcome, not an error.

pub mod caddy;
pub mod current;
pub mod docker;
pub mod health;
pub mod http;
pub mod monitor;
pub mod reach;
pub mod resource_watch;
pub mod sandbox;
pub mod shell;
