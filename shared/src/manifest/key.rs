//! Object keys in manifests: URL-encoded as S3 writes them, decoded strictly.

// ---------------------------------------------------------------------------------------------
// Key encoding
// ---------------------------------------------------------------------------------------------

/// Decodes a URL-encoded key as manifests and inventories carry them (form decoding: '+' is a
/// space, %XX a byte); the result must be UTF-8.
pub fn decode_key(s: &str) -> std::result::Result<String, String> {
    decode_key_bytes(s.as_bytes())
}

pub(super) fn decode_key_bytes(raw: &[u8]) -> std::result::Result<String, String> {
    let not_utf8 = || "the decoded key is not valid UTF-8".to_string();
    let Some(first) = memchr::memchr2(b'%', b'+', raw) else {
        return std::str::from_utf8(raw)
            .map(str::to_string)
            .map_err(|_| not_utf8());
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while i < raw.len() {
        if raw[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            let hi = raw.get(i + 1).copied().and_then(hex_value);
            let lo = raw.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                let escape = &raw[i..raw.len().min(i + 3)];
                return Err(format!(
                    "invalid percent-escape {:?} at byte {i}",
                    String::from_utf8_lossy(escape)
                ));
            };
            out.push(hi << 4 | lo);
            i += 3;
        }
        // Copy the plain run up to the next escape in one go.
        let next = memchr::memchr2(b'%', b'+', &raw[i..]).map_or(raw.len(), |n| i + n);
        out.extend_from_slice(&raw[i..next]);
        i = next;
    }
    String::from_utf8(out).map_err(|_| not_utf8())
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Everything but the unreserved characters and '/' is escaped.
pub(super) const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// URL-encodes a key for a manifest: the inverse of [`decode_key`].
pub fn encode_key(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, KEY_ESCAPES).to_string()
}
