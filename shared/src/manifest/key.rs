//! Object keys URL-encoded as S3 writes them (manifests, inventories, S3 events, the `s3Key` of
//! the Lambda invocation contract, copy sources and tagging headers): the one codec. Manifests
//! are decoded strictly (a bad escape fails the job with its line); what a user's function sends
//! back is decoded leniently, as `unquote_plus` would.

// ---------------------------------------------------------------------------------------------
// Key encoding
// ---------------------------------------------------------------------------------------------

/// Decodes a URL-encoded key as manifests and inventories carry them (form decoding: '+' is a
/// space, %XX a byte); the result must be UTF-8.
pub fn decode_key(s: &str) -> std::result::Result<String, String> {
    decode_key_bytes(s.as_bytes())
}

/// Decodes like [`decode_key`], but never fails: a `%` that starts no escape stays as it is and
/// bytes that are not UTF-8 become U+FFFD (Python's `unquote_plus`, what S3's examples use).
pub fn decode_key_lossy(s: &str) -> String {
    // Lossy decoding has no error; the fallback only keeps this total.
    decode(s.as_bytes(), Strictness::Lossy)
        .unwrap_or_else(|_| String::from_utf8_lossy(s.as_bytes()).into_owned())
}

pub(super) fn decode_key_bytes(raw: &[u8]) -> std::result::Result<String, String> {
    decode(raw, Strictness::Strict)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    Strict,
    Lossy,
}

fn decode(raw: &[u8], strictness: Strictness) -> std::result::Result<String, String> {
    let not_utf8 = || "the decoded key is not valid UTF-8".to_string();
    let finish = |bytes: Vec<u8>| match strictness {
        Strictness::Strict => String::from_utf8(bytes).map_err(|_| not_utf8()),
        Strictness::Lossy => Ok(String::from_utf8_lossy(&bytes).into_owned()),
    };
    let Some(first) = memchr::memchr2(b'%', b'+', raw) else {
        return finish(raw.to_vec());
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
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                // Lossy: a '%' that starts no escape stays as it is.
                _ if strictness == Strictness::Lossy => {
                    out.push(b'%');
                    i += 1;
                }
                _ => {
                    let escape = &raw[i..raw.len().min(i + 3)];
                    return Err(format!(
                        "invalid percent-escape {:?} at byte {i}",
                        String::from_utf8_lossy(escape)
                    ));
                }
            }
        }
        // Copy the plain run up to the next escape in one go.
        let next = memchr::memchr2(b'%', b'+', &raw[i..]).map_or(raw.len(), |n| i + n);
        out.extend_from_slice(&raw[i..next]);
        i = next;
    }
    finish(out)
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Everything but the unreserved characters and '/' is escaped: keys in manifests, `s3Key`, copy
/// sources. Both `unquote` and `unquote_plus` give the key back.
pub const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Everything but the unreserved characters is escaped: values in a URL query string (the
/// `x-amz-tagging` header).
pub const QUERY_ESCAPES: &percent_encoding::AsciiSet = &KEY_ESCAPES.add(b'/');

/// URL-encodes a key for a manifest: the inverse of [`decode_key`].
pub fn encode_key(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, KEY_ESCAPES).to_string()
}
