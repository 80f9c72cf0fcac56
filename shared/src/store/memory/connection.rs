//! WebSocket connections.
use crate::domain::OrganizationId;
use crate::store::{Connection, ConnectionStore, MemoryStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.with(|s| {
            s.connection_owners.insert(connection.connection_id.clone(), connection.organization_id.clone());
            s.connections
                .insert((connection.organization_id.clone(), connection.connection_id.clone()), connection.clone());
        });
        Ok(())
    }

    async fn remove_connection(&self, connection_id: &str) -> Result<Option<Connection>, StoreError> {
        Ok(self.with(|s| {
            let org = s.connection_owners.remove(connection_id)?;
            s.connections.remove(&(org, connection_id.to_string()))
        }))
    }

    async fn connections(&self, org: &OrganizationId) -> Result<Vec<Connection>, StoreError> {
        Ok(self.with(|s| {
            s.connections
                .range((org.clone(), String::new())..)
                .take_while(|((o, _), _)| o == org)
                .map(|(_, c)| c.clone())
                .collect()
        }))
    }
}
