//! The `.xz` container the `cos_agent` library's dashboards travel in (`LZMABase64`: Python's
//! `lzma.compress` defaults, then base64). Consumers decode with `lzma.decompress`, which reads any
//! valid `.xz` stream, so we write a valid one whose LZMA2 data is stored in uncompressed chunks: no
//! LZMA encoder is in the tree, a dashboard is a few KiB, and the relation data has no size concern
//! at that scale. The container follows the XZ file format 1.0.4 (stream header, one block with an
//! LZMA2 filter and a CRC32 check, index, stream footer).

/// XZ's variable-length integer.
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

fn crc32(b: &[u8]) -> [u8; 4] {
    crc32fast::hash(b).to_le_bytes()
}

/// LZMA2 stores at most 64 KiB per uncompressed chunk.
const CHUNK: usize = 1 << 16;

/// `data` as an `.xz` stream (see the module's doc).
pub fn encode(data: &[u8]) -> Vec<u8> {
    // Check type 1 = CRC32.
    let flags = [0u8, 1];
    let mut out = vec![0xFD, b'7', b'z', b'X', b'Z', 0];
    out.extend_from_slice(&flags);
    out.extend_from_slice(&crc32(&flags));

    // Block header: size byte, flags (one filter, no sizes), LZMA2 (id 0x21) with a 1-byte property
    // (dictionary size 4 KiB: stored chunks need none), padding, CRC32.
    let mut header = vec![0u8, 0x00, 0x21, 0x01, 0x00];
    pad4(&mut header);
    header[0] = ((header.len() + 4) / 4 - 1) as u8;
    let header_crc = crc32(&header);
    header.extend_from_slice(&header_crc);

    let mut lzma2 = Vec::with_capacity(data.len() + data.len() / CHUNK * 3 + 4);
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        // 0x01: stored chunk with a dictionary reset (the first); 0x02: stored, no reset.
        lzma2.push(if i == 0 { 0x01 } else { 0x02 });
        lzma2.extend_from_slice(&((chunk.len() - 1) as u16).to_be_bytes());
        lzma2.extend_from_slice(chunk);
    }
    lzma2.push(0x00);

    let unpadded = (header.len() + lzma2.len() + 4) as u64;
    out.extend_from_slice(&header);
    out.extend_from_slice(&lzma2);
    pad4(&mut out);
    out.extend_from_slice(&crc32(data));

    let mut index = vec![0u8];
    varint(1, &mut index);
    varint(unpadded, &mut index);
    varint(data.len() as u64, &mut index);
    pad4(&mut index);
    let index_crc = crc32(&index);
    index.extend_from_slice(&index_crc);
    out.extend_from_slice(&index);

    let mut footer_body = ((index.len() / 4 - 1) as u32).to_le_bytes().to_vec();
    footer_body.extend_from_slice(&flags);
    out.extend_from_slice(&crc32(&footer_body));
    out.extend_from_slice(&footer_body);
    out.extend_from_slice(b"YZ");
    out
}
