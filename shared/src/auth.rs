//! The CRM's bearer tokens: HS256 JWTs naming the user and their organization.

use crate::clock::{Clock, SystemClock};
use crate::domain::{OrganizationId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The claims every CRM token carries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's organization: every request acts within it only.
    pub organization_id: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Issue time (Unix seconds): with `exp`, the token's lifetime, capped by the verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before (seconds since the epoch), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Who is calling, from a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub user_id: UserId,
    /// The token's organization.
    pub organization_id: OrganizationId,
    /// When the token stops being valid (a WebSocket opened with it is dropped then).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The longest lifetime (`exp − iat`, or `exp − now` without `iat`) a CRM token may claim by
/// default: a working day and its night. A stolen token is worth at most this long; the CRM's
/// login issues shorter ones and refreshes them.
pub const DEFAULT_MAX_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// The clock skew tolerated between the CRM's login and this API (on `exp`, `nbf` and `iat`).
const LEEWAY_SECONDS: i64 = 30;

/// Why a token was refused. The messages are the product's own words: they reach the caller in
/// 401 bodies, so no library's text (which names its internals) is shown; the library's error
/// is kept as the cause, for the logs.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (or `token` query parameter on WebSocket connects).
    #[error("missing bearer token")]
    Missing,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// `nbf` (or `iat`) lies in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Its lifetime is longer than the verifier allows.
    #[error("the token's lifetime is longer than {max_hours} hours")]
    TooLong {
        /// The allowed maximum, in hours.
        max_hours: i64,
    },
    /// Another issuer or audience than this API expects.
    #[error("the token was not issued for this API")]
    WrongIssuerOrAudience,
    /// Bad signature, another algorithm, a missing claim or not a JWT at all.
    #[error("the token is not a valid CRM token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// `organization_id` is empty.
    #[error("token names no organization")]
    NoOrganization,
    /// `organization_id` can't be a key (a `#`, control characters, too long).
    #[error("the token's organization id is not valid: {0}")]
    InvalidOrganization(#[from] crate::domain::ids::InvalidId),
}

/// HS256 and nothing else, as jsonwebtoken's crypto provider: CRM tokens use no other
/// algorithm, and the crate's `rust_crypto` backend would link RSA, ECDSA and EdDSA (0.4 MB
/// of the `api` binary, paged in by every cold start) only to refuse them.
pub mod hs256 {
    use hmac::{Hmac, KeyInit, Mac};
    use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
    use jsonwebtoken::errors::{ErrorKind, Result};
    use jsonwebtoken::signature::{self, Signer, Verifier};
    use jsonwebtoken::{Algorithm, AlgorithmFamily};

    type HmacSha256 = Hmac<sha2::Sha256>;

    /// One key's HMAC-SHA256, signing and verifying.
    struct Hs256(HmacSha256);

    impl Signer<Vec<u8>> for Hs256 {
        fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
            let mut mac = self.0.clone();
            mac.update(message);
            Ok(mac.finalize().into_bytes().to_vec())
        }
    }

    impl JwtSigner for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    impl Verifier<Vec<u8>> for Hs256 {
        fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
            let mut mac = self.0.clone();
            mac.update(message);
            // Constant-time comparison.
            mac.verify_slice(tag).map_err(|_| signature::Error::new())
        }
    }

    impl JwtVerifier for Hs256 {
        fn algorithm(&self) -> Algorithm {
            Algorithm::HS256
        }
    }

    /// The HMAC of `secret`, if `algorithm` is HS256 and the key an HMAC secret.
    fn hs256(algorithm: &Algorithm, family: AlgorithmFamily, secret: Result<&[u8]>) -> Result<Hs256> {
        if *algorithm != Algorithm::HS256 || family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        HmacSha256::new_from_slice(secret?).map(Hs256).map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: |algorithm, key| Ok(Box::new(hs256(algorithm, key.family(), Ok(key.as_bytes()))?)),
        verifier_factory: |algorithm, key| Ok(Box::new(hs256(algorithm, key.family(), key.try_get_as_bytes())?)),
        key_utils: KeyUtils::new_unimplemented(),
    };

    /// Makes HS256 jsonwebtoken's provider for the process (idempotent; call before encoding
    /// or decoding: `JwtVerifier` does).
    pub fn install() {
        // Already installed (by an earlier call): the same provider.
        let _ = PROVIDER.install_default();
    }
}

/// Verifies and issues tokens with one shared secret.
#[derive(Clone)]
pub struct JwtVerifier {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    max_lifetime: chrono::Duration,
    /// Times `exp`, `nbf` and `iat` are checked against (and `iat` of issued tokens).
    clock: Arc<dyn Clock>,
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Self::WrongIssuerOrAudience,
            _ => Self::Invalid(e),
        }
    }
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtVerifier(..)")
    }
}

impl JwtVerifier {
    /// A verifier for `secret`.
    pub fn new(secret: &str) -> Self {
        Self::with_claims(secret, None, None)
    }

    /// A verifier for `secret` that also requires `iss` and `aud` when they are given.
    pub fn with_claims(secret: &str, issuer: Option<&str>, audience: Option<&str>) -> Self {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        required.extend(issuer.map(|_| "iss"));
        required.extend(audience.map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        // `exp` and `nbf` are checked against the verifier's clock (`check_times`), not the
        // library's reading of the system time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
        }
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Self {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
            max_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
            clock: Arc::new(SystemClock::default()),
        }
    }

    /// The same verifier, refusing tokens that claim to live longer than `max_lifetime`.
    pub fn with_max_lifetime(mut self, max_lifetime: chrono::Duration) -> Self {
        self.max_lifetime = max_lifetime;
        self
    }

    /// The same verifier, reading the time from `clock`. The product keeps the system clock:
    /// the CRM issues its tokens on real time, whatever a local stack's clock was moved to.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies a token and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?;
        let claims = data.claims;
        self.check_times(&claims, self.clock.now().timestamp())?;
        if claims.organization_id.trim().is_empty() || claims.sub.trim().is_empty() {
            return Err(AuthError::NoOrganization);
        }
        Ok(Caller {
            user_id: UserId::parse(&claims.sub)?,
            organization_id: OrganizationId::parse(&claims.organization_id)?,
            expires_at: chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
        })
    }

    /// Expired (`exp`), not yet valid (`nbf`, `iat`) or living too long, with a leeway for
    /// clock skew. A token's lifetime is `exp − iat`; one without `iat` may still be used for
    /// the maximum lifetime at the most (`exp − now`), so leaving `iat` out gains nothing.
    fn check_times(&self, claims: &Claims, now: i64) -> Result<(), AuthError> {
        if claims.exp < now - LEEWAY_SECONDS {
            return Err(AuthError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
            return Err(AuthError::NotYetValid);
        }
        let max = self.max_lifetime.num_seconds();
        if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECONDS) {
            return Err(AuthError::NotYetValid);
        }
        let start = claims.iat.unwrap_or(now);
        if claims.exp - start > max + LEEWAY_SECONDS {
            return Err(AuthError::TooLong { max_hours: self.max_lifetime.num_hours() });
        }
        Ok(())
    }

    /// Verifies the `Authorization: Bearer …` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    /// Issues a token (the local demo and tests; production tokens come from the CRM's login).
    pub fn issue(&self, user: &str, organization: &str, expires_at: chrono::DateTime<chrono::Utc>) -> String {
        let claims = Claims {
            sub: user.into(),
            organization_id: organization.into(),
            exp: expires_at.timestamp(),
            iat: Some(self.clock.now().timestamp()),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn a_token_issued_with_the_secret_names_its_caller() {
        let jwt = JwtVerifier::new("secret");
        let token = jwt.issue("user-1", "org-1", Utc::now() + Duration::hours(1));
        let caller = jwt.verify_header(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(caller.organization_id.as_str(), "org-1");
        assert_eq!(caller.user_id.as_str(), "user-1");
    }

    #[test]
    fn forged_expired_and_garbage_tokens_are_refused() {
        let jwt = JwtVerifier::new("secret");
        let forged = JwtVerifier::new("other").issue("u", "o", Utc::now() + Duration::hours(1));
        assert!(jwt.verify(&forged).is_err());
        let expired = jwt.issue("u", "o", Utc::now() - Duration::hours(1));
        assert!(jwt.verify(&expired).is_err());
        assert!(jwt.verify("not.a.jwt").is_err());
        assert!(matches!(jwt.verify_header(None), Err(AuthError::Missing)));
        assert!(matches!(jwt.verify_header(Some("Basic abc")), Err(AuthError::Missing)));
        let no_org = jwt.issue("u", "", Utc::now() + Duration::hours(1));
        assert!(matches!(jwt.verify(&no_org), Err(AuthError::NoOrganization)));
        let separator = jwt.issue("u", "acme#x", Utc::now() + Duration::hours(1));
        assert!(matches!(jwt.verify(&separator), Err(AuthError::InvalidOrganization(_))));
    }

    fn token_with(claims: serde_json::Value, secret: &str) -> String {
        super::hs256::install();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
            .unwrap()
    }

    #[test]
    fn a_token_longer_lived_than_the_cap_is_refused() {
        let jwt = JwtVerifier::new("secret").with_max_lifetime(Duration::hours(12));
        let now = Utc::now().timestamp();
        let claims = |iat: Option<i64>, exp: i64| {
            let mut c = serde_json::json!({ "sub": "u", "organization_id": "o", "exp": exp });
            if let Some(iat) = iat {
                c["iat"] = iat.into();
            }
            token_with(c, "secret")
        };
        let ten_years = now + 10 * 365 * 86_400;
        assert!(matches!(jwt.verify(&claims(Some(now), ten_years)), Err(AuthError::TooLong { max_hours: 12 })));
        assert!(matches!(jwt.verify(&claims(None, ten_years)), Err(AuthError::TooLong { .. })));
        // Issued long ago for 12 hours: fine; issued in the future: not yet valid.
        assert!(jwt.verify(&claims(Some(now - 6 * 3600), now + 6 * 3600)).is_ok());
        assert!(jwt.verify(&claims(None, now + 12 * 3600)).is_ok());
        assert!(matches!(jwt.verify(&claims(Some(now + 3600), now + 7200)), Err(AuthError::NotYetValid)));
        let message = jwt.verify(&claims(Some(now), ten_years)).unwrap_err().to_string();
        assert_eq!(message, "the token's lifetime is longer than 12 hours");
    }

    #[test]
    fn refusals_are_told_in_the_products_words() {
        let jwt = JwtVerifier::new("secret");
        let expired = jwt.issue("u", "o", Utc::now() - Duration::hours(1));
        assert_eq!(jwt.verify(&expired).unwrap_err().to_string(), "the token has expired");
        for garbage in ["not.a.jwt", "a", "eyJhbGciOiJIUzI1NiJ9.e30.x"] {
            let message = jwt.verify(garbage).unwrap_err().to_string();
            assert_eq!(message, "the token is not a valid CRM token", "{garbage}");
        }
        let forged = JwtVerifier::new("other").issue("u", "o", Utc::now() + Duration::hours(1));
        assert_eq!(jwt.verify(&forged).unwrap_err().to_string(), "the token is not a valid CRM token");
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let jwt = JwtVerifier::new("secret");
        let exp = (Utc::now() + Duration::hours(2)).timestamp();
        let later = (Utc::now() + Duration::hours(1)).timestamp();
        let token =
            token_with(serde_json::json!({ "sub": "u", "organization_id": "o", "exp": exp, "nbf": later }), "secret");
        assert!(jwt.verify(&token).is_err());
        let now = Utc::now().timestamp();
        let token =
            token_with(serde_json::json!({ "sub": "u", "organization_id": "o", "exp": exp, "nbf": now }), "secret");
        assert!(jwt.verify(&token).is_ok());
    }

    #[test]
    fn expiry_and_not_before_are_read_on_the_verifiers_clock() {
        let clock = Arc::new(SystemClock::default());
        let jwt = JwtVerifier::new("secret").with_clock(clock.clone());
        let exp = (Utc::now() + Duration::hours(1)).timestamp();
        let soon = (Utc::now() + Duration::minutes(30)).timestamp();
        let token =
            token_with(serde_json::json!({ "sub": "u", "organization_id": "o", "exp": exp, "nbf": soon }), "secret");
        assert!(matches!(jwt.verify(&token), Err(AuthError::NotYetValid)));
        clock.advance(Duration::minutes(45));
        assert!(jwt.verify(&token).is_ok());
        clock.advance(Duration::minutes(30));
        assert!(matches!(jwt.verify(&token), Err(AuthError::Expired)));
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let jwt = JwtVerifier::with_claims("secret", Some("https://crm.velvena.example"), Some("calendly"));
        let exp = (Utc::now() + Duration::hours(1)).timestamp();
        let good = serde_json::json!({ "sub": "u", "organization_id": "o", "exp": exp, "iss": "https://crm.velvena.example", "aud": "calendly" });
        assert!(jwt.verify(&token_with(good.clone(), "secret")).is_ok());
        let mut wrong_iss = good.clone();
        wrong_iss["iss"] = "https://evil.example".into();
        assert!(jwt.verify(&token_with(wrong_iss, "secret")).is_err());
        let mut wrong_aud = good.clone();
        wrong_aud["aud"] = "billing".into();
        assert!(jwt.verify(&token_with(wrong_aud, "secret")).is_err());
        let mut none = good;
        none.as_object_mut().unwrap().remove("iss");
        assert!(jwt.verify(&token_with(none, "secret")).is_err());
    }

    #[test]
    fn only_hs256_signatures_with_the_secret_are_accepted() {
        use base64::Engine;
        let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = JwtVerifier::new("secret-of-at-least-thirty-two-bytes!!");
        let good = jwt.issue("u", "o", Utc::now() + Duration::hours(1));
        assert!(jwt.verify(&good).is_ok());
        let (_, rest) = good.split_once('.').unwrap();
        // The same claims and signature under another algorithm's header, and unsigned.
        for alg in ["HS384", "RS256", "none"] {
            let forged = format!("{}.{rest}", b64(&serde_json::json!({ "alg": alg, "typ": "JWT" })));
            assert!(jwt.verify(&forged).is_err(), "{alg}");
        }
        let (signed, _) = good.rsplit_once('.').unwrap();
        assert!(jwt.verify(&format!("{signed}.")).is_err(), "no signature");
        let other = JwtVerifier::new("another-secret-of-thirty-two-bytes!!");
        assert!(other.verify(&good).is_err(), "another secret");
        // Issuing with another algorithm is refused by the provider itself.
        let claims = serde_json::json!({ "sub": "u" });
        let key = EncodingKey::from_secret(b"k");
        assert!(jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).is_err());
    }
}
