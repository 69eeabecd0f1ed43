//! duplicity-charm: a duplicity-compatible backup engine, its command line, and (later) the Juju charm
//! around it, in one binary.

pub mod backend;
pub mod cli;
pub mod engine;
