//! What the store tells the metrics (`crate::metrics`): each committed
//! change of a deployment and the log lines stored with it, after the
//! transaction, once per commit.

use super::{LogWrite, Store};

impl Store {
    /// Counts committed changes of deployments (and the log lines stored
    /// with them) in `metrics` from now on; a second call changes nothing.
    pub fn observe(&self, metrics: std::sync::Arc<crate::metrics::Metrics>) {
        let _ = self.shared.metrics.set(metrics);
    }

    /// Tells the metrics, if any, of a committed change of a deployment.
    pub(super) fn committed(
        &self,
        before: &crate::metrics::Before,
        after: &berth_shared::record::Deployment,
    ) {
        if let Some(metrics) = self.shared.metrics.get() {
            metrics.deployment_changed(before, after);
        }
    }

    /// Tells the metrics, if any, of log lines a transaction stored.
    pub(super) fn stored_lines(&self, lines: &[LogWrite]) {
        if let Some(metrics) = self.shared.metrics.get()
            && !lines.is_empty()
        {
            let bytes = lines
                .iter()
                .map(|(_, _, line)| line.line.len() as u64)
                .sum();
            metrics.logs_stored(lines.len() as u64, bytes);
        }
    }
}
