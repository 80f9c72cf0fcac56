//! Browsers' WebSocket connections, kept per organization.

use crate::app::{AppError, ErrorCode};
use crate::auth::JwtVerifier;
use crate::clock::Clock;
use crate::store::{Connection, ConnectionStore};
use std::sync::Arc;

/// API Gateway closes WebSocket connections after 2 hours at the most.
const CONNECTION_LIFETIME: chrono::Duration = chrono::Duration::hours(2);

/// What `$connect` needs, and nothing more: the token verifier, the connection records and the
/// clock (`ws-connect` is granted `dynamodb:Query` for the count and `dynamodb:PutItem`, nothing else).
#[derive(Clone)]
pub struct Connector {
    jwt: JwtVerifier,
    connections: Arc<dyn ConnectionStore>,
    clock: Arc<dyn Clock>,
    max_per_organization: usize,
}

impl Connector {
    /// The `$connect` use case over the connection records only, refusing connections past
    /// `max_per_organization`.
    pub fn new(
        jwt: JwtVerifier,
        connections: Arc<dyn ConnectionStore>,
        clock: Arc<dyn Clock>,
        max_per_organization: usize,
    ) -> Self {
        Self { jwt, connections, clock, max_per_organization }
    }

    /// `$connect`: authenticates the browser by its JWT and stores the connection under its
    /// organization; a missing or invalid token stores nothing.
    pub async fn connect(&self, token: Option<&str>, connection_id: &str) -> Result<Connection, AppError> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| AppError::Unauthorized("missing token".into()))?;
        let caller = self.jwt.verify(token).map_err(|e| AppError::Unauthorized(e.to_string()))?;
        if connection_id.is_empty() {
            return Err(AppError::bad_request(ErrorCode::InvalidConnection, "missing connection id"));
        }
        let now = self.clock.now();
        // Every push costs one `PostToConnection` per live connection of the organization:
        // the cap bounds a push's cost and time. A new connection past it is refused (the
        // browser's handshake gets 429); an open one is never cut for a newcomer. Two
        // connects racing at the cap may both pass: the cap is a bound, not a count.
        let live = self.connections.live_connections(&caller.organization_id, now).await?;
        if live.len() >= self.max_per_organization {
            let retry_at = live.iter().map(|c| c.expires_at).min().unwrap_or(now);
            return Err(AppError::too_many_requests(
                ErrorCode::TooManyConnections,
                format!(
                    "the organization has {} live real-time connections, the most allowed; close a tab or retry later",
                    live.len()
                ),
                retry_at,
                now,
            ));
        }
        let connection = Connection {
            connection_id: connection_id.to_string(),
            organization_id: caller.organization_id,
            user_id: caller.user_id,
            connected_at: now,
            expires_at: (now + CONNECTION_LIFETIME).min(caller.expires_at),
        };
        self.connections.put_connection(&connection).await?;
        tracing::info!(organization_id = %connection.organization_id, %connection_id, "WebSocket connected");
        Ok(connection)
    }
}

/// `$disconnect`: forgets the connection (best-effort in API Gateway, hence the `ttl`). Needs
/// nothing but the connection records, so `ws-disconnect` is wired with nothing else.
pub async fn forget_connection(connections: &dyn ConnectionStore, connection_id: &str) -> Result<(), AppError> {
    if let Some(c) = connections.remove_connection(connection_id).await? {
        tracing::info!(organization_id = %c.organization_id, %connection_id, "WebSocket disconnected");
    }
    Ok(())
}
