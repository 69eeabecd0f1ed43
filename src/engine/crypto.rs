//! OpenPGP encryption and decryption of volumes and metadata (sequoia), in the packets gpg and duplicity use.
