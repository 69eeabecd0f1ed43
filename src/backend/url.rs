//! Parsing of duplicity's network URLs (`scheme://[user[:password]@]host[:port]/path`) and the one place
//! that strips a password from a URL before it is shown to a person.

use super::UrlError;

/// A parsed network URL. `path` is what follows the `/` after the host, undecoded: duplicity strips
/// exactly one leading `/`, so `sftp://h/rel` is relative to the login dir and `sftp://h//abs` absolute.
#[derive(Clone, PartialEq, Eq)]
pub struct NetUrl {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
}

impl std::fmt::Debug for NetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl NetUrl {
    pub fn parse(url: &str) -> Result<NetUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::NotAUrl(redact(url)))?;
        let (netloc, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match netloc.rfind('@') {
            Some(i) => (Some(&netloc[..i]), &netloc[i + 1..]),
            None => (None, netloc),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(decode(u)), Some(decode(p))),
                None => (Some(decode(ui)), None),
            },
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                // Never quote `p`: with a password holding a `/`, it is part of the password.
                let port = p.parse::<u16>().map_err(|_| {
                    UrlError::Invalid(format!(
                        "{}: the port after the host is not a number; a user name or password containing '/', '@' or ':' must be %-encoded (/ as %2F, @ as %40, : as %3A)",
                        redact(url)
                    ))
                })?;
                (h, Some(port))
            }
            _ => (hostport, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::Invalid(format!(
                "{}: no host; use {scheme}://user@host[:port]/path",
                redact(url)
            )));
        }
        Ok(NetUrl {
            scheme: scheme.to_string(),
            user: user.filter(|u| !u.is_empty()),
            password,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The URL without its password.
    pub fn display(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{}://{user}{}{port}/{}", self.scheme, self.host, self.path)
    }
}

/// `%XX` decoding (user names and passwords may carry `@`, `:` or `/` that way, as in duplicity).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Any URL with the password of its user info removed (`u:pw@h` → `u@h`); other text is unchanged.
/// Where the user info ends is ambiguous when a password holds an unencoded `/` (`u:p/w@h/dir` cuts
/// the authority at `u:p`) or `@`: then everything up to the last `@` is taken as user info, so no part
/// of a password is ever shown (at worst a path with `@` after a `host:port` is shown shortened).
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let Some(last_at) = rest.rfind('@') else {
        return url.to_string();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let netloc = &rest[..end];
    if last_at > end && !netloc.contains([':', '@']) {
        // The only `@`s are in the path.
        return url.to_string();
    }
    match rest[..last_at].split_once(':') {
        Some((user, _pw)) => {
            let user = user.split('@').next().unwrap_or("");
            format!("{scheme}{user}@{}", &rest[last_at + 1..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicity_forms() {
        let u = NetUrl::parse("sftp://bob@127.0.0.1:2222/rel/dir").unwrap();
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", Some(2222)));
        assert_eq!(u.path, "rel/dir");
        let u = NetUrl::parse("sftp://bob:p%40ss@127.0.0.1//abs/dir").unwrap();
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.path, "/abs/dir");
        assert_eq!(u.display(), "sftp://bob@127.0.0.1//abs/dir");
        let u = NetUrl::parse("scp://127.0.0.1").unwrap();
        assert_eq!((u.user, u.port, u.path.as_str()), (None, None, ""));
        assert!(NetUrl::parse("sftp:///x").is_err());
        assert!(NetUrl::parse("sftp://h:notaport/x").is_err());
    }

    #[test]
    fn redact_removes_only_the_password() {
        assert_eq!(
            redact("ftp://u:secret@127.0.0.1:21/d/x"),
            "ftp://u@127.0.0.1:21/d/x"
        );
        assert_eq!(redact("sftp://u@h/d"), "sftp://u@h/d");
        assert_eq!(redact("file:///a:b@c"), "file:///a:b@c");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(redact("sftp://h/dir/a@b"), "sftp://h/dir/a@b");
    }

    #[test]
    fn no_part_of_a_password_is_in_a_parse_error_or_redacted_url() {
        for (url, secret) in [
            ("sftp://bob:Qx7/Zk9@127.0.0.1/dir", ["Qx7", "Zk9"]),
            ("ftp://bob:s3/cr@t@127.0.0.1:21/d", ["s3/", "cr@t"]),
            ("rsync://bob:x9/y8@127.0.0.1/d", ["x9", "y8"]),
            ("bob:zz/qq@127.0.0.1/d", ["zz", "qq"]),
        ] {
            let shown = redact(url);
            for part in secret {
                assert!(!shown.contains(part), "{url} shown as {shown}");
            }
            if url.contains("://") {
                let e = NetUrl::parse(url).unwrap_err().to_string();
                for part in secret {
                    assert!(!e.contains(part), "{url}: {e}");
                }
                assert!(e.contains("%2F"), "{e}");
            }
        }
        assert_eq!(
            redact("sftp://bob:Qx7/Zk9@127.0.0.1/dir"),
            "sftp://bob@127.0.0.1/dir"
        );
        assert_eq!(
            redact("rsync://u:p/w@h::/module/x"),
            "rsync://u@h::/module/x"
        );
    }
}
