//! duplicity manifests: volume bounds and hashes, the file list, and duplicity's path quoting.
