//! Building blocks of the commands' `--json` output (one JSON object per run, built with serde_json).

use serde_json::{json, Value};

use crate::engine::timestr::format_timestamp;

/// A time as `{"epoch": …, "utc": "YYYYMMDDTHHMMSSZ"}`, as collection-status writes it.
pub fn time(t: i64) -> Value {
    json!({"epoch": t, "utc": format_timestamp(t)})
}

/// [`time`], or `null`.
pub fn opt_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, time)
}

/// A raw path as a JSON string: UTF-8 as is, other bytes as U+FFFD (callers add the hex form when
/// the path is not UTF-8).
pub fn path(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// The object as one line of output.
pub fn line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            time(1_700_000_000).to_string(),
            r#"{"epoch":1700000000,"utc":"20231114T221320Z"}"#
        );
        assert_eq!(opt_time(None), Value::Null);
        assert_eq!(path(b"a\xffb"), json!("a\u{fffd}b"));
        assert_eq!(line(&json!({"a": "x\"\n"})), "{\"a\":\"x\\\"\\n\"}\n");
    }
}
