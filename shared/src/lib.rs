//! Velvena's Calendly integration: the domain (prospects, bookings, notes), the ports
//! (store, Calendly, push, clock) and their adapters, the sync engine, the use cases and the
//! HTTP routes. Nothing here knows about Lambda: `functions/*` wire it to the runtime.

pub mod app;
pub mod auth;
pub mod calendly;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod engine;
pub mod errors;
pub mod http;
pub mod https;
pub mod push;
pub mod queue;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod views;
