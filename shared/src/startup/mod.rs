//! Start-up: reading the secret into the configuration (`crate::config`, which the use cases'
//! composition reads too), and each function's wiring: what it builds, and what it is granted.

pub mod secrets;
pub mod wiring;
