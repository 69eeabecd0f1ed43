//! The `duplicity-charm` binary: picks the face (the charm when Juju's dispatch runs it, with
//! `JUJU_DISPATCH_PATH` set; otherwise the duplicity-compatible CLI) and sets the exit code.

#![forbid(unsafe_code)]

fn main() {
    let code = if std::env::var_os("JUJU_DISPATCH_PATH").is_some_and(|p| !p.is_empty()) {
        duplicity_charm::charm::main()
    } else {
        duplicity_charm::cli::main()
    };
    std::process::exit(code);
}
