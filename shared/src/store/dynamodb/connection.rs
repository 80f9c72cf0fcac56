//! WebSocket connections, per organization, with a `ttl`.
use crate::domain::OrganizationId;
use crate::store::dynamodb::item::{Item, get_n, get_s, n, s};
use crate::store::dynamodb::keys::{
    CONNECTION_OWNER_SK, CONNECTION_PREFIX, PK, SK, TTL, connection_owner_pk, connection_sk, org_pk,
};
use crate::store::dynamodb::shapes::{Query, delete_item, put_item, ttl_of};
use crate::store::{Connection, ConnectionStore, DynamoStore, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        let ttl = ttl_of(connection.expires_at);
        let mut item = HashMap::from([
            (PK.to_string(), s(org_pk(&connection.organization_id))),
            (SK.to_string(), s(connection_sk(&connection.connection_id))),
            ("connection_id".to_string(), s(connection.connection_id.clone())),
            ("organization_id".to_string(), s(connection.organization_id.as_str())),
            ("user_id".to_string(), s(connection.user_id.as_str())),
            ("connected_at".to_string(), n(connection.connected_at.timestamp_millis())),
        ]);
        item.insert(TTL.into(), ttl.clone());
        let owner = HashMap::from([
            (PK.to_string(), s(connection_owner_pk(&connection.connection_id))),
            (SK.to_string(), s(CONNECTION_OWNER_SK)),
            ("organization_id".to_string(), s(connection.organization_id.as_str())),
            (TTL.to_string(), ttl),
        ]);
        let items = vec![put_item(&self.table, item, None, None)?, put_item(&self.table, owner, None, None)?];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection write refused".into()))
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        let Some(owner) = self.get(connection_owner_pk(connection_id), CONNECTION_OWNER_SK).await? else {
            return Ok(None);
        };
        let Some(org) = get_s(&owner, "organization_id").map(OrganizationId::new) else { return Ok(None) };
        let connection =
            self.get(org_pk(&org), &connection_sk(connection_id)).await?.and_then(|item| connection_from(&item));
        let items = vec![
            delete_item(&self.table, Self::key(org_pk(&org), &connection_sk(connection_id)), None, None)?,
            delete_item(&self.table, Self::key(connection_owner_pk(connection_id), CONNECTION_OWNER_SK), None, None)?,
        ];
        self.transact(items).await?.map_err(|_| StoreError::Conflict("connection delete refused".into()))?;
        Ok(connection)
    }

    async fn connections(&self, org: &OrganizationId) -> Result<Vec<Connection>, StoreError> {
        let items =
            self.query_all(Query { sk_prefix: Some(CONNECTION_PREFIX), ..Query::partition(org_pk(org)) }).await?;
        Ok(items.iter().filter_map(connection_from).collect())
    }
}

fn connection_from(item: &Item) -> Option<Connection> {
    let at = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms);
    Some(Connection {
        connection_id: get_s(item, "connection_id")?.to_string(),
        organization_id: OrganizationId::new(get_s(item, "organization_id")?),
        user_id: crate::domain::UserId::new(get_s(item, "user_id")?),
        connected_at: at(get_n(item, "connected_at")?)?,
        expires_at: DateTime::<Utc>::from_timestamp(get_n(item, TTL)?, 0)?,
    })
}
