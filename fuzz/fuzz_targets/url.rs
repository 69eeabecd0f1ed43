//! Target URLs of every scheme: `backend::open` (without credentials, so nothing connects), the
//! network URL and S3/Azure parsers, `%` decoding and password redaction.
#![no_main]

use duplicity_charm::backend::{self, azure, s3, url, OpenOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let opts = OpenOptions::new();
    // file:// opens nothing until used; s3 and azure stop at the missing credentials; sftp, ftp and
    // rsync connect lazily.
    let _ = backend::open(s, &opts).map(|b| b.describe());
    if let Ok(u) = url::NetUrl::parse(s) {
        let _ = u.display();
    }
    let _ = url::decode(s);
    let _ = url::redact(s);
    let _ = azure::container_from_url(s);
    let _ = s3::S3Location::parse(s, &opts);
    let with_endpoint = OpenOptions {
        s3_endpoint_url: Some("http://127.0.0.1:9000/".into()),
        s3_unencrypted_connection: true,
        ..OpenOptions::new()
    };
    let _ = s3::S3Location::parse(s, &with_endpoint);
});
