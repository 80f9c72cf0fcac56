//! A validated email address, compared case-insensitively, in one normal form: two spellings
//! that look the same (composed or decomposed accents, a Unicode domain or its `xn--` form)
//! are one address, and characters that render as nothing are refused.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An email address that passed validation. Keeps the original spelling for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

/// Why a string is not an email address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a valid email address")]
pub struct InvalidEmail(pub String);

impl Email {
    /// Parses and validates an address (trimmed, NFC).
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let invalid = || InvalidEmail(raw.to_string());
        if raw.chars().any(is_invisible) {
            return Err(invalid());
        }
        let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(raw.trim());
        let value: &str = &normalized;
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        // The quoted and special forms RFC 5321 allows (`"a b"@x`, `<`, `>`, `(`, `\`…) are
        // refused: no mailbox in practice uses them, and they are what markup injection needs.
        if local.is_empty()
            || local.len() > 64
            || local.contains(['@', '<', '>', '"', '(', ')', ',', ';', ':', '[', ']', '\\'])
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || l.contains(['(', ')', ',', ';', ':', '<', '>', '[', ']', '"', '\\'])
            })
        {
            return Err(invalid());
        }
        if ascii_domain(domain).is_none() {
            return Err(invalid());
        }
        Ok(Self(value.to_string()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used for uniqueness: one prospect per (organization, email), the local part
    /// lower-cased and the domain in its lower-case ASCII (IDNA) form.
    pub fn key(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((&self.0, ""));
        let domain = ascii_domain(domain).unwrap_or_else(|| domain.to_lowercase());
        format!("{}@{domain}", local.to_lowercase())
    }
}

/// Whom a stored booking is about, to the person index and the suppression list: any address
/// a booking can carry, valid or not (Calendly takes `taro..yamada@docomo.ne.jp`, a trailing
/// dot, a pasted zero-width space), in one normal form, so that the same string given to an
/// erasure or an export finds the same person. Invisible characters are dropped, the text is
/// trimmed (NFC) and a trailing dot removed; what is then a valid address is keyed as an
/// [`Email`] (`ada\u{200B}@example.com` and `Ada@example.com.` are Ada), anything else that holds
/// an `@` by its cleaned text, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonAddress {
    /// The cleaned text (what an export shows).
    text: String,
    /// The key hashes are made of.
    key: String,
    /// The address, when it is a valid one (prospects exist only for those).
    email: Option<Email>,
}

impl PersonAddress {
    /// The longest address kept as a person (SMTP's path limit).
    const MAX_BYTES: usize = 320;

    /// The person an address names; an error for what holds no `@` or is too long to be one.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let visible: String = raw.chars().filter(|c| !is_invisible(*c)).collect();
        let normalized = icu_normalizer::ComposingNormalizerBorrowed::new_nfc().normalize(visible.trim());
        let text = normalized.trim_end_matches('.').trim_end().to_string();
        if let Ok(email) = Email::parse(&text) {
            return Ok(Self { text, key: email.key(), email: Some(email) });
        }
        let (local, domain) = text.rsplit_once('@').ok_or_else(|| InvalidEmail(raw.to_string()))?;
        if local.is_empty() || domain.is_empty() || text.len() > Self::MAX_BYTES || text.chars().any(char::is_control) {
            return Err(InvalidEmail(raw.to_string()));
        }
        Ok(Self { key: text.to_lowercase(), text, email: None })
    }

    /// The key hashes are made of (a valid address's is its [`Email::key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The address, when valid.
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
}

/// The domain's ASCII form (`café.fr` → `xn--caf-dma.fr`), lower-cased; `None` if it has none.
fn ascii_domain(domain: &str) -> Option<String> {
    idna::domain_to_ascii(domain).ok().filter(|d| !d.is_empty()).map(|d| d.to_lowercase())
}

/// Characters that render as nothing or reorder text (soft hyphen, zero-width ones, bidi
/// controls, the BOM, variation selectors, tags...): an address with one looks like another.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F | 0x200B..=0x200F
            | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB
            | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF
    )
}

impl TryFrom<String> for Email {
    type Error = InvalidEmail;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_keys_them_lower_case() {
        let email = Email::parse(" John.Doe+crm@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "John.Doe+crm@Example.COM");
        assert_eq!(email.key(), "john.doe+crm@example.com");
    }

    #[test]
    fn look_alike_spellings_are_one_address() {
        // "é" composed (U+00E9) and decomposed (e + U+0301).
        let composed = Email::parse("ren\u{e9}@example.com").unwrap();
        let decomposed = Email::parse("rene\u{301}@example.com").unwrap();
        assert_eq!(composed.key(), decomposed.key());
        assert_eq!(composed.as_str(), decomposed.as_str(), "stored in one form");
        // A Unicode domain and its ASCII (punycode) form.
        let unicode = Email::parse("jean@caf\u{e9}.fr").unwrap();
        let ascii = Email::parse("Jean@XN--CAF-DMA.fr").unwrap();
        assert_eq!(unicode.key(), ascii.key());
        assert_eq!(unicode.key(), "jean@xn--caf-dma.fr");
    }

    #[test]
    fn any_address_a_booking_carries_is_a_person_found_again_by_the_same_string() {
        let person = |raw: &str| PersonAddress::parse(raw).unwrap();
        // Valid addresses are keyed as e-mails, whatever was pasted around them.
        let ada = person("Ada@Example.com");
        assert_eq!(ada.key(), Email::parse("ada@example.com").unwrap().key());
        assert!(ada.email().is_some());
        for spelling in [" ada@example.com ", "ada\u{200B}@example.com", "ada@example.com.", "\u{FEFF}ADA@EXAMPLE.COM"]
        {
            assert_eq!(person(spelling).key(), ada.key(), "{spelling:?}");
        }
        // Addresses Calendly takes and the e-mail parser refuses are people too.
        let taro = person("Taro..Yamada@docomo.ne.jp");
        assert_eq!(taro.key(), "taro..yamada@docomo.ne.jp");
        assert!(taro.email().is_none());
        assert_eq!(person("taro..yamada@docomo.ne.jp\u{200B}").key(), taro.key());
        assert_eq!(person(".dot.first.@example.com").key(), ".dot.first.@example.com");
        // Nothing that could not be an address.
        for raw in ["", "   ", "no-at-sign", "@example.com", "ada@", &format!("{}@example.com", "a".repeat(400))] {
            assert!(PersonAddress::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn invisible_characters_are_refused() {
        for bad in [
            "jo\u{200b}hn@example.com",
            "john\u{ad}@example.com",
            "\u{feff}john@example.com",
            "john@exam\u{202e}ple.com",
            "jo\u{2060}hn@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn local_parts_no_mailbox_uses_are_refused() {
        for bad in [
            "<script>@example.com",
            "a>b@example.com",
            "\"john\"@example.com",
            "a\\b@example.com",
            ".john@example.com",
            "jo..hn@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
        for good in ["o'brien@example.com", "first.last+tag@example.com", "a_b-c@example.com"] {
            assert!(Email::parse(good).is_ok(), "{good} should be accepted");
        }
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["", "john", "john@", "@example.com", "john@example", "jo hn@example.com", "a@b..com", "a@-b.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
