//! The engine's commands, called by the CLI and (later) the charm: backup, restore, collection status.

pub mod backup;
pub mod restore;
pub mod status;
