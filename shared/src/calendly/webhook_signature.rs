//! Calendly's webhook signature: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`, where v1 is
//! HMAC-SHA256 keyed by the signing key over `t + "." + raw body`.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Deliveries signed longer ago than this are refused. Not Calendly's 3-minute example:
/// Calendly retries a refused delivery for 24 hours and whether a retry is signed afresh is
/// undocumented (the captured delivery's `t` is the event's own time), so a 3-minute window
/// would refuse every retry after a first failure. 24 h of retries plus an hour of margin; a
/// replay inside it is harmless (processing is idempotent, `canceled` is terminal, no-shows are
/// ordered by their own times), and a forged body still fails the HMAC.
pub const MAX_AGE: Duration = Duration::hours(25);
/// Clock skew tolerated for timestamps in the future.
pub const MAX_FUTURE: Duration = Duration::minutes(1);
/// `v1` entries tried at the most (Calendly sends one; a key roll may add another).
pub const MAX_SIGNATURES: usize = 3;

/// Why a delivery's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Calendly-Webhook-Signature` header.
    #[error("missing Calendly-Webhook-Signature header")]
    Missing,
    /// Not `t=…,v1=…` (or too many `v1` entries).
    #[error("malformed Calendly-Webhook-Signature header")]
    Malformed,
    /// `t` is outside the tolerance (a replay, or a skewed clock).
    #[error("the signature's timestamp is too old or in the future")]
    Stale,
    /// No `v1` matches the HMAC of the body under our key.
    #[error("the signature does not match")]
    Mismatch,
}

/// The `v1` signature of `body` at `timestamp` (what Calendly sends; used by the simulator).
pub fn sign(key: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(key, timestamp, body).finalize().into_bytes())
}

/// The full header value for `body` signed at `timestamp`.
pub fn signature_header(key: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(key, timestamp, body))
}

fn mac(key: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies the header against any of `keys`, in constant time, within the time window.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => {
                // Each entry costs an HMAC of the whole body: a header can't buy more than a few.
                if signatures.len() == MAX_SIGNATURES {
                    return Err(SignatureError::Malformed);
                }
                signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let signed_at = DateTime::<Utc>::from_timestamp(timestamp, 0).ok_or(SignatureError::Malformed)?;
    if signed_at < now - MAX_AGE || signed_at > now + MAX_FUTURE {
        return Err(SignatureError::Stale);
    }
    let matches =
        keys.iter().any(|key| signatures.iter().any(|sig| mac(key, timestamp, body).verify_slice(sig).is_ok()));
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_signature_from_the_key_is_accepted() {
        let now = Utc::now();
        let header = signature_header("key", now.timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&header), b"{}", &["other", "key"], now), Ok(()));
    }

    #[test]
    fn forged_stale_future_and_malformed_signatures_are_refused() {
        let now = Utc::now();
        let forged = signature_header("wrong", now.timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&forged), b"{}", &["key"], now), Err(SignatureError::Mismatch));
        let tampered = signature_header("key", now.timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&tampered), b"{ }", &["key"], now), Err(SignatureError::Mismatch));
        let stale = signature_header("key", (now - Duration::hours(26)).timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&stale), b"{}", &["key"], now), Err(SignatureError::Stale));
        let future = signature_header("key", (now + Duration::minutes(2)).timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&future), b"{}", &["key"], now), Err(SignatureError::Stale));
        assert_eq!(verify_signature(None, b"{}", &["key"], now), Err(SignatureError::Missing));
        assert_eq!(verify_signature(Some("t=1,v1=zz"), b"{}", &["key"], now), Err(SignatureError::Malformed));
        assert_eq!(verify_signature(Some("v1=abcd"), b"{}", &["key"], now), Err(SignatureError::Malformed));
        let good = sign("key", now.timestamp(), b"{}");
        let many = format!("t={},{}", now.timestamp(), vec![format!("v1={good}"); 4].join(","));
        assert_eq!(verify_signature(Some(&many), b"{}", &["key"], now), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_retry_keeping_its_first_signature_is_accepted_for_a_day() {
        let now = Utc::now();
        let first_attempt = signature_header("key", (now - Duration::hours(23)).timestamp(), b"{}");
        assert_eq!(verify_signature(Some(&first_attempt), b"{}", &["key"], now), Ok(()));
    }

    #[test]
    fn matches_calendlys_documented_scheme() {
        // t + "." + body, HMAC-SHA256, lowercase hex. The vector comes from another
        // implementation (Python's `hmac.new(b"secret", b'1492774577.{"a":1}', sha256)`).
        let sig = sign("secret", 1492774577, b"{\"a\":1}");
        assert_eq!(sig, "ff8d5f25d7eee08192b9853d29d5e538b200ea9882f0a5f1be60b41cefdc5d79");
        assert_eq!(signature_header("secret", 1492774577, b"{\"a\":1}"), format!("t=1492774577,v1={sig}"));
    }
}
