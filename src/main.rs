//! The `duplicity-charm` binary: picks the face (the duplicity-compatible CLI for now) and sets the exit code.

fn main() {
    std::process::exit(duplicity_charm::cli::main());
}
