//! The backup engine: duplicity's archive format, deltas, encryption, collections and the commands on them.
//! Knows nothing of Juju.

pub mod archive;
pub mod cache;
pub mod collection;
pub mod commands;
pub mod crypto;
pub mod delta;
pub mod error;
pub mod gnupg;
pub mod index;
pub mod keys;
pub mod lock;
pub mod meta;
pub mod prefixed;
pub mod repository;
pub mod selection;
pub mod stored;
pub mod target_tree;
pub mod timestr;
