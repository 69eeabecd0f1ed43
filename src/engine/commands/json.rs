//! Tiny hand-written JSON helpers for the commands' `--json` output (no JSON crate among the
//! dependencies; the shapes are small and flat).

use std::fmt::Write as _;

use crate::engine::timestr::format_timestamp;

/// A JSON string literal (the text must already be UTF-8; raw paths go through `lossy` first).
pub fn jstr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A raw path as a JSON string: UTF-8 as is, other bytes as U+FFFD (callers add the hex form when
/// the path is not UTF-8).
pub fn jpath(bytes: &[u8]) -> String {
    jstr(&String::from_utf8_lossy(bytes))
}

/// A time as `{"epoch": …, "utc": "YYYYMMDDTHHMMSSZ"}`, as collection-status writes it.
pub fn jtime(t: i64) -> String {
    format!("{{\"epoch\":{t},\"utc\":\"{}\"}}", format_timestamp(t))
}

pub fn jarr(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(jstr("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(jpath(b"a\xffb"), "\"a\u{fffd}b\"");
        assert_eq!(
            jarr(["1".to_string(), "2".to_string()].into_iter()),
            "[1,2]"
        );
    }
}
