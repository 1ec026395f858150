//! Process exit codes shared by every berth command (SPEC §6).

/// The operation succeeded.
pub const OK: i32 = 0;
/// The operation ran and failed (a deployment ended in a failed state).
pub const FAILED: i32 = 1;
/// Bad usage or invalid input.
pub const USAGE: i32 = 2;
/// Not authenticated or not allowed.
pub const AUTH: i32 = 3;
/// The named thing does not exist.
pub const NOT_FOUND: i32 = 4;
/// Conflict with the current state (for example a deploy already running).
pub const CONFLICT: i32 = 5;
/// Not a failure: the change was accepted but waits for an approval in a
/// protected environment (`berth approve ID`); nothing ran yet.
pub const PENDING_APPROVAL: i32 = 6;
