//! collection-status: what chains and sets a target holds, in duplicity's words.
