//! What is read at scrape time rather than counted as it happens: the
//! agents online (from the live [`crate::registry::Registry`]) and the
//! store's write errors (counted where sled's errors become
//! [`crate::store::StoreError`]s, see [`crate::store::write_errors`]).
//!
//! - `berth_agents_online`: agents with a live stream now.
//! - `berth_store_write_errors_total`: store writes, transactions and
//!   flushes sled failed (a full disk among them) since the controller
//!   started.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The collector registered with the registry.
pub(super) struct Live {
    pub(super) agents: Arc<crate::registry::Registry>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live")
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let online = ConstGauge::new(i64::try_from(self.agents.online()).unwrap_or(i64::MAX));
        online.encode(encoder.encode_descriptor(
            "agents_online",
            "Agents with a live stream to this controller now",
            None,
            online.metric_type(),
        )?)?;
        let errors = ConstCounter::new(crate::store::write_errors());
        errors.encode(encoder.encode_descriptor(
            "store_write_errors",
            "Store writes, transactions and flushes that sled failed (a full disk among them)",
            None,
            errors.metric_type(),
        )?)?;
        Ok(())
    }
}
