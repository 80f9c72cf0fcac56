//! The schedule's layout and the message that carries a tick on: due integrations are kept
//! in parts (shards of organizations), and a tick that nears its deadline hands the parts it
//! has not finished to another invocation.

use super::{HandedOutJob, Integration, IntegrationId, OrganizationId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many parts the schedule is spread over by default: every schedule move is a write to
/// one of them, so no single index partition takes every organization's writes.
pub const DEFAULT_DUE_SHARDS: u16 = 16;

/// One part of the schedule, by name (`DUE#07`; `DUE`, the unsharded layout of before, is read
/// until the last integration written in it has moved).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DuePartition(String);

impl DuePartition {
    /// The part an organization's schedule is kept in, of `shards`.
    pub fn of(org: &OrganizationId, shards: u16) -> Self {
        Self::shard(due_shard(org, shards))
    }
    /// The part numbered `shard`.
    pub fn shard(shard: u16) -> Self {
        Self(format!("DUE#{shard:02}"))
    }
    /// The unsharded layout's single part.
    pub fn unsharded() -> Self {
        Self("DUE".to_string())
    }
    /// Every part of `shards`.
    pub fn all(shards: u16) -> Vec<Self> {
        (0..shards.max(1)).map(Self::shard).collect()
    }
    /// Its shard number, if it is a shard (not the unsharded layout's part).
    pub fn shard_number(&self) -> Option<u16> {
        self.0.strip_prefix("DUE#").and_then(|n| n.parse().ok())
    }
    /// Its name (the due index's hash key).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DuePartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shard of an organization: FNV-1a of its id (stable across builds and platforms, unlike
/// the standard library's hasher), modulo `shards`.
pub fn due_shard(org: &OrganizationId, shards: u16) -> u16 {
    let hash =
        org.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % u64::from(shards.max(1))) as u16
}

/// An integration's place on the schedule: what a tick needs to hand its job out, and the
/// job it last handed out. Kept apart from the integration (a small item on DynamoDB), so a
/// hand-out writes a few hundred bytes whatever the integration holds (tokens, an
/// organization's member list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scheduled {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The integration it syncs.
    pub integration_id: IntegrationId,
    /// Minutes from a hand-out to the next (`Integration::schedule_interval_minutes`).
    pub interval_minutes: u32,
    /// When it is due (the index key).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// The scheduled job last handed out (see `HandedOutJob`).
    #[serde(default)]
    pub handed_out: Option<HandedOutJob>,
}

impl Scheduled {
    /// The schedule of `integration` as it stands on it.
    pub fn of(integration: &Integration) -> Self {
        Self {
            organization_id: integration.organization_id.clone(),
            integration_id: integration.id.clone(),
            interval_minutes: integration.schedule_interval_minutes(),
            next_sync_at: integration.next_sync_at,
            handed_out: integration.handed_out.clone(),
        }
    }

    /// Whether `integration` is on the schedule at all: connected and healthy (auto-sync off
    /// still comes for its webhook check).
    pub fn applies_to(integration: &Integration) -> bool {
        integration.is_active && !integration.needs_reconnect
    }

    /// The due time as the index orders it (never scheduled: at once).
    pub fn due(&self) -> DateTime<Utc> {
        self.next_sync_at.unwrap_or(DateTime::UNIX_EPOCH)
    }
}

/// What is left of a scheduled tick: one part of the schedule, from a position on, for the
/// range of that tick (what was due at `tick_at`). Another invocation takes it from there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRest {
    /// The tick's time: the part is read up to it, whatever the time of the invocation.
    pub tick_at: DateTime<Utc>,
    /// The part of the schedule.
    pub partition: DuePartition,
    /// Where the last invocation stopped (`None`: from the start).
    pub cursor: Option<String>,
    /// How many invocations this tick has been handed through (logged).
    #[serde(default)]
    pub hop: u32,
}

impl TickRest {
    /// A part of the tick at `tick_at`, from the start.
    pub fn start(tick_at: DateTime<Utc>, partition: DuePartition) -> Self {
        Self { tick_at, partition, cursor: None, hop: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // The layout is on disk: a change of hash would strand every written integration.
        assert_eq!(due_shard(&OrganizationId::new("org-a"), 16), due_shard(&OrganizationId::new("org-a"), 16));
        assert_eq!(DuePartition::of(&OrganizationId::new("org-1"), 1), DuePartition::shard(0));
        let mut counts = [0u32; 16];
        for n in 0..16_000 {
            counts[usize::from(due_shard(&OrganizationId::new(format!("org-{n}")), 16))] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(DuePartition::shard(3).as_str(), "DUE#03");
        assert_eq!(DuePartition::all(4).len(), 4);
    }
}
