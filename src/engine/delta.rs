//! librsync signatures, deltas and patches, as duplicity stores them.
