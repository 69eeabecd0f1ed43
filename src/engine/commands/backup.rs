//! Full and incremental backups: walk the source, diff against the last signatures, write volumes, sigtar and manifest.
