//! The engine's commands, called by the CLI and the charm: backup, restore, verify, listing, collection
//! status, and retention (remove-*, cleanup).

pub mod backup;
pub mod json;
pub mod jsonstat;
pub mod list;
pub mod replicate;
pub mod restore;
pub mod retention;
pub mod status;
pub mod verify;
