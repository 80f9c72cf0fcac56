//! A validated email address, compared case-insensitively.

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
    /// Parses and validates an address (trimmed).
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let value = raw.trim();
        let invalid = || InvalidEmail(raw.to_string());
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
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
        Ok(Self(value.to_string()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key used for uniqueness: one prospect per (organization, lower-cased email).
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
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
    fn rejects_what_is_not_an_address() {
        for bad in ["", "john", "john@", "@example.com", "john@example", "jo hn@example.com", "a@b..com", "a@-b.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
