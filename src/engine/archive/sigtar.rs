//! Signature tars (full-signatures / new-signatures): per-file librsync signatures and metadata.
