//! duplicity's on-disk formats: remote file names, manifests, the tar dialect, difftar volumes and sigtars.

pub mod container;
pub mod deflate;
pub mod difftar;
pub mod manifest;
pub mod names;
pub mod sigtar;
pub mod tarfmt;
