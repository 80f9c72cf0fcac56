//! Shapes of requests: query ranges, opaque cursors, item keys, transaction parts.
use crate::domain::{Integration, OrganizationId, Prospect, ProspectId};
use crate::store::dynamodb::item::{Item, n, s};
use crate::store::dynamodb::keys::{
    GSI1, GSI2, PK, SK, calendly_user_gsi2pk, email_sk, integration_gsi1pk, org_pk, prospect_sk,
    prospects_by_source_gsi2pk, prospects_gsi1pk, time_sort_key,
};
use crate::store::dynamodb::{build, keys};
use crate::store::{StoreError, cursor};
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// One query's partition and range.
#[derive(Clone)]
pub(super) struct Query<'a> {
    pub(super) index: Option<keys::Index>,
    pub(super) partition: String,
    pub(super) sk_prefix: Option<&'a str>,
    pub(super) sk_at_most: Option<String>,
    pub(super) newest_first: bool,
}

impl Query<'_> {
    pub(super) fn partition(partition: String) -> Self {
        Self { index: None, partition, sk_prefix: None, sk_at_most: None, newest_first: false }
    }
    pub(super) fn index(index: keys::Index, partition: String) -> Self {
        Self { index: Some(index), ..Self::partition(partition) }
    }
}

/// Cursors carry DynamoDB's `LastEvaluatedKey`, opaque to callers.
pub(super) fn encode_cursor(key: &Item) -> String {
    let map: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), serde_json::Value::String(s.clone()))))
        .collect();
    cursor::encode(&serde_json::Value::Object(map).to_string())
}

/// A cursor may only continue the partition it came from: no reading across tenants.
pub(super) fn decode_cursor(cursor: Option<&str>, pk_name: &str, partition: &str) -> Result<Option<Item>, StoreError> {
    let Some(raw) = cursor::decode(cursor)? else { return Ok(None) };
    let map: HashMap<String, String> = serde_json::from_str(&raw).map_err(|_| StoreError::InvalidCursor)?;
    if map.get(pk_name).map(String::as_str) != Some(partition) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(Some(map.into_iter().map(|(k, v)| (k, s(v))).collect()))
}

pub(super) fn integration_index_keys(i: &Integration) -> Vec<(&'static str, String)> {
    let mut keys = vec![(GSI1.pk, integration_gsi1pk(&i.id)), (GSI1.sk, "INTEGRATION".to_string())];
    if i.is_active {
        keys.push((GSI2.pk, calendly_user_gsi2pk(&i.calendly_user_uri)));
        keys.push((GSI2.sk, i.organization_id.to_string()));
    }
    // The due index is on the schedule item (`schedule.rs`), not here.
    keys
}

pub(super) fn prospect_keys(p: &Prospect) -> Vec<(&'static str, String)> {
    let order = time_sort_key(p.created_at, p.id.as_str());
    vec![
        (PK, org_pk(&p.organization_id)),
        (SK, prospect_sk(p.id.as_str())),
        (GSI1.pk, prospects_gsi1pk(&p.organization_id)),
        (GSI1.sk, order.clone()),
        (GSI2.pk, prospects_by_source_gsi2pk(&p.organization_id, &p.source)),
        (GSI2.sk, order),
    ]
}

pub(super) fn claim_item(org: &OrganizationId, email_key: &str, prospect: &ProspectId) -> Item {
    HashMap::from([
        (PK.to_string(), s(org_pk(org))),
        (SK.to_string(), s(email_sk(email_key))),
        ("prospect_id".to_string(), s(prospect.as_str())),
    ])
}

pub(super) fn put_item(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, StoreError> {
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(String::from))
            .set_expression_attribute_values(values)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(super) fn delete_item(
    table: &str,
    key: Item,
    condition: Option<&str>,
    values: Option<Item>,
) -> Result<TransactWriteItem, StoreError> {
    let delete = build(
        Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .set_condition_expression(condition.map(String::from))
            .set_expression_attribute_values(values)
            .build(),
    )?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

pub(super) fn ttl_of(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp())
}
