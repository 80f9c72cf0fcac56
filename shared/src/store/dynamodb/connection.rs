//! WebSocket connections. An organization's connections are attributes of one roster item
//! (`ORG#{org}` / `CONNECTIONS`, one attribute `CONN#{id}` each), so a push reads them with one
//! `GetItem`, or with the items a delivered booking reads anyway (one `BatchGetItem`); each
//! connection also has a reverse record (`CONN#{id}` / `CONN`) for `$disconnect`, which knows
//! only the connection's id. Connections stored before the roster (one `CONN#{id}` item each in
//! the organization's partition) are moved onto it by the first read that finds it incomplete.
use crate::domain::{OrganizationId, UserId};
use crate::store::dynamodb::item::{Item, get_n, get_s, n, s};
use crate::store::dynamodb::keys::{
    CONNECTION_OWNER_SK, CONNECTION_PREFIX, CONNECTIONS_SK, PK, SK, TTL, connection_owner_pk, connection_sk, org_pk,
};
use crate::store::dynamodb::shapes::{Query, delete_item, put_item, ttl_of};
use crate::store::dynamodb::{CONSUMED_CAPACITY, Kind, build, error};
use crate::store::{Connection, ConnectionStore, DynamoStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Set on the roster once the connections of the layout before are on it: until then a read
/// also looks for them.
const ROSTER_COMPLETE: &str = "complete";

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let org = &connection.organization_id;
        let ttl = ttl_of(connection.expires_at);
        let owner = HashMap::from([
            (PK.to_string(), s(connection_owner_pk(&connection.connection_id))),
            (SK.to_string(), s(CONNECTION_OWNER_SK)),
            ("organization_id".to_string(), s(org.as_str())),
            ("user_id".to_string(), s(connection.user_id.as_str())),
            ("connected_at".to_string(), n(connection.connected_at.timestamp_millis())),
            (TTL.to_string(), ttl),
        ]);
        let listed = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(org_pk(org), CONNECTIONS_SK)))
                .update_expression("SET #connection = :entry")
                .expression_attribute_names("#connection", connection_sk(&connection.connection_id))
                .expression_attribute_values(":entry", roster_entry(connection))
                .build(),
        )?;
        let items =
            vec![put_item(&self.table, owner, None, None)?, TransactWriteItem::builder().update(listed).build()];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection write refused".into()))
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let Some(owner) = self.get(connection_owner_pk(connection_id), CONNECTION_OWNER_SK).await? else {
            return Ok(None);
        };
        let Some(org) = get_s(&owner, "organization_id").map(OrganizationId::new) else { return Ok(None) };
        let connection = match connection_from_owner(connection_id, &owner) {
            Some(connection) => Some(connection),
            // A reverse record of the layout before names the organization only.
            None => self.get(org_pk(&org), &connection_sk(connection_id)).await?.and_then(|i| legacy_connection(&i)),
        };
        let unlisted = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(org_pk(&org), CONNECTIONS_SK)))
                .update_expression("REMOVE #connection")
                .expression_attribute_names("#connection", connection_sk(connection_id))
                .build(),
        )?;
        let items = vec![
            delete_item(&self.table, Self::key(connection_owner_pk(connection_id), CONNECTION_OWNER_SK), None, None)?,
            TransactWriteItem::builder().update(unlisted).build(),
            // The item of the layout before, if any (deleting nothing is no error).
            delete_item(&self.table, Self::key(org_pk(&org), &connection_sk(connection_id)), None, None)?,
        ];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection delete refused".into()))?;
        Ok(connection)
    }

    async fn connections(&self, org: &OrganizationId) -> Result<Vec<Connection>, StoreError> {
        let roster = self.get(org_pk(org), CONNECTIONS_SK).await?;
        match roster_connections(org, roster.as_ref()) {
            Some(connections) => Ok(connections),
            None => self.complete_roster(org, roster.as_ref()).await,
        }
    }
}

impl DynamoStore {
    /// Moves the connections of the layout before onto the roster, and marks it complete.
    pub(super) async fn complete_roster(
        &self,
        org: &OrganizationId,
        roster: Option<&Item>,
    ) -> Result<Vec<Connection>, StoreError> {
        let query = Query { sk_prefix: Some(CONNECTION_PREFIX), ..Query::partition(org_pk(org)) };
        let legacy: Vec<Connection> = self.query_all(query).await?.iter().filter_map(legacy_connection).collect();
        let mut names = HashMap::from([("#complete".to_string(), ROSTER_COMPLETE.to_string())]);
        let mut values = HashMap::from([(":complete".to_string(), AttributeValue::Bool(true))]);
        let mut sets = vec!["#complete = :complete".to_string()];
        for (i, connection) in legacy.iter().enumerate() {
            names.insert(format!("#c{i}"), connection_sk(&connection.connection_id));
            values.insert(format!(":c{i}"), roster_entry(connection));
            sets.push(format!("#c{i} = if_not_exists(#c{i}, :c{i})"));
        }
        self.may("dynamodb:UpdateItem")?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(org_pk(org), CONNECTIONS_SK)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .set_return_consumed_capacity(CONSUMED_CAPACITY)
            .send()
            .await
            .map_err(error)?;
        self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
        let mut connections = roster.map(|r| listed_connections(org, r)).unwrap_or_default();
        let listed: Vec<String> = connections.iter().map(|c| c.connection_id.clone()).collect();
        connections.extend(legacy.into_iter().filter(|l| !listed.contains(&l.connection_id)));
        Ok(connections)
    }
}

/// The roster's connections, when it is complete (`None`: the layout before may hold some).
pub(super) fn roster_connections(org: &OrganizationId, roster: Option<&Item>) -> Option<Vec<Connection>> {
    let roster = roster?;
    roster.get(ROSTER_COMPLETE).and_then(|v| v.as_bool().ok()).filter(|c| **c)?;
    Some(listed_connections(org, roster))
}

fn listed_connections(org: &OrganizationId, roster: &Item) -> Vec<Connection> {
    roster
        .iter()
        .filter_map(|(name, value)| {
            let id = name.strip_prefix(CONNECTION_PREFIX)?;
            let entry = value.as_m().ok()?;
            let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
            Some(Connection {
                connection_id: id.to_string(),
                organization_id: org.clone(),
                user_id: UserId::new(get_s(entry, "user_id")?),
                connected_at: at(get_n(entry, "connected_at")?)?,
                expires_at: DateTime::<Utc>::from_timestamp(get_n(entry, "expires_at")?, 0)?,
            })
        })
        .collect()
}

fn roster_entry(connection: &Connection) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("user_id".to_string(), s(connection.user_id.as_str())),
        ("connected_at".to_string(), n(connection.connected_at.timestamp_millis())),
        ("expires_at".to_string(), n(connection.expires_at.timestamp())),
    ]))
}

fn connection_from_owner(connection_id: &str, owner: &Item) -> Option<Connection> {
    Some(Connection {
        connection_id: connection_id.to_string(),
        organization_id: OrganizationId::new(get_s(owner, "organization_id")?),
        user_id: UserId::new(get_s(owner, "user_id")?),
        connected_at: DateTime::<Utc>::from_timestamp_millis(get_n(owner, "connected_at")?)?,
        expires_at: DateTime::<Utc>::from_timestamp(get_n(owner, TTL)?, 0)?,
    })
}

/// A connection item of the layout before (one item per connection in the organization's
/// partition): the reverse record's fields, and the connection's id.
fn legacy_connection(item: &Item) -> Option<Connection> {
    connection_from_owner(get_s(item, "connection_id")?, item)
}
