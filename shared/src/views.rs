//! What the API answers and what browsers receive: one serializable type per body, each with
//! its JSON Schema derived from the same definition (the OpenAPI document, `http::contract`).
//! Handlers and pushes serialize these and nothing else, so the document can't drift from the
//! wire.
//!
//! By area: `crm`, `calendly`, `push`, `privacy`; every type is re-exported here.

use crate::app::PersonalData;
use crate::app::{ConnectOutcome, ConnectStart, ConnectionStatus, DeliveryOutcome, EventTypeChoice};
use crate::calendly::GrantedScopes;
use crate::domain::{
    Booking, CalendlyErasure, CalendlyScope, ErasureRecord, Notification, Organization, Prospect, QuestionAnswer,
    SyncJob, SyncJobState, SyncTrigger, Tracking,
};
use crate::store::PageOf;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

mod calendly;
mod crm;
mod privacy;
mod push;
pub use calendly::*;
pub use crm::*;
pub use privacy::*;
pub use push::*;

/// Any view as a JSON value (for the places that still assemble JSON, e.g. notifications' meta).
pub fn to_value(view: &impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests;
