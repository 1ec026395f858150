//! Signals longer than one notification: sent as numbered parts of their
//! text and put together again by the receiver, which forgets what stays
//! incomplete for a minute.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Envelope, Signal};
use crate::store::kv::pg::MAX_PAYLOAD;

/// The longest signal sent whole.
pub(super) const WHOLE: usize = MAX_PAYLOAD;
/// The text one part carries (its envelope's own words stay under 200).
const PART: usize = MAX_PAYLOAD - 200;
/// How long parts wait for the rest.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// `payload` as the envelopes of its parts, in order.
pub(super) fn split(from: &str, id: u64, payload: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let mut cut = rest.len().min(PART);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    let of = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
    pieces
        .into_iter()
        .zip(0..)
        .filter_map(|(data, n)| {
            serde_json::to_string(&Envelope {
                from: from.to_string(),
                signal: Signal::Part {
                    id,
                    n,
                    of,
                    data: data.to_string(),
                },
            })
            .ok()
        })
        .collect()
}

/// The parts of one long signal received so far, and since when.
type Pieces = (Instant, Vec<Option<String>>);

/// Parts received, by sender and id.
#[derive(Default)]
pub(super) struct Parts {
    waiting: Mutex<HashMap<(String, u64), Pieces>>,
}

impl Parts {
    /// Takes one part; the whole signal once every part is in.
    pub(super) fn take(
        &self,
        from: &str,
        id: u64,
        n: u32,
        of: u32,
        data: String,
    ) -> Option<Envelope> {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|_, (at, _)| at.elapsed() < FORGET_AFTER);
        let (of, n) = (of as usize, n as usize);
        if n >= of || of > 10_000 {
            return None;
        }
        let key = (from.to_string(), id);
        let entry = waiting
            .entry(key.clone())
            .or_insert_with(|| (Instant::now(), vec![None; of]));
        if entry.1.len() != of {
            return None;
        }
        entry.1[n] = Some(data);
        if entry.1.iter().any(Option::is_none) {
            return None;
        }
        let (_, pieces) = waiting.remove(&key)?;
        let whole: String = pieces.into_iter().flatten().collect();
        serde_json::from_str(&whole).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_signal_goes_in_parts_that_fit_and_comes_back_whole() {
        let signal = Signal::Reply {
            to: "b".into(),
            agent: "a".into(),
            msg: "é".repeat(20_000),
        };
        let payload = serde_json::to_string(&Envelope {
            from: "a1".into(),
            signal: signal.clone(),
        })
        .expect("json");
        let parts = split("a1", 7, &payload);
        assert!(parts.len() >= 5, "{} parts", parts.len());
        assert!(parts.iter().all(|part| part.len() <= MAX_PAYLOAD));
        let received = Parts::default();
        let mut whole = None;
        // Out of order, with a repeat.
        for part in parts.iter().rev().chain(parts.first()) {
            let Envelope {
                from,
                signal: Signal::Part { id, n, of, data },
            } = serde_json::from_str(part).expect("part")
            else {
                panic!("not a part: {part}");
            };
            if let Some(envelope) = received.take(&from, id, n, of, data) {
                whole = Some(envelope);
            }
        }
        let whole = whole.expect("put together");
        assert_eq!(whole.from, "a1");
        assert_eq!(whole.signal, signal);
    }
}
