//! Certificate renewal on the agent's side. The agent compares its clock with
//! the controller's (`Welcome.now_ms`) and logs the skew; it asks for a new
//! certificate (with a new key) once, by the controller's clock as it
//! estimates it, two thirds of the current one's lifetime are gone. The
//! controller decides: a refusal is logged with its reason and the agent
//! waits the `retry_after_secs` it names before asking again. A renewed
//! certificate is used at once: the agent reconnects with it, and the
//! controller then retires the old one.

use std::time::{Duration, Instant};

use berth_proto::MAX_CLOCK_SKEW_MS;
use berth_proto::v1::{RenewRequest, RenewResponse};
use berth_shared::time::{format_duration, now_ms};
use tracing::{info, warn};

use crate::config::Files;

/// Renewal state of one connection.
#[derive(Default)]
pub struct Renewal {
    /// Key of a renewal in flight.
    pending_key: Option<String>,
    /// No request before this (the controller refused one).
    not_before: Option<Instant>,
    /// The agent's clock minus the controller's, in ms, as seen at welcome.
    skew_ms: i64,
    /// A renewed certificate was installed; the connection should be made
    /// again with it.
    installed: bool,
}

/// Describes a clock difference in ms for the log.
fn describe(skew_ms: i64) -> String {
    let span = format_duration(Duration::from_millis(skew_ms.unsigned_abs()));
    let side = if skew_ms >= 0 { "ahead of" } else { "behind" };
    format!("this host's clock is {span} {side} the controller's")
}

impl Renewal {
    /// Compares the agent's clock with the controller's (0: an older
    /// controller that does not say) and logs the difference.
    pub fn compare_clocks(&mut self, controller_now_ms: i64) {
        if controller_now_ms == 0 {
            return;
        }
        self.skew_ms = now_ms() - controller_now_ms;
        if self.skew_ms.abs() > MAX_CLOCK_SKEW_MS {
            warn!(
                skew_ms = self.skew_ms,
                "{}; the controller refuses to renew this agent's certificate until the host's time is set (NTP)",
                describe(self.skew_ms)
            );
        } else {
            info!(
                skew_ms = self.skew_ms,
                "clock compared with the controller's"
            );
        }
    }

    /// A renewal request, if none is in flight, the controller has not
    /// asked to wait, and the certificate is due by the controller's clock.
    pub fn request(&mut self, files: &Files, name: &str) -> Option<RenewRequest> {
        if self.pending_key.is_some() || self.not_before.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        let pem = std::fs::read_to_string(files.cert()).ok()?;
        let info = berth_shared::pki::first_cert_der(&pem)
            .and_then(|der| berth_shared::pki::cert_info(&der))
            .ok()?;
        let lifetime = info.not_after_ms - info.not_before_ms;
        let renew_at = info.not_before_ms + lifetime * 2 / 3;
        if now_ms() - self.skew_ms < renew_at {
            return None;
        }
        match berth_shared::pki::new_csr(name) {
            Ok((csr_pem, key_pem)) => {
                self.pending_key = Some(key_pem);
                info!("certificate renewal requested");
                Some(RenewRequest {
                    csr_pem,
                    agent_now_ms: now_ms(),
                })
            }
            Err(err) => {
                warn!(error = %err, "could not make a renewal request");
                None
            }
        }
    }

    /// Whether a renewed certificate was installed on this connection.
    pub fn is_installed(&self) -> bool {
        self.installed
    }

    /// Installs a renewed certificate, or waits as a refusal says.
    pub fn answer(&mut self, files: &Files, answer: RenewResponse) {
        let Some(key_pem) = self.pending_key.take() else {
            return;
        };
        if answer.cert_pem.is_empty() {
            let wait = Duration::from_secs(u64::from(answer.retry_after_secs.max(1)));
            self.not_before = Some(Instant::now() + wait);
            warn!(reason = %answer.refused, retry_after_secs = wait.as_secs(), "the controller refused to renew this agent's certificate; asking again later");
            return;
        }
        if berth_shared::pki::first_cert_der(&answer.cert_pem).is_err() {
            return warn!(
                "the controller's renewed certificate could not be read; keeping the current one"
            );
        }
        match files.install_renewed(&key_pem, &answer.cert_pem) {
            Ok(()) => {
                self.installed = true;
                info!("certificate renewed; the next connection uses it");
            }
            Err(err) => warn!(error = %err, "could not store the renewed certificate"),
        }
    }
}

#[cfg(test)]
#[path = "renewal/tests.rs"]
mod tests;
