//! Sealing of tokens at rest (AES-256-GCM), PKCE, and random values.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::fmt;

/// Fills `buf` from the operating system's secure random source.
pub fn fill_random(buf: &mut [u8]) {
    // The OS random source failing means the machine cannot do cryptography at all.
    getrandom::fill(buf).expect("the operating system's random source is unavailable");
}

/// A URL-safe random string carrying `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE pair (RFC 7636, S256).
pub struct Pkce {
    /// The secret kept (sealed) until the code is exchanged.
    pub verifier: String,
    /// What the authorize URL carries: `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier (64 characters) and its S256 challenge.
    pub fn generate() -> Self {
        let verifier = random_token(48);
        let challenge = pkce_challenge(&verifier);
        Self { verifier, challenge }
    }
}

/// `BASE64URL(SHA256(verifier))` without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub use crate::domain::Sealed;

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The key is not 32 bytes in hexadecimal.
    #[error("ENCRYPTION_KEY must be 64 hexadecimal characters (32 bytes)")]
    InvalidKey,
    /// Not a `v1:` seal, or not base64, or too short.
    #[error("sealed value has an unknown format or version")]
    Malformed,
    /// Another key or context sealed it, or it was altered.
    #[error("sealed value does not open with this key and context")]
    Tampered,
}

const VERSION: &str = "v1:";
const NONCE_LEN: usize = 12;

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A 256-bit secret key, parsed once (at start-up) from its 64 hexadecimal characters.
/// Opaque to logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// The key written as 64 hexadecimal characters (surrounding blanks ignored).
    pub fn from_hex(hex_key: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| SealError::InvalidKey)?;
        bytes.try_into().map(Self).map_err(|_| SealError::InvalidKey)
    }
    /// The key's bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Seals and opens secrets bound to a context (organization, integration, purpose), so a
/// sealed token copied into another tenant's item does not open.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// The key being rolled away from: still opens, never seals.
    previous: Option<Aes256Gcm>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer from a 64-hex-character key.
    pub fn from_hex_key(hex_key: &str) -> Result<Self, SealError> {
        Ok(Self::new(&SecretKey::from_hex(hex_key)?))
    }

    /// A sealer under `key`.
    pub fn new(key: &SecretKey) -> Self {
        Self { cipher: Aes256Gcm::new(key.bytes().into()), previous: None }
    }

    /// During a key roll: seals with this sealer's key, and still opens what `previous_hex_key`
    /// sealed. Tokens are re-sealed with the new key at their next refresh (within 2 hours).
    pub fn with_previous_key(self, previous_hex_key: &str) -> Result<Self, SealError> {
        Ok(self.with_previous(&SecretKey::from_hex(previous_hex_key)?))
    }

    /// `with_previous_key`, with the key parsed.
    pub fn with_previous(self, previous: &SecretKey) -> Self {
        Self { previous: Some(Self::new(previous).cipher), ..self }
    }

    /// Seals `plaintext` for `context`, with a fresh 96-bit nonce.
    pub fn seal(&self, plaintext: &str, context: &str) -> Sealed {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        fill_random(&mut nonce_bytes);
        let nonce = Nonce::from(nonce_bytes);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        Sealed::from_stored(format!("{VERSION}{}", STANDARD.encode(out)))
    }

    /// Opens a value sealed for the same `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<String, SealError> {
        self.open_noting_key(sealed, context).map(|(plaintext, _)| plaintext)
    }

    /// Opens a value sealed for the same `context`, and says which key opened it: `Current`, or
    /// `Previous` (the value should be sealed again before the previous key goes).
    pub fn open_noting_key(&self, sealed: &Sealed, context: &str) -> Result<(String, OpenedWith), SealError> {
        let body = sealed.as_stored().strip_prefix(VERSION).ok_or(SealError::Malformed)?;
        let raw = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce_bytes, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce_array: [u8; NONCE_LEN] = nonce_bytes.try_into().map_err(|_| SealError::Malformed)?;
        let nonce = Nonce::from(nonce_array);
        let payload = || Payload { msg: ciphertext, aad: context.as_bytes() };
        let (plaintext, opened_with) = match self.cipher.decrypt(&nonce, payload()) {
            Ok(plaintext) => (plaintext, OpenedWith::Current),
            Err(_) => {
                let previous = self.previous.as_ref().ok_or(SealError::Tampered)?;
                (previous.decrypt(&nonce, payload()).map_err(|_| SealError::Tampered)?, OpenedWith::Previous)
            }
        };
        Ok((String::from_utf8(plaintext).map_err(|_| SealError::Tampered)?, opened_with))
    }
}

/// Which of a sealer's keys opened a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedWith {
    /// The key it seals with.
    Current,
    /// The key being rolled away from.
    Previous,
}

/// The keyed hash a person is known by in the suppression list and the person index: HMAC-SHA256
/// of their normalized e-mail, under the deployment's person-hash key (`app::people`: kept in
/// the table, sealed, so that no key roll changes a person's hash), and under a legacy key
/// while one is configured. Without the key the hashes can't be tested against a list of e-mails.
#[derive(Clone)]
pub struct PersonHasher {
    current: hmac::Hmac<Sha256>,
    previous: Option<hmac::Hmac<Sha256>>,
}

impl fmt::Debug for PersonHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonHasher(..)")
    }
}

/// A person-hash key: 32 bytes.
pub type PersonHashKey = [u8; 32];

impl PersonHasher {
    /// The person-hash key derived from a configured key (`PRIVACY_KEY`, else the token key):
    /// one purpose per key. Before the table held its own person-hash key, hashes were made
    /// under this; a deployment's first one is this derivation, so those hashes still match.
    pub fn derived_key(configured: &[u8]) -> PersonHashKey {
        use hmac::{KeyInit, Mac};
        let mut derive =
            <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(configured).expect("an HMAC takes keys of any length");
        derive.update(b"velvena person hash v1");
        derive.finalize().into_bytes().into()
    }

    /// A hasher under `key`, also matching `legacy` (a key hashes may have been made under).
    pub fn with_keys(key: &PersonHashKey, legacy: Option<&PersonHashKey>) -> Self {
        use hmac::KeyInit;
        let keyed = |k: &PersonHashKey| {
            <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(k).expect("an HMAC takes keys of any length")
        };
        Self { current: keyed(key), previous: legacy.filter(|l| *l != key).map(keyed) }
    }

    /// A hasher keyed by a key derived from `key`; `previous` likewise.
    pub fn new(key: &[u8], previous: Option<&[u8]>) -> Result<Self, SealError> {
        Ok(Self::with_keys(&Self::derived_key(key), previous.map(Self::derived_key).as_ref()))
    }

    /// The hashes of the person with this normalized e-mail (`Email::key`).
    pub fn person(&self, email_key: &str) -> crate::domain::PersonKeys {
        use hmac::Mac;
        let hash = |mac: &hmac::Hmac<Sha256>| {
            let mut mac = mac.clone();
            mac.update(email_key.as_bytes());
            hex::encode(&mac.finalize().into_bytes()[..20])
        };
        crate::domain::PersonKeys { current: hash(&self.current), previous: self.previous.as_ref().map(hash) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn sealed_token_opens_only_in_its_own_context() {
        let sealer = Sealer::from_hex_key(KEY).unwrap();
        let sealed = sealer.seal("secret-access-token", "org-a|int-1|access");
        assert!(!sealed.as_stored().contains("secret"));
        assert_eq!(sealer.open(&sealed, "org-a|int-1|access").unwrap(), "secret-access-token");
        assert_eq!(sealer.open(&sealed, "org-b|int-1|access"), Err(SealError::Tampered));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let sealer = Sealer::from_hex_key(KEY).unwrap();
        assert_ne!(sealer.seal("x", "c"), sealer.seal("x", "c"));
    }

    #[test]
    fn another_key_or_a_flipped_byte_does_not_open() {
        let sealer = Sealer::from_hex_key(KEY).unwrap();
        let other = Sealer::from_hex_key(&"ab".repeat(32)).unwrap();
        let sealed = sealer.seal("token", "ctx");
        assert_eq!(other.open(&sealed, "ctx"), Err(SealError::Tampered));
        let mut raw = STANDARD.decode(&sealed.as_stored()[3..]).unwrap();
        raw[20] ^= 1;
        let flipped = Sealed::from_stored(format!("v1:{}", STANDARD.encode(raw)));
        assert_eq!(sealer.open(&flipped, "ctx"), Err(SealError::Tampered));
        assert_eq!(sealer.open(&Sealed::from_stored("v0:xx".into()), "ctx"), Err(SealError::Malformed));
    }

    #[test]
    fn during_a_key_roll_old_seals_open_and_new_seals_use_the_new_key() {
        let old = Sealer::from_hex_key(KEY).unwrap();
        let sealed_before = old.seal("token", "ctx");
        let rolling = Sealer::from_hex_key(&"cd".repeat(32)).unwrap().with_previous_key(KEY).unwrap();
        assert_eq!(rolling.open(&sealed_before, "ctx").unwrap(), "token");
        let sealed_after = rolling.seal("token", "ctx");
        assert_eq!(old.open(&sealed_after, "ctx"), Err(SealError::Tampered), "new seals use the new key");
        assert_eq!(rolling.open(&sealed_before, "other-ctx"), Err(SealError::Tampered));
    }

    #[test]
    fn keys_that_are_not_64_hex_characters_are_refused() {
        assert_eq!(Sealer::from_hex_key("abc").unwrap_err(), SealError::InvalidKey);
        assert_eq!(Sealer::from_hex_key(&"zz".repeat(32)).unwrap_err(), SealError::InvalidKey);
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pair = Pkce::generate();
        assert_eq!(pair.verifier.len(), 64);
        assert_eq!(pair.challenge, pkce_challenge(&pair.verifier));
    }
}

/// Authenticates the list cursors this API hands out: a cursor is the store's position and a
/// MAC over it, the organization and the list, so a tampered, forged or borrowed cursor is
/// refused before any store call (and never reaches DynamoDB as an `ExclusiveStartKey`).
#[derive(Clone)]
pub struct CursorSigner {
    key: hmac::Hmac<Sha256>,
}

impl fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

/// The MAC's length in a cursor: 128 bits, as much as forging one needs to guess.
const CURSOR_MAC_BYTES: usize = 16;

impl CursorSigner {
    /// A signer whose key is derived from the 64-hex-character sealing key (its own key, not
    /// the sealing key itself: one purpose per key).
    pub fn from_hex_key(hex_key: &str) -> Result<Self, SealError> {
        Ok(Self::new(&SecretKey::from_hex(hex_key)?))
    }

    /// A signer whose key is derived from `sealing_key`.
    pub fn new(sealing_key: &SecretKey) -> Self {
        use hmac::{KeyInit, Mac};
        let mut derive = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(sealing_key.bytes())
            .expect("an HMAC takes keys of any length");
        derive.update(b"velvena list cursors v1");
        let key = derive.finalize().into_bytes();
        Self { key: <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("an HMAC takes keys of any length") }
    }

    fn mac(&self, scope: &str, position: &str) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        let mut mac = self.key.clone();
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(position.as_bytes());
        mac
    }

    /// The cursor handed out for `position` (the store's own cursor) in `scope` (the list and
    /// the organization).
    pub fn sign(&self, scope: &str, position: &str) -> String {
        use hmac::Mac;
        let tag = self.mac(scope, position).finalize().into_bytes();
        format!("{position}.{}", URL_SAFE_NO_PAD.encode(&tag[..CURSOR_MAC_BYTES]))
    }

    /// The store's position in a cursor this signer handed out for `scope`; `None` for anything else.
    pub fn open<'a>(&self, scope: &str, cursor: &'a str) -> Option<&'a str> {
        use hmac::Mac;
        let (position, tag) = cursor.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok().filter(|t| t.len() == CURSOR_MAC_BYTES)?;
        // Constant-time comparison of the truncated tag.
        self.mac(scope, position).verify_truncated_left(&tag).ok()?;
        Some(position)
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn a_cursor_opens_only_unchanged_in_its_own_scope() {
        let signer = CursorSigner::from_hex_key(&"ab".repeat(32)).unwrap();
        let cursor = signer.sign("prospects:org-a", "eyJwayI6Ik9SRyJ9");
        assert_eq!(signer.open("prospects:org-a", &cursor), Some("eyJwayI6Ik9SRyJ9"));
        assert_eq!(signer.open("prospects:org-b", &cursor), None, "another organization's");
        assert_eq!(signer.open("bookings:org-a", &cursor), None, "another list's");
        let tampered = cursor.replacen("eyJw", "eyJx", 1);
        assert_eq!(signer.open("prospects:org-a", &tampered), None);
        assert_eq!(signer.open("prospects:org-a", "eyJwayI6Ik9SRyJ9"), None, "unsigned");
        let other = CursorSigner::from_hex_key(&"cd".repeat(32)).unwrap();
        assert_eq!(other.open("prospects:org-a", &cursor), None, "another key's");
    }

    #[test]
    fn a_person_hash_is_keyed_stable_and_holds_no_email() {
        let hasher = PersonHasher::new(&[7; 32], None).unwrap();
        let person = hasher.person("ada@example.com");
        assert_eq!(person, hasher.person("ada@example.com"));
        assert_ne!(person.current, hasher.person("bob@example.com").current);
        assert_eq!(person.current.len(), 40);
        assert!(!person.current.contains("ada"));
        let rolled = PersonHasher::new(&[8; 32], Some(&[7; 32])).unwrap().person("ada@example.com");
        assert_ne!(rolled.current, person.current, "another key, another hash");
        assert_eq!(rolled.previous.as_deref(), Some(person.current.as_str()), "the previous key still matches");
    }
}
