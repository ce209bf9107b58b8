//! Identity normalization and the rules that decide whether two identities may be joined.
//!
//! Every identity is written `kind:value`. Normalization makes the same person produce the
//! same key whatever the channel wrote: phones become E.164 (`+79161234567`) through the
//! `phonenumber` crate (libphonenumber's metadata), emails are trimmed and lower-cased,
//! other kinds (channel ids such as `telegram:12345`) are kept as given, trimmed.

use crate::config::IdentityRules;
use phonenumber::Mode;
use std::collections::HashSet;

/// Kinds that hold a phone number and are normalized to E.164.
const PHONE_KINDS: &[&str] = &["phone", "sms", "tel"];

/// A normalized identity, `kind:value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub String);

impl Key {
    /// The kind part.
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The region id for an ISO 3166 alpha-2 code, if libphonenumber knows it.
pub fn region(code: &str) -> Option<phonenumber::country::Id> {
    code.to_ascii_uppercase().parse().ok()
}

/// Normalizes identities by the configured rules.
#[derive(Debug, Clone)]
pub struct Normalizer {
    region: Option<phonenumber::country::Id>,
}

impl Normalizer {
    /// A normalizer using `rules.default_region` for phones without a country code.
    pub fn new(rules: &IdentityRules) -> Self {
        Normalizer { region: rules.default_region.as_deref().and_then(region) }
    }

    /// `kind:value` normalized, or why it is not a valid identity.
    pub fn normalize(&self, kind: &str, value: &str) -> Result<Key, String> {
        let kind = kind.trim().to_ascii_lowercase();
        let value = value.trim();
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("identity kind `{kind}` must be ASCII letters, digits, `-` or `_`"));
        }
        if value.is_empty() {
            return Err(format!("identity `{kind}` has an empty value"));
        }
        if value.len() > 256 {
            return Err(format!("identity `{kind}` value is longer than 256 bytes"));
        }
        if PHONE_KINDS.contains(&kind.as_str()) {
            return self.phone(value).map(|e164| Key(format!("phone:{e164}")));
        }
        if kind == "email" {
            let email = value.to_lowercase();
            let valid = email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }) && !email.contains(char::is_whitespace);
            if !valid {
                return Err(format!("`{value}` is not an email address"));
            }
            return Ok(Key(format!("email:{email}")));
        }
        Ok(Key(format!("{kind}:{value}")))
    }

    /// Parses a `kind:value` string (API input) and normalizes it.
    pub fn parse(&self, text: &str) -> Result<Key, String> {
        let (kind, value) =
            text.split_once(':').ok_or_else(|| format!("identity `{text}` must be written `kind:value`"))?;
        self.normalize(kind, value)
    }

    /// A phone number in E.164. Digits without `+` are tried as international first (as
    /// WhatsApp's `wa_id` is written), then in the default region.
    fn phone(&self, raw: &str) -> Result<String, String> {
        let invalid = || format!("`{raw}` is not a valid phone number");
        let digits_only = raw.bytes().all(|b| b.is_ascii_digit());
        if digits_only
            && raw.len() >= 8
            && let Ok(number) = phonenumber::parse(None, format!("+{raw}"))
            && phonenumber::is_valid(&number)
        {
            return Ok(number.format().mode(Mode::E164).to_string());
        }
        let number = phonenumber::parse(self.region, raw).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        Ok(number.format().mode(Mode::E164).to_string())
    }
}

/// The merge rules, prepared for lookups.
#[derive(Debug, Clone)]
pub struct Rules {
    auto: HashSet<String>,
    priority: Vec<String>,
    blocked: HashSet<String>,
    limits: std::collections::BTreeMap<String, usize>,
}

impl Rules {
    /// Prepares `rules`, normalizing the blocked values with `normalizer` (an invalid
    /// blocked value is kept as written, so it still blocks exactly that text).
    pub fn new(rules: &IdentityRules, normalizer: &Normalizer) -> Self {
        let blocked = rules
            .blocked
            .iter()
            .map(|b| normalizer.parse(b).map(|k| k.0).unwrap_or_else(|_| b.clone()))
            .collect();
        Rules {
            auto: rules.auto_merge.iter().map(|k| k.to_ascii_lowercase()).collect(),
            priority: rules.priority.iter().map(|k| k.to_ascii_lowercase()).collect(),
            blocked,
            limits: rules.limits.clone(),
        }
    }

    /// Whether hints about `key` may link or merge customers automatically.
    pub fn auto_links(&self, key: &Key) -> bool {
        self.auto.contains(key.kind())
    }

    /// Whether `key` is blocked from linking.
    pub fn blocked(&self, key: &Key) -> bool {
        self.blocked.contains(&key.0)
    }

    /// Most identities of `kind` per customer.
    pub fn limit(&self, kind: &str) -> Option<usize> {
        self.limits.get(kind).copied()
    }

    /// Rank of a kind in the priority list (lower is stronger; unlisted kinds rank last).
    pub fn rank(&self, kind: &str) -> usize {
        self.priority.iter().position(|k| k == kind).unwrap_or(self.priority.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer(region: Option<&str>) -> Normalizer {
        Normalizer::new(&IdentityRules {
            default_region: region.map(str::to_owned),
            ..IdentityRules::default()
        })
    }

    #[test]
    fn phones_become_e164() {
        let n = normalizer(Some("RU"));
        for raw in ["+7 916 123-45-67", "79161234567", "8 (916) 123-45-67", "+79161234567"] {
            assert_eq!(n.normalize("phone", raw).unwrap().0, "phone:+79161234567", "{raw}");
        }
        assert_eq!(n.normalize("sms", "+44 20 7946 0958").unwrap().0, "phone:+442079460958");
        assert!(n.normalize("phone", "911").is_err());
        assert!(n.normalize("phone", "not a number").is_err());
    }

    #[test]
    fn without_region_national_numbers_are_refused() {
        let n = normalizer(None);
        assert!(n.normalize("phone", "(916) 123-45-67").is_err());
        assert_eq!(n.normalize("phone", "4915112345678").unwrap().0, "phone:+4915112345678");
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        let n = normalizer(None);
        assert_eq!(n.normalize("Email", " Anna@Example.COM ").unwrap().0, "email:anna@example.com");
        assert!(n.normalize("email", "anna").is_err());
        assert!(n.normalize("email", "anna@localhost").is_err());
    }

    #[test]
    fn channel_ids_are_kept() {
        let n = normalizer(None);
        assert_eq!(n.parse("telegram:12345").unwrap().0, "telegram:12345");
        assert!(n.parse("telegram").is_err());
        assert!(n.parse("bad kind:1").is_err());
    }

    #[test]
    fn rules_normalize_blocked_values() {
        let n = normalizer(Some("RU"));
        let rules =
            IdentityRules { blocked: vec!["phone:8 495 000-00-00".into()], ..IdentityRules::default() };
        let rules = Rules::new(&rules, &n);
        assert!(rules.blocked(&n.parse("phone:+74950000000").unwrap()));
        assert!(!rules.blocked(&n.parse("phone:+79161234567").unwrap()));
    }
}
