//! The tar dialect duplicity reads and writes: pax ustar headers, raw-byte names, duplicity's entry names.
