//! The async SDKs (S3, Azure) run on a small tokio runtime owned by their backend; the engine itself is
//! synchronous and calls them through `block_on`.

/// A single-threaded runtime with I/O and timers: one backend call at a time, as the engine makes them.
pub fn new_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_a_future() {
        let rt = super::new_runtime().unwrap();
        assert_eq!(rt.block_on(async { 41 + 1 }), 42);
    }
}
