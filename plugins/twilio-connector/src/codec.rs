//! Small encodings the connector needs and the SDK does not expose: SHA-256 (Twilio's
//! `bodySHA256`), base64 (HTTP Basic auth), `application/x-www-form-urlencoded` bodies and
//! RFC 2822 dates (the `Timestamp` of voice callbacks).
//!
//! They live here rather than as dependencies so the crate depends on `seam-sdk` alone; if the
//! SDK grows `sha256`/`base64` helpers these can go.

/// SHA-256 round constants (FIPS 180-4, 4.2.2).
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const H0: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// The SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut message = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_be_bytes());

    let mut state = H0;
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lower-case hex of the SHA-256 of `data`, as Twilio's `bodySHA256` query parameter holds it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// Standard base64 (RFC 4648, with `=` padding) of `data`.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Encodes `pairs` as an `application/x-www-form-urlencoded` body (`A-Z a-z 0-9 * - . _`
/// kept, space as `+`, every other byte `%XX`), in the order given.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    fn encode(out: &mut String, text: &str) {
        for &byte in text.as_bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    out.push(char::from(byte))
                }
                b' ' => out.push('+'),
                other => out.push_str(&format!("%{other:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (n, (key, value)) in pairs.iter().enumerate() {
        if n > 0 {
            out.push('&');
        }
        encode(&mut out, key);
        out.push('=');
        encode(&mut out, value);
    }
    out
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses an RFC 2822 date such as `Mon, 16 Aug 2010 03:45:01 +0000` (the weekday and the
/// seconds are optional; zones `+hhmm`, `-hhmm`, `GMT`, `UT`, `UTC`, `Z`) into milliseconds
/// since the Unix epoch. Anything else is `None`.
pub fn parse_rfc2822(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let mut parts: Vec<&str> = text.split_whitespace().collect();
    if parts.first().is_some_and(|p| p.ends_with(',')) {
        parts.remove(0);
    }
    let [day, month, year, time, zone] = parts.as_slice() else { return None };
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as i64 + 1;
    let year: i64 = year.parse().ok().filter(|y| (1000..=9999).contains(y))?;
    let mut clock = time.split(':');
    let mut field = |max: i64| -> Option<i64> {
        match clock.next() {
            None => Some(0),
            Some(t) if t.len() == 2 => t.parse().ok().filter(|v| (0..=max).contains(v)),
            Some(_) => None,
        }
    };
    let (hour, minute, second) = (field(23)?, field(59)?, field(60)?);
    if clock.next().is_some() || !time.contains(':') {
        return None;
    }
    let offset_minutes = match zone.to_ascii_uppercase().as_str() {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        z if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let digits: i64 = z[1..].parse().ok()?;
            let minutes = (digits / 100) * 60 + digits % 100;
            if z.starts_with('-') { -minutes } else { minutes }
        }
        _ => return None,
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_fips_180_examples() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha256_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn form_encoding_escapes_everything_but_unreserved() {
        let pairs = vec![
            ("To".to_owned(), "whatsapp:+31612345678".to_owned()),
            ("Body".to_owned(), "Hi there & bye, ünï".to_owned()),
            ("x".to_owned(), "a*b-c.d_e~".to_owned()),
        ];
        let encoded = form_encode(&pairs);
        assert_eq!(
            encoded,
            "To=whatsapp%3A%2B31612345678&Body=Hi+there+%26+bye%2C+%C3%BCn%C3%AF&x=a*b-c.d_e%7E"
        );
        assert_eq!(seam_sdk::json::form_pairs(encoded.as_bytes()), pairs, "round trip");
    }

    #[test]
    fn rfc2822_dates() {
        assert_eq!(parse_rfc2822("Mon, 16 Aug 2010 03:45:01 +0000"), Some(1_281_930_301_000));
        assert_eq!(parse_rfc2822("16 Aug 2010 03:45:01 GMT"), Some(1_281_930_301_000));
        assert_eq!(parse_rfc2822("Mon, 16 Aug 2010 05:45:01 +0200"), Some(1_281_930_301_000));
        assert_eq!(parse_rfc2822("Sun, 15 Aug 2010 22:15:01 -0530"), Some(1_281_930_301_000));
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00 +0000"), Some(0));
        assert_eq!(parse_rfc2822("Tue, 29 Feb 2000 12:00:00 +0000"), Some(951_825_600_000));
        for bad in [
            "",
            "yesterday",
            "Mon, 16 Foo 2010 03:45:01 +0000",
            "16 Aug 2010 3:45:01 +0000",
            "16 Aug 2010 03:45:01 +00",
            "16 Aug 2010 03:45:01 +0000 extra",
            "32 Aug 2010 03:45:01 +0000",
            "2010-08-16T03:45:01Z",
        ] {
            assert_eq!(parse_rfc2822(bad), None, "{bad}");
        }
    }
}
