//! Identifiers. Each is parsed once at the edge and carried typed inside.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id that comes from a trusted source (our own store or a verified token).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// A fresh random id.
            pub fn generate() -> Self {
                Self(random_id())
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Parses an id from outside (a token, a URL): 1 to 128 characters, no control
            /// characters, and no `#`, the separator of the table's keys (`acme#x` would
            /// otherwise read `acme`'s items).
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                check_id(value).map(|()| Self(value.to_string()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The tenant: every item the product stores belongs to one organization.
    OrganizationId
);
string_id!(
    /// A Velvena user (the JWT `sub`).
    UserId
);
string_id!(
    /// One Calendly connection of an organization.
    IntegrationId
);
string_id!(
    /// A CRM prospect.
    ProspectId
);
string_id!(
    /// A notification shown in the CRM.
    NotificationId
);

/// Why an id from outside was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidId(&'static str);

fn check_id(value: &str) -> Result<(), InvalidId> {
    if value.is_empty() || value.len() > 128 {
        return Err(InvalidId("an id has 1 to 128 characters"));
    }
    if value.chars().any(|c| c == '#' || c.is_control()) {
        return Err(InvalidId("an id may not contain '#' or control characters"));
    }
    Ok(())
}

/// Fills `buf` from the operating system's secure random source (ids must not be guessable).
fn fill_random(buf: &mut [u8]) {
    // The OS random source failing means the machine cannot make an unguessable id at all.
    getrandom::fill(buf).expect("the operating system's random source is unavailable");
}

/// A random UUID-v4-shaped identifier.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// An id that sorts by creation time, for newest-first lists: microseconds, strictly
/// increasing within the process for ids made within a second of each other (two made in the
/// same microsecond still sort in the order they were made; a clock a second or more behind the
/// last id, such as another local stack's in the same process, keeps its own time), then
/// randomness (across processes).
/// Ids of 13-digit milliseconds made before sort right among these: their first 13 digits
/// are the same milliseconds.
pub fn time_ordered_id(now: chrono::DateTime<chrono::Utc>) -> String {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let micros = now.timestamp_micros().max(0);
    let mut last = LAST.load(Ordering::SeqCst);
    let stamp = loop {
        let next = if micros <= last && last - micros < 1_000_000 { last + 1 } else { micros };
        match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    let mut bytes = [0u8; 6];
    fill_random(&mut bytes);
    format!("{stamp:016}-{}", hex::encode(bytes))
}

/// The upper bound of the ids `time_ordered_id` made before `at` (a range's end; moves no
/// counter).
pub fn time_ordered_bound(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("{:016}", at.timestamp_micros().max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_made_at_one_instant_sort_in_the_order_they_were_made() {
        let now = chrono::Utc::now();
        let ids: Vec<String> = (0..100).map(|_| time_ordered_id(now)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let earlier = format!("{:013}-abcdef", (now - chrono::Duration::milliseconds(1)).timestamp_millis());
        let later = format!("{:013}-abcdef", (now + chrono::Duration::seconds(5)).timestamp_millis());
        assert!(earlier < ids[0] && ids[99] < later, "older ids of milliseconds sort among them");
        assert!(time_ordered_bound(now - chrono::Duration::seconds(1)) < ids[0]);
    }
}
