//! Transaction items that both kinds of commit write (a booking's, a routing form
//! submission's): the prospect change, the suppression and integration checks, the join.

use crate::domain::OrganizationId;
use crate::domain::booking::ProspectChange;
use crate::domain::bounds::MAX_INLINE_NOTES;
use crate::domain::routing::LinkWrite;
use crate::store::dynamodb::item::{self, Item, n, s, to_item};
use crate::store::dynamodb::keys::{INTEGRATION_SK, PK, SK, TTL, org_pk, person_sk, prospect_sk, submission_sk};
use crate::store::dynamodb::shapes::{claim_item, prospect_keys, put_item, ttl_of};
use crate::store::dynamodb::{ITEM_VERSION, build};
use crate::store::{DynamoStore, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use std::collections::HashMap;

/// A join outlives what it joins by far: a submission polled again within this finds it.
const LINK_KEPT: chrono::Duration = chrono::Duration::days(400);

/// What a transaction item of a prospect change guards (its failure names the conflict).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The new prospect (a random id: its failure is a collision, re-planned).
    Prospect,
    /// The e-mail claim of a new prospect.
    Claim,
    /// The notes (and fields) of an existing prospect, guarded by room or as read.
    Notes,
}

/// The transaction items of one prospect change, written at `at`.
pub(super) fn prospect_change_items(
    table: &str,
    org: &OrganizationId,
    change: &ProspectChange,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(TransactWriteItem, Role)>, StoreError> {
    let mut items = Vec::new();
    match change {
        ProspectChange::Create(p) => {
            let mut item = to_item(p, &prospect_keys(p))?;
            item.insert(ITEM_VERSION.into(), n(1));
            items.push((put_item(table, item, Some("attribute_not_exists(pk)"), None)?, Role::Prospect));
            if let Some(email) = &p.email {
                let claim = claim_item(org, &email.key(), &p.id);
                items.push((put_item(table, claim, Some("attribute_not_exists(pk)"), None)?, Role::Claim));
            }
        }
        ProspectChange::Append { prospect_id, notes } => {
            let update = build(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(DynamoStore::key(org_pk(org), &prospect_sk(prospect_id.as_str()))))
                    .update_expression("SET notes = list_append(notes, :notes), updated_at = :at ADD item_version :one")
                    // Gone, or the inline notes would pass their bound (re-planned as a rewrite).
                    .condition_expression("attribute_exists(pk) AND size(notes) <= :room")
                    .set_expression_attribute_values(Some(HashMap::from([
                        (":room".to_string(), n(MAX_INLINE_NOTES.saturating_sub(notes.len()))),
                        (":notes".to_string(), AttributeValue::L(notes.iter().map(|n| s(n.clone())).collect())),
                        (":at".to_string(), item::to_attribute(&serde_json::to_value(at).unwrap_or_default())),
                        (":one".to_string(), n(1)),
                    ])))
                    .build(),
            )?;
            items.push((TransactWriteItem::builder().update(update).build(), Role::Notes));
        }
        ProspectChange::Rewrite { prospect_id, notes, expected_len, expected_updated_at, fields, .. } => {
            let time =
                |t: &chrono::DateTime<chrono::Utc>| item::to_attribute(&serde_json::to_value(t).unwrap_or_default());
            let mut values = HashMap::from([
                (":notes".to_string(), AttributeValue::L(notes.iter().map(|n| s(n.clone())).collect())),
                (":at".to_string(), time(&at)),
                (":len".to_string(), n(*expected_len)),
                (":read_at".to_string(), time(expected_updated_at)),
                (":one".to_string(), n(1)),
            ]);
            let mut set = String::from("notes = :notes, updated_at = :at");
            let mut names = HashMap::new();
            // The field map's fields, as a whole, under the same guard as the notes.
            if let Some(fields) = fields {
                let json = serde_json::to_value(fields).map_err(StoreError::Unconvertible)?;
                for (i, (name, value)) in json.as_object().into_iter().flatten().enumerate() {
                    set.push_str(&format!(", #f{i} = :f{i}"));
                    names.insert(format!("#f{i}"), name.clone());
                    values.insert(format!(":f{i}"), item::to_attribute(value));
                }
            }
            let update = build(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(DynamoStore::key(org_pk(org), &prospect_sk(prospect_id.as_str()))))
                    .update_expression(format!("SET {set} ADD item_version :one"))
                    // The prospect as read: a concurrent append, rewrite or edit makes this
                    // a re-plan.
                    .condition_expression("attribute_exists(pk) AND size(notes) = :len AND updated_at = :read_at")
                    .set_expression_attribute_names((!names.is_empty()).then_some(names))
                    .set_expression_attribute_values(Some(values))
                    .build(),
            )?;
            items.push((TransactWriteItem::builder().update(update).build(), Role::Notes));
        }
        ProspectChange::None => {}
    }
    Ok(items)
}

/// The check that a person (by one of their hashes) is not suppressed.
pub(super) fn unsuppressed_check(
    table: &str,
    org: &OrganizationId,
    hash: &str,
) -> Result<TransactWriteItem, StoreError> {
    let check = build(
        ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(DynamoStore::key(org_pk(org), &person_sk(hash))))
            .condition_expression("attribute_not_exists(suppressed_at)")
            .build(),
    )?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// The check that `integration` is still the organization's active one: a sync or a delivery
/// in flight when the organization disconnects writes nothing after it.
pub(super) fn integration_active_check(
    table: &str,
    org: &OrganizationId,
    integration: &crate::domain::IntegrationId,
) -> Result<TransactWriteItem, StoreError> {
    let check = build(
        ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(DynamoStore::key(org_pk(org), INTEGRATION_SK)))
            .condition_expression("#active = :true AND #id = :integration")
            .expression_attribute_names("#active", "is_active")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":integration", s(integration.as_str()))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// The transaction item writing a join: created if none exists, or over the one read, as read.
pub(super) fn link_item(table: &str, org: &OrganizationId, write: &LinkWrite) -> Result<TransactWriteItem, StoreError> {
    let (uuid, link) = match write {
        LinkWrite::Create { submission_uuid, link } | LinkWrite::Update { submission_uuid, link, .. } => {
            (submission_uuid, link)
        }
    };
    let item: Item = HashMap::from([
        (PK.to_string(), s(org_pk(org))),
        (SK.to_string(), s(submission_sk(uuid))),
        ("prospect_id".to_string(), s(link.prospect_id.as_str())),
        ("noted".to_string(), AttributeValue::Bool(link.noted)),
        (TTL.to_string(), ttl_of(chrono::Utc::now() + LINK_KEPT)),
    ]);
    match write {
        LinkWrite::Create { .. } => put_item(table, item, Some("attribute_not_exists(pk)"), None),
        LinkWrite::Update { read, .. } => put_item(
            table,
            item,
            Some("prospect_id = :prospect AND noted = :noted"),
            Some(HashMap::from([
                (":prospect".to_string(), s(read.prospect_id.as_str())),
                (":noted".to_string(), AttributeValue::Bool(read.noted)),
            ])),
        ),
    }
}
