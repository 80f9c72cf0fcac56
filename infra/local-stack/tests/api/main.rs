//! The product's HTTP API, driven over real HTTP against the local stack and the simulator.

// Tests: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

mod helpers;

mod auth;
mod connect;
mod contract;
mod crm_fields;
mod deliveries;
mod dlq;
mod events;
mod grants;
mod guests;
mod harness;
mod https;
mod jobs;
mod ledger;
mod limits;
mod organization;
mod prism;
mod privacy;
mod prospects;
mod quotas;
mod realtime;
mod routing;
mod runtime;
mod secrets;
mod security;
mod store_contract;
mod sync;
mod team_sizes;
mod teams;
mod template;
mod tenancy;
mod webhook;
