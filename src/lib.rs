//! duplicity-charm: a duplicity-compatible backup engine, its command line, and the Juju charm around it,
//! in one binary.

pub mod backend;
pub mod charm;
pub mod cli;
pub mod cli_selection;
pub mod engine;
pub mod juju;
