//! The duplicity-compatible command line: parses duplicity's argument order and options into engine commands.

pub fn main() -> i32 {
    0
}
