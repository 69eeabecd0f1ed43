//! How a volume, sigtar or manifest is stored: plain, gzip or OpenPGP, with the SHA1 of the stored bytes.
