//! Remote file names of duplicity's sets (full, inc, manifests, signatures) and their time stamps.
