//! Free-text search over the history: a deployment is found when its app
//! name or its `triggered_by` contains the text, or its id starts with it,
//! ignoring case. Candidates come from index keys only.

use std::collections::BTreeSet;

use berth_shared::id::DeploymentId;
use berth_shared::record::Deployment;

use super::super::keys::{Heads, id_from_suffix};
use super::super::{Store, StoreError};

/// Whether free text `needle` (lowercase) finds this deployment.
pub(super) fn is_found(deployment: &Deployment, needle: &str) -> bool {
    deployment.app.to_lowercase().contains(needle)
        || deployment.triggered_by.to_lowercase().contains(needle)
        || deployment
            .id
            .to_string()
            .starts_with(&needle.to_ascii_uppercase())
}

impl Store {
    /// Ids found by free text `needle` (lowercase): apps and users whose
    /// name contains it, and ids that start with it. Reads index keys only,
    /// jumping over the keys of names that do not match.
    pub(super) fn search_ids(&self, needle: &str) -> Result<Vec<DeploymentId>, StoreError> {
        let mut ids = BTreeSet::new();
        let t = self.t()?;
        for (tree, name) in [(&t.idx_app, "idx_app_env"), (&t.idx_user, "idx_user")] {
            for head in Heads::new(tree, name, b"", 1) {
                let head = head?;
                let owner = &head[..head.len() - 1];
                if String::from_utf8_lossy(owner)
                    .to_lowercase()
                    .contains(needle)
                {
                    for key in tree.scan_prefix(&head).keys() {
                        ids.extend(id_from_suffix(&key?));
                    }
                }
            }
        }
        if let Some((low, high)) = id_range(needle) {
            for key in self.t()?.deployments.range(low..=high).keys() {
                ids.extend(id_from_suffix(&key?));
            }
        }
        Ok(ids.into_iter().collect())
    }
}

/// Crockford's base32 alphabet, as ULIDs are written.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The 16-byte key range of the ids whose text starts with `prefix` (any
/// case): the prefix padded with the lowest and the highest digit. `None`
/// when no id can start with it.
fn id_range(prefix: &str) -> Option<([u8; 16], [u8; 16])> {
    let digits = prefix
        .bytes()
        .map(|byte| {
            let upper = byte.to_ascii_uppercase();
            CROCKFORD.iter().position(|digit| *digit == upper)
        })
        .collect::<Option<Vec<usize>>>()?;
    // 26 digits carry 130 bits, so the first one of a 128-bit id is at most 7.
    if digits.is_empty() || digits.len() > 26 || digits[0] > 7 {
        return None;
    }
    let (mut low, mut high) = (0_u128, 0_u128);
    for position in 0..26 {
        let digit = digits.get(position);
        low = (low << 5) | digit.map_or(0, |digit| *digit as u128);
        high = (high << 5) | digit.map_or(31, |digit| *digit as u128);
    }
    Some((low.to_be_bytes(), high.to_be_bytes()))
}
