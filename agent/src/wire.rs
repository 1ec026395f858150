//! The agent's side of the typed wire (`berth.v1`, protocol version 2):
//! its own outcome, status, stream and state types to the protobuf enums it
//! sends, and ([`legacy`]) protocol version 1's strings to those enums, for
//! the events an agent of that version left in its spool. Every mapping
//! between the agent's types and the wire is here.
//!
//! Each agent type converts `into()` its protobuf enum and into the `i32` a
//! prost message field holds; the agent never receives these enums, so no
//! conversion goes the other way.

use berth_proto::v1;

use crate::exec::Status;
use crate::runner::{StageOutcome, TaskOutcome};
use crate::stage::current::AppState;
use crate::stage::shell::Stream;

/// `From` the agent's enum to the protobuf enum and to its `i32`, variant
/// by variant (the match makes a new agent variant a compile error here).
macro_rules! to_wire {
    ($from:ident => $to:ident { $($variant:ident => $wire:ident),+ $(,)? }) => {
        impl From<$from> for v1::$to {
            fn from(value: $from) -> v1::$to {
                match value {
                    $($from::$variant => v1::$to::$wire,)+
                }
            }
        }

        impl From<$from> for i32 {
            fn from(value: $from) -> i32 {
                v1::$to::from(value).into()
            }
        }
    };
}

to_wire!(StageOutcome => StageOutcome {
    Succeeded => Succeeded,
    Failed => Failed,
    TimedOut => TimedOut,
    Canceled => Canceled,
});

to_wire!(TaskOutcome => TaskOutcome {
    Done => Done,
    Failed => Failed,
    TimedOut => TimedOut,
    Canceled => Canceled,
});

to_wire!(Status => ExecStatus {
    Ok => Ok,
    Failed => Failed,
    TimedOut => TimedOut,
    Error => Error,
});

to_wire!(Stream => OutputStream {
    Stdout => Stdout,
    Stderr => Stderr,
    System => System,
    Container => Container,
});

to_wire!(AppState => AppState {
    Running => Running,
    Deployed => Deployed,
    Missing => Missing,
    Stopped => Stopped,
    Unknown => Unknown,
});

/// Protocol version 1's strings (what its `StageFinished.outcome`,
/// `TaskFinished.outcome` and `LogLine.stream` held), read from the spool
/// an agent of that version left ([`crate::outbox`]).
pub mod legacy {
    use berth_proto::v1;

    /// `succeeded`, `failed`, `timed_out` or `canceled`; anything else
    /// (which version 1 never wrote) counts as failed, as a version 1
    /// controller counted it.
    pub fn stage_outcome(text: &str) -> v1::StageOutcome {
        match text {
            "succeeded" => v1::StageOutcome::Succeeded,
            "timed_out" => v1::StageOutcome::TimedOut,
            "canceled" => v1::StageOutcome::Canceled,
            _ => v1::StageOutcome::Failed,
        }
    }

    /// `done`, `failed`, `timed_out` or `canceled`; anything else counts
    /// as failed, as a version 1 controller counted it.
    pub fn task_outcome(text: &str) -> v1::TaskOutcome {
        match text {
            "done" => v1::TaskOutcome::Done,
            "timed_out" => v1::TaskOutcome::TimedOut,
            "canceled" => v1::TaskOutcome::Canceled,
            _ => v1::TaskOutcome::Failed,
        }
    }

    /// `stdout`, `stderr`, `system` or `container`; anything else (which
    /// version 1 never wrote) is kept as stdout, so the line is not lost.
    pub fn stream(text: &str) -> v1::OutputStream {
        match text {
            "stderr" => v1::OutputStream::Stderr,
            "system" => v1::OutputStream::System,
            "container" => v1::OutputStream::Container,
            _ => v1::OutputStream::Stdout,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fmt::Debug;
    use std::hash::Hash;

    use super::*;

    /// Every protobuf value but `UNSPECIFIED` (0), up to the first number
    /// that is not one.
    fn wire_values<T: TryFrom<i32>>() -> Vec<T> {
        (1..).map_while(|number| T::try_from(number).ok()).collect()
    }

    /// `ours` maps one to one onto the protobuf values but `UNSPECIFIED`,
    /// and `back` (the inverse, written out by hand below) undoes it both
    /// ways; the `i32` is the protobuf enum's.
    fn one_to_one<A, W>(ours: &[A], back: impl Fn(W) -> Option<A>)
    where
        A: Copy + Debug + PartialEq + Into<W> + Into<i32>,
        W: Copy + Debug + Eq + Hash + TryFrom<i32> + Into<i32>,
    {
        let wire: Vec<W> = wire_values();
        let mut seen = HashSet::new();
        for value in ours {
            let sent: W = (*value).into();
            let number: i32 = (*value).into();
            assert_eq!(number, sent.into(), "{value:?}");
            assert_ne!(number, 0, "{value:?} must not be sent as UNSPECIFIED");
            assert!(seen.insert(sent), "{value:?}: {sent:?} twice");
            assert_eq!(back(sent), Some(*value), "{value:?} -> {sent:?} -> back");
        }
        assert_eq!(seen.len(), wire.len(), "every wire value is sent: {wire:?}");
        for sent in wire {
            let ours = back(sent).unwrap_or_else(|| panic!("{sent:?} has no agent value"));
            let again: W = ours.into();
            assert_eq!(again, sent, "{sent:?} -> {ours:?} -> wire");
        }
        let unspecified = W::try_from(0).ok().expect("UNSPECIFIED is 0");
        assert_eq!(back(unspecified), None);
    }

    #[test]
    fn stage_outcomes_map_one_to_one() {
        use StageOutcome as O;
        one_to_one(
            &[O::Succeeded, O::Failed, O::TimedOut, O::Canceled],
            |wire| match wire {
                v1::StageOutcome::Unspecified => None,
                v1::StageOutcome::Succeeded => Some(O::Succeeded),
                v1::StageOutcome::Failed => Some(O::Failed),
                v1::StageOutcome::TimedOut => Some(O::TimedOut),
                v1::StageOutcome::Canceled => Some(O::Canceled),
            },
        );
    }

    #[test]
    fn task_outcomes_map_one_to_one() {
        use TaskOutcome as O;
        one_to_one(
            &[O::Done, O::Failed, O::TimedOut, O::Canceled],
            |wire| match wire {
                v1::TaskOutcome::Unspecified => None,
                v1::TaskOutcome::Done => Some(O::Done),
                v1::TaskOutcome::Failed => Some(O::Failed),
                v1::TaskOutcome::TimedOut => Some(O::TimedOut),
                v1::TaskOutcome::Canceled => Some(O::Canceled),
            },
        );
    }

    #[test]
    fn the_task_ends_as_its_failed_stage_did() {
        use crate::runner::Ending;
        for (ending, stage, task) in [
            (
                Ending::Failed,
                v1::StageOutcome::Failed,
                v1::TaskOutcome::Failed,
            ),
            (
                Ending::TimedOut,
                v1::StageOutcome::TimedOut,
                v1::TaskOutcome::TimedOut,
            ),
            (
                Ending::Canceled,
                v1::StageOutcome::Canceled,
                v1::TaskOutcome::Canceled,
            ),
        ] {
            assert_eq!(v1::StageOutcome::from(StageOutcome::from(ending)), stage);
            assert_eq!(v1::TaskOutcome::from(TaskOutcome::from(ending)), task);
        }
    }

    #[test]
    fn exec_statuses_map_one_to_one() {
        one_to_one(
            &[Status::Ok, Status::Failed, Status::TimedOut, Status::Error],
            |wire| match wire {
                v1::ExecStatus::Unspecified => None,
                v1::ExecStatus::Ok => Some(Status::Ok),
                v1::ExecStatus::Failed => Some(Status::Failed),
                v1::ExecStatus::TimedOut => Some(Status::TimedOut),
                v1::ExecStatus::Error => Some(Status::Error),
            },
        );
    }

    #[test]
    fn streams_map_one_to_one() {
        use Stream as S;
        one_to_one(
            &[S::Stdout, S::Stderr, S::System, S::Container],
            |wire| match wire {
                v1::OutputStream::Unspecified => None,
                v1::OutputStream::Stdout => Some(S::Stdout),
                v1::OutputStream::Stderr => Some(S::Stderr),
                v1::OutputStream::System => Some(S::System),
                v1::OutputStream::Container => Some(S::Container),
            },
        );
    }

    #[test]
    fn app_states_map_one_to_one() {
        use AppState as A;
        one_to_one(
            &[A::Running, A::Deployed, A::Missing, A::Stopped, A::Unknown],
            |wire| match wire {
                v1::AppState::Unspecified => None,
                v1::AppState::Running => Some(A::Running),
                v1::AppState::Deployed => Some(A::Deployed),
                v1::AppState::Missing => Some(A::Missing),
                v1::AppState::Stopped => Some(A::Stopped),
                v1::AppState::Unknown => Some(A::Unknown),
            },
        );
    }

    #[test]
    fn version_1_strings_map_to_the_enums() {
        for (text, outcome) in [
            ("succeeded", v1::StageOutcome::Succeeded),
            ("failed", v1::StageOutcome::Failed),
            ("timed_out", v1::StageOutcome::TimedOut),
            ("canceled", v1::StageOutcome::Canceled),
            ("", v1::StageOutcome::Failed),
            ("exploded", v1::StageOutcome::Failed),
        ] {
            assert_eq!(legacy::stage_outcome(text), outcome, "{text:?}");
        }
        for (text, outcome) in [
            ("done", v1::TaskOutcome::Done),
            ("failed", v1::TaskOutcome::Failed),
            ("timed_out", v1::TaskOutcome::TimedOut),
            ("canceled", v1::TaskOutcome::Canceled),
            ("", v1::TaskOutcome::Failed),
            ("succeeded", v1::TaskOutcome::Failed),
        ] {
            assert_eq!(legacy::task_outcome(text), outcome, "{text:?}");
        }
        for (text, stream) in [
            ("stdout", v1::OutputStream::Stdout),
            ("stderr", v1::OutputStream::Stderr),
            ("system", v1::OutputStream::System),
            ("container", v1::OutputStream::Container),
            ("", v1::OutputStream::Stdout),
            ("stdin", v1::OutputStream::Stdout),
        ] {
            assert_eq!(legacy::stream(text), stream, "{text:?}");
        }
    }
}
