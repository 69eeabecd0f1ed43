//! The local archive dir (duplicity's cache of manifests and signatures), kept in step with the remote.
