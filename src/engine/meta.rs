//! File metadata: reading it from the source tree, in duplicity's order, and putting it back on restore.
