//! The key people are hashed under (the suppression list and the person index), kept so that no
//! key roll changes a person's hash.
//!
//! Hashing under a configured key made every roll of that key a new hash for everyone: once the
//! previous key was removed, a person erased before the roll was a stranger (their next booking
//! was recorded again) and a person booked before it could no longer be found to be erased. The
//! hash key is data instead: one per deployment, stored in the table sealed with the configured
//! key (`PRIVACY_KEY`, else the token key `ENCRYPTION_KEY`), and sealed again under the new key
//! by the first process that opens it with a key being rolled away from. A roll re-seals one
//! item; no hash changes. A deployment's first hash key is the one hashes were made under
//! before (derived from the configured key), so they keep matching.
//!
//! A hash key that none of the configured keys opens is an error, never a reason to make a new
//! one: a new key would silently lift every suppression.

use crate::crypto::{OpenedWith, PersonHashKey, PersonHasher, Sealed, Sealer};
use crate::domain::PersonKeys;
use crate::store::{PersonHashKeyStore, StoreError};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What the hash key is sealed for (a sealed token copied here does not open).
const SEAL_CONTEXT: &str = "velvena:person-hash-key:v1";

/// Hashes people under the deployment's person-hash key, read (and, mid-roll, re-sealed) once
/// per process.
pub struct People {
    store: Arc<dyn PersonHashKeyStore>,
    /// The sealer that seals the key, first; then the others that may have sealed it before
    /// (the token key's, when `PRIVACY_KEY` was set after the key was stored).
    sealers: Vec<Sealer>,
    /// The key stored when the table holds none yet.
    first_key: PersonHashKey,
    /// A key hashes may have been made under before the table held its own (the configured
    /// previous key's derivation, while it is configured): still matched, never written.
    legacy: Option<PersonHashKey>,
    hasher: OnceCell<PersonHasher>,
}

impl std::fmt::Debug for People {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("People(..)")
    }
}

impl People {
    /// People hashed under the key `store` holds, sealed by `sealers[0]` (the others only
    /// open); `first_key` is stored when there is none; `legacy` is matched too.
    pub fn new(
        store: Arc<dyn PersonHashKeyStore>,
        sealers: Vec<Sealer>,
        first_key: PersonHashKey,
        legacy: Option<PersonHashKey>,
    ) -> Self {
        assert!(!sealers.is_empty(), "the person-hash key needs a sealer");
        Self { store, sealers, first_key, legacy, hasher: OnceCell::new() }
    }

    /// The hashes of the person with this normalized e-mail (`Email::key`).
    pub async fn person(&self, email_key: &str) -> Result<PersonKeys, StoreError> {
        Ok(self.hasher().await?.person(email_key))
    }

    /// Reads the key now (and re-seals it if a previous key opened it) rather than at the first
    /// person hashed: every sync job calls it, so a roll re-seals the key within one scheduled
    /// interval whether or not anyone booked.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.hasher().await.map(|_| ())
    }

    async fn hasher(&self) -> Result<&PersonHasher, StoreError> {
        self.hasher.get_or_try_init(|| self.load()).await
    }

    async fn load(&self) -> Result<PersonHasher, StoreError> {
        // A first key stored by someone else meanwhile is read back on the next round.
        for _ in 0..3 {
            match self.store.person_hash_key().await? {
                None => {
                    if self.store.swap_person_hash_key(None, &self.seal(&self.first_key)).await? {
                        tracing::info!("person-hash key stored");
                        return Ok(self.hasher_of(&self.first_key));
                    }
                }
                Some(stored) => {
                    let (key, sealed_by_current) = self.open(&stored)?;
                    if !sealed_by_current {
                        // Lost to another process re-sealing it: theirs opens with the same key.
                        let resealed = self.store.swap_person_hash_key(Some(&stored), &self.seal(&key)).await?;
                        tracing::info!(
                            resealed,
                            "person-hash key opened with a previous key; sealed with the current one"
                        );
                    }
                    return Ok(self.hasher_of(&key));
                }
            }
        }
        Err(StoreError::Conflict("the person-hash key kept changing while it was read".into()))
    }

    fn hasher_of(&self, key: &PersonHashKey) -> PersonHasher {
        PersonHasher::with_keys(key, self.legacy.as_ref())
    }

    fn seal(&self, key: &PersonHashKey) -> Sealed {
        self.sealers[0].seal(&hex::encode(key), SEAL_CONTEXT)
    }

    /// The key, and whether the current sealing key sealed it (else it is sealed again).
    fn open(&self, sealed: &Sealed) -> Result<(PersonHashKey, bool), StoreError> {
        for (i, sealer) in self.sealers.iter().enumerate() {
            if let Ok((hex_key, opened_with)) = sealer.open_noting_key(sealed, SEAL_CONTEXT) {
                let key = hex::decode(&hex_key)
                    .ok()
                    .and_then(|bytes| PersonHashKey::try_from(bytes).ok())
                    .ok_or_else(|| StoreError::Corrupt("the person-hash key is not 32 bytes".into()))?;
                return Ok((key, i == 0 && opened_with == OpenedWith::Current));
            }
        }
        Err(StoreError::Misconfigured(
            "the person-hash key opens with none of the configured keys (PRIVACY_KEY, ENCRYPTION_KEY and their \
             _PREVIOUS): a previous key was removed before the key was sealed again; put it back as the previous key"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn sealer(byte: u8, previous: Option<u8>) -> Sealer {
        let sealer = Sealer::from_hex_key(&hex::encode([byte; 32])).unwrap();
        match previous {
            Some(p) => sealer.with_previous_key(&hex::encode([p; 32])).unwrap(),
            None => sealer,
        }
    }

    fn people(store: &Arc<MemoryStore>, sealers: Vec<Sealer>, configured: u8) -> People {
        People::new(store.clone(), sealers, PersonHasher::derived_key(&[configured; 32]), None)
    }

    #[tokio::test]
    async fn a_key_roll_reseals_the_hash_key_and_changes_no_hash() {
        let store = Arc::new(MemoryStore::new());
        let before = people(&store, vec![sealer(1, None)], 1).person("ada@example.com").await.unwrap();
        // The hash is the one made before the table held a key (derived from the configured key).
        assert_eq!(before, PersonHasher::new(&[1; 32], None).unwrap().person("ada@example.com"));
        let stored = store.person_hash_key().await.unwrap().unwrap();

        // Rolled: the new key seals, the old one is the previous; the first process re-seals.
        let rolling = people(&store, vec![sealer(2, Some(1))], 2);
        assert_eq!(rolling.person("ada@example.com").await.unwrap().current, before.current);
        let resealed = store.person_hash_key().await.unwrap().unwrap();
        assert_ne!(resealed, stored, "sealed again under the new key");

        // The previous key removed: the same hash.
        let rolled = people(&store, vec![sealer(2, None)], 2);
        assert_eq!(rolled.person("ada@example.com").await.unwrap().current, before.current);
    }

    #[tokio::test]
    async fn a_key_no_configured_key_opens_is_an_error_not_a_new_key() {
        let store = Arc::new(MemoryStore::new());
        people(&store, vec![sealer(1, None)], 1).ready().await.unwrap();
        // The previous key removed before anything re-sealed the hash key.
        let error = people(&store, vec![sealer(2, None)], 2).ready().await.unwrap_err();
        assert!(matches!(error, StoreError::Misconfigured(_)), "{error}");
        assert!(error.to_string().contains("_PREVIOUS"), "{error}");
        // Put back as the previous key, it opens and is re-sealed.
        people(&store, vec![sealer(2, Some(1))], 2).ready().await.unwrap();
        people(&store, vec![sealer(2, None)], 2).ready().await.unwrap();
    }

    #[tokio::test]
    async fn a_privacy_key_set_later_takes_over_the_sealing() {
        let store = Arc::new(MemoryStore::new());
        let token_key = sealer(1, None);
        let before = people(&store, vec![token_key.clone()], 1).person("ada@example.com").await.unwrap();
        // PRIVACY_KEY set: it seals; the token key still opens what it sealed.
        let with_privacy_key = people(&store, vec![sealer(9, None), token_key], 9);
        assert_eq!(with_privacy_key.person("ada@example.com").await.unwrap().current, before.current);
        let only_privacy_key = people(&store, vec![sealer(9, None)], 9);
        assert_eq!(only_privacy_key.person("ada@example.com").await.unwrap().current, before.current);
    }
}
