//! Webhook signature checks, all in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// Whether `given` equals `expected`, compared in constant time (for shared secret tokens
/// such as Telegram's `X-Telegram-Bot-Api-Secret-Token`). Both are hashed first, so the
/// time taken does not reveal the secret's length either.
pub fn token_matches(given: &str, expected: &str) -> bool {
    use sha2::Digest;
    let a = sha2::Sha256::digest(given.as_bytes());
    let b = sha2::Sha256::digest(expected.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// HMAC-SHA256 of `message` with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // new_from_slice accepts keys of any length for HMAC.
    let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `message` with `key`.
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<sha1::Sha1>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `signature_hex` (case-insensitive hex, optionally prefixed `sha256=`) is the
/// HMAC-SHA256 of `message` with `key` (Meta's `X-Hub-Signature-256`, Viber, many others).
pub fn verify_hmac_sha256_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let trimmed = signature_hex.trim();
    let hex_part = match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256=") => &trimmed[7..],
        _ => trimmed,
    };
    let Ok(given) = hex::decode(hex_part) else { return false };
    let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(&given).is_ok()
}

/// Whether `signature_b64` is the base64 HMAC-SHA1 of `message` with `key` (Twilio's
/// `X-Twilio-Signature`).
pub fn verify_hmac_sha1_base64(key: &[u8], message: &[u8], signature_b64: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    let mut mac = <Hmac<sha1::Sha1>>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2.
    const KEY: &[u8] = b"Jefe";
    const MSG: &[u8] = b"what do ya want for nothing?";
    const SHA256: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(hex::encode(hmac_sha256(KEY, MSG)), SHA256);
        assert!(verify_hmac_sha256_hex(KEY, MSG, SHA256));
        assert!(verify_hmac_sha256_hex(KEY, MSG, &format!("sha256={}", SHA256.to_uppercase())));
        assert!(verify_hmac_sha256_hex(KEY, MSG, &format!(" SHA256={SHA256} ")));
    }

    #[test]
    fn tampered_signatures_fail() {
        let mut bad = SHA256.to_owned();
        bad.replace_range(0..1, "6");
        assert!(!verify_hmac_sha256_hex(KEY, MSG, &bad));
        assert!(!verify_hmac_sha256_hex(KEY, b"other", SHA256));
        assert!(!verify_hmac_sha256_hex(KEY, MSG, "not hex"));
    }

    #[test]
    fn sha1_base64_round_trip() {
        let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha1(KEY, MSG));
        // RFC 2202 test case 2.
        assert_eq!(hex::encode(hmac_sha1(KEY, MSG)), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        assert!(verify_hmac_sha1_base64(KEY, MSG, &sig));
        assert!(!verify_hmac_sha1_base64(KEY, b"x", &sig));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abc", "abd"));
        assert!(!token_matches("ab", "abc"));
    }
}
