//! difftar volumes: snapshot/diff/deleted entries, 64 KiB multivol chunks, and cutting the stream into volumes.
