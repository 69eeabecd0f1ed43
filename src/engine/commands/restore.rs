//! Restore a backup chain at a time into a target directory, refusing anything that would land outside it.
