//! The schedule: one small item per organization (`ORG#{org}` / `SCHEDULE`) holding the due
//! index's keys, the next due time, the interval and the job last handed out. A hand-out
//! writes only it (a few hundred bytes: one write unit), whatever the integration item holds
//! (sealed tokens, an organization's member list: two to six units).
//!
//! The integration item stays the record of the settings and the health: every write of it
//! brings the schedule item in line (`keep_schedule`). Its own `next_sync_at` is the due time
//! as of its last write; the schedule's moves on with every hand-out, and readers that show it
//! read the schedule item with it (`get_sync_job_with_integration`). Integration items written
//! before the schedule had its own item carry the due index's keys themselves: the first tick
//! that meets one, or its next write, moves its entry onto a schedule item.

use crate::domain::Integration;
use crate::store::dynamodb::item::{self, Item, from_item, get_s, n, s};
use crate::store::dynamodb::keys::{GSI3, INTEGRATION_SK, SCHEDULE_SK, SK, org_pk, time_sort_key};
use crate::store::{DuePartition, DynamoStore, Scheduled, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

pub(super) fn at(t: DateTime<Utc>) -> aws_sdk_dynamodb::types::AttributeValue {
    item::to_attribute(&serde_json::to_value(t).unwrap_or_default())
}

impl DynamoStore {
    /// Brings `integration`'s schedule item in line with it as just written: its ids and
    /// interval, on the due index while it is healthy, and its due time when this write moved
    /// it (`moved`); otherwise the schedule item's own due time stands (a hand-out moved it
    /// since), or the integration's for a schedule item not kept yet.
    pub(super) async fn keep_schedule(&self, integration: &Integration, moved: bool) -> Result<(), StoreError> {
        let org = &integration.organization_id;
        let scheduled = Scheduled::of(integration);
        let due = scheduled.due();
        let mut values = HashMap::from([
            (":org".to_string(), s(org.as_str())),
            (":id".to_string(), s(integration.id.as_str())),
            (":interval".to_string(), n(u64::from(scheduled.interval_minutes))),
            (":next".to_string(), at(due)),
            (":due".to_string(), s(time_sort_key(due, org.as_str()))),
        ]);
        let (next, due_key) =
            if moved { (":next", ":due") } else { ("if_not_exists(next_sync_at, :next)", "if_not_exists(#due, :due)") };
        let mut update = format!(
            "SET organization_id = :org, integration_id = :id, interval_minutes = :interval, next_sync_at = {next}, #due = {due_key}"
        );
        if Scheduled::applies_to(integration) {
            update.push_str(", #part = :part");
            values.insert(":part".to_string(), s(DuePartition::of(org, self.due_shards).as_str()));
        } else {
            update.push_str(" REMOVE #part");
        }
        let key = Self::key(org_pk(org), SCHEDULE_SK);
        self.update_if(key, update, "", &[("#due", GSI3.sk), ("#part", GSI3.pk)], values).await?;
        Ok(())
    }

    /// A due index entry as the tick reads it: a schedule item, or an integration item of the
    /// layout before, whose entry moves onto a schedule item here (same part, same due time;
    /// a tick of another part meeting it there finds it handed out).
    pub(super) async fn scheduled_entry(&self, entry: &Item) -> Result<Scheduled, StoreError> {
        if get_s(entry, SK) != Some(INTEGRATION_SK) {
            return from_item(entry);
        }
        let integration: Integration = from_item(entry)?;
        self.keep_schedule(&integration, true).await?;
        self.update_if(
            Self::key(org_pk(&integration.organization_id), INTEGRATION_SK),
            "REMOVE #part, #due",
            "attribute_exists(pk)",
            &[("#due", GSI3.sk), ("#part", GSI3.pk)],
            HashMap::new(),
        )
        .await?;
        Ok(Scheduled::of(&integration))
    }
}
