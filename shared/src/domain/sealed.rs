//! A secret as stored: sealed by the adapter that holds the key, opaque to the domain and to
//! logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret in its stored form, as the sealer wrote it (`crypto::Sealer`: AES-256-GCM); only
/// the sealer opens it. Opaque to logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    /// Wraps a stored sealed value.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
    /// The stored form.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(..)")
    }
}
