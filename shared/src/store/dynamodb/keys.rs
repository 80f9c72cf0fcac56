//! The single table's keys and indexes, defined once: the adapter, the table the local stack
//! and tests create, and the SAM template (checked by a test) all read them from here.

use crate::domain::{IntegrationId, OrganizationId};
use chrono::{DateTime, Utc};

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// Epoch seconds; DynamoDB's TTL deletes the item some time after (reads also skip it).
pub const TTL: &str = "ttl";

/// A global secondary index: its name and key attributes (all strings, projection ALL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Index {
    /// The index's name.
    pub name: &'static str,
    /// Its partition key attribute.
    pub pk: &'static str,
    /// Its sort key attribute.
    pub sk: &'static str,
}

/// Overloaded by item type: integration by id; bookings by start; prospects by creation.
pub const GSI1: Index = Index { name: "gsi1", pk: "gsi1pk", sk: "gsi1sk" };
/// Overloaded: active integration by Calendly user URI; prospects by source.
pub const GSI2: Index = Index { name: "gsi2", pk: "gsi2pk", sk: "gsi2sk" };
/// Sparse "due" index: the schedule items of active, healthy integrations, by `next_sync_at`
/// (integration items written before the schedule had its own item, until moved).
pub const GSI3: Index = Index { name: "gsi3", pk: "gsi3pk", sk: "gsi3sk" };
/// Every index of the table.
pub const INDEXES: [Index; 3] = [GSI1, GSI2, GSI3];

/// The partition of everything an organization owns.
pub fn org_pk(org: &OrganizationId) -> String {
    format!("ORG#{org}")
}
/// The organization item itself (its settings).
pub const ORG_SK: &str = "ORG";
/// One integration per organization: a reconnect overwrites, it never adds a second.
pub const INTEGRATION_SK: &str = "CALENDLY";
/// A booking, by its invitee's UUID.
pub fn booking_sk(invitee_uuid: &str) -> String {
    format!("BOOKING#{invitee_uuid}")
}
/// A scheduled event's fingerprint (unchanged events are skipped on re-read).
pub fn event_sk(event_uuid: &str) -> String {
    format!("EVENT#{event_uuid}")
}
/// A prospect, by id.
pub fn prospect_sk(id: &str) -> String {
    format!("PROSPECT#{id}")
}
/// The claim of an e-mail by one prospect (what makes "one prospect per e-mail" atomic).
pub fn email_sk(email_key: &str) -> String {
    format!("EMAIL#{email_key}")
}
/// A person the organization holds data about, by the keyed hash of their e-mail: the index of
/// what commits wrote about them, and their suppression once erased.
pub fn person_sk(hash: &str) -> String {
    format!("PERSON#{hash}")
}
/// The deployment's own items (not an organization's): their partition.
pub const DEPLOYMENT_PK: &str = "DEPLOYMENT";
/// The person-hash key, sealed (one per table).
pub const PERSON_HASH_KEY_SK: &str = "PERSON_HASH_KEY";
/// The sort key prefix of the erasure audit (newest first by time-ordered ids).
pub const ERASURE_PREFIX: &str = "ERASURE#";
/// One erasure of the audit.
pub fn erasure_sk(id: &str) -> String {
    format!("{ERASURE_PREFIX}{id}")
}
/// The sort key prefix of notifications (newest first by their time-ordered ids).
pub const NOTIFICATION_PREFIX: &str = "NOTIF#";
/// A notification, by id.
pub fn notification_sk(id: &str) -> String {
    format!("{NOTIFICATION_PREFIX}{id}")
}
/// The organization's roster of WebSocket connections (an attribute per connection).
pub const CONNECTIONS_SK: &str = "CONNECTIONS";
/// The prefix of a connection's attribute on the roster (and of the layout before's items).
pub const CONNECTION_PREFIX: &str = "CONN#";
/// A WebSocket connection's attribute on the roster (and its item in the layout before).
pub fn connection_sk(connection_id: &str) -> String {
    format!("{CONNECTION_PREFIX}{connection_id}")
}
/// The reverse record of a connection, for `$disconnect` (which knows only the id).
pub fn connection_owner_pk(connection_id: &str) -> String {
    format!("{CONNECTION_PREFIX}{connection_id}")
}
/// The sort key of a connection's reverse record.
pub const CONNECTION_OWNER_SK: &str = "CONN";
/// The organization's current (or latest) sync job.
pub const SYNC_JOB_SK: &str = "SYNCJOB";
/// The organization's place on the schedule (the due index's entry, the job handed out).
pub const SCHEDULE_SK: &str = "SCHEDULE";
/// Items about one Calendly user: its rate-limit window, shared by every worker, and which
/// organization holds it.
pub fn calendly_user_pk(user_uri: &str) -> String {
    format!("CALUSER#{user_uri}")
}
/// The sort key of a Calendly user's rate-limit window.
pub const RATE_WINDOW_SK: &str = "RATE";
/// Which organization holds a Calendly user (one active integration per Calendly account).
pub const CALENDLY_USER_OWNER_SK: &str = "OWNER";
/// Shards of a job's committed counts: commits running at once add to different items (one
/// item would make concurrent transactions conflict).
pub const COMMITTED_COUNT_SHARDS: u32 = 16;
/// The sort keys of a job's committed counts begin with this.
pub fn committed_counts_prefix(job_id: &str) -> String {
    format!("JOBCOUNT#{job_id}#")
}
/// The sort key of one shard of a job's committed counts, picked by the booking's id.
pub fn committed_counts_sk(job_id: &str, booking_id: &str) -> String {
    // FNV-1a: stable across builds and processes (std's hasher is seeded per process).
    let hash = booking_id.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{}{:02}", committed_counts_prefix(job_id), hash % COMMITTED_COUNT_SHARDS)
}
/// The sort key prefix of the webhook delivery ledger's hours.
pub const LEDGER_PREFIX: &str = "LEDGER#";
/// One hour of the webhook delivery ledger (its start, to the hour: sorts by time).
pub fn ledger_sk(hour: DateTime<Utc>) -> String {
    format!("{LEDGER_PREFIX}{}", hour.format("%Y-%m-%dT%H"))
}
/// The join of a routing form submission and its prospect.
pub fn submission_sk(submission_uuid: &str) -> String {
    format!("SUBMISSION#{submission_uuid}")
}
/// What makes a notice once per key (e.g. once a day).
pub fn once_sk(key: &str) -> String {
    format!("ONCE#{key}")
}
/// The sort key of a quota's window for one subject of the organization.
pub fn quota_sk(quota: &str, subject: &str) -> String {
    format!("QUOTA#{quota}#{subject}")
}
/// A pending OAuth connect, by its state.
pub fn oauth_state_pk(state: &str) -> String {
    format!("STATE#{state}")
}
/// The sort key of a pending OAuth connect.
pub const OAUTH_STATE_SK: &str = "STATE";

/// GSI1: the integration by its id (webhook deliveries name the integration).
pub fn integration_gsi1pk(id: &IntegrationId) -> String {
    format!("INTEGRATION#{id}")
}
/// GSI2: the active integration of a Calendly user.
pub fn calendly_user_gsi2pk(user_uri: &str) -> String {
    format!("CALUSER#{user_uri}")
}
/// GSI1: an organization's bookings, by start time.
pub fn bookings_gsi1pk(org: &OrganizationId) -> String {
    format!("BOOKINGS#{org}")
}
/// GSI1: an organization's prospects, by creation time.
pub fn prospects_gsi1pk(org: &OrganizationId) -> String {
    format!("PROSPECTS#{org}")
}
/// GSI2: an organization's prospects of one source, by creation time.
pub fn prospects_by_source_gsi2pk(org: &OrganizationId, source: &str) -> String {
    format!("PROSPECTS#{org}#{source}")
}
// GSI3: due integrations, by `next_sync_at`, in the parts `store::DuePartition` names.

/// A sort key that orders by time then id (fixed-width microseconds).
pub fn time_sort_key(at: DateTime<Utc>, id: &str) -> String {
    format!("{:020}#{id}", at.timestamp_micros().max(0))
}
