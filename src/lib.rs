//! duplicity-charm: a duplicity-compatible backup engine, its command line, and the Juju charm around it,
//! in one binary.

// System calls go through rustix (and nix for the OFD lock), user lookups through uzers: no raw libc.
#![forbid(unsafe_code)]

pub mod backend;
pub mod charm;
pub mod cli;
pub mod cli_backend;
pub mod cli_changes;
pub mod cli_meta;
pub mod cli_more;
pub mod cli_ops;
pub mod cli_progress;
pub mod cli_selection;
pub mod engine;
pub mod juju;
pub mod logging;
