//! The `duplicity-charm` binary: picks the face and sets the exit code. The charm when Juju's dispatch
//! runs it (`JUJU_DISPATCH_PATH` set); the charm's scheduler service (`scheduler`) and NRPE check
//! (`check-nrpe`); otherwise the duplicity-compatible command line.

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = if std::env::var_os("JUJU_DISPATCH_PATH").is_some_and(|p| !p.is_empty()) {
        duplicity_charm::charm::main()
    } else {
        match args.get(1).and_then(|a| a.to_str()) {
            Some("scheduler") => duplicity_charm::charm::scheduler::main(args),
            Some("check-nrpe") => duplicity_charm::charm::nrpe::main(args),
            _ => duplicity_charm::cli::main(),
        }
    };
    std::process::exit(code);
}
