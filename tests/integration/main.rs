//! Integration tests: drive the built `duplicity-charm` binary and stock duplicity 0.8.22 against each other.
//! All helpers live in `support.rs` (the charm's fake Juju in `juju_support.rs`); each module is one area. Every test uses its own temp workspace.

mod juju_support;
mod support;

mod append_only;
mod backend_azure;
mod backend_conformance;
mod backend_ftp;
mod backend_rsync;
mod backend_s3;
mod backend_sftp;
mod backups;
mod chains;
mod charm;
mod charm_actions;
mod charm_cos;
mod charm_files;
mod charm_options;
mod charm_remote;
mod charm_scheduler;
mod charm_secrets;
mod charm_upgrade_python;
mod cli_compat;
mod cli_options;
mod concurrency;
mod corruption;
mod demo;
mod gnupg_home;
mod gpg_options;
mod harness;
mod hostile;
mod interop_remote;
mod interrupted;
mod listing;
mod mixed;
mod oldkeys;
mod pubkey;
mod restore;
mod retention;
mod safety;
mod secrets;
mod selection;
mod status;
mod typechange;
