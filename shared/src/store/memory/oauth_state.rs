//! Pending OAuth connects.
use crate::domain::{OAuthState, OrganizationId, UserId};
use crate::store::{MemoryStore, OAuthStateStore, StateTake, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
impl OAuthStateStore for MemoryStore {
    async fn put_oauth_state(&self, state: &OAuthState, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.with(|s| {
            // Expired connects go as new ones come, as the table's TTL deletes them: the
            // embedded store holds no more than the unexpired ones.
            s.oauth_states.retain(|_, pending| pending.expires_at > now);
            s.oauth_states.insert(state.state.clone(), state.clone())
        });
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state: &str,
        org: &OrganizationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<StateTake, StoreError> {
        Ok(self.with(|s| match s.oauth_states.get(state) {
            None => StateTake::Absent,
            Some(st) if &st.organization_id != org || &st.user_id != user => StateTake::NotYours,
            Some(_) => match s.oauth_states.remove(state).filter(|st| st.expires_at > now) {
                Some(st) => StateTake::Taken(st),
                None => StateTake::Absent,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealed;

    #[tokio::test]
    async fn expired_connects_are_purged_as_new_ones_come() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let state = |name: &str, expires_at| OAuthState {
            state: name.into(),
            organization_id: OrganizationId::new("org-a"),
            user_id: UserId::new("u"),
            pkce_verifier: Sealed::from_stored("v1:x".into()),
            expires_at,
            scope: Default::default(),
        };
        for i in 0..100 {
            store.put_oauth_state(&state(&format!("old-{i}"), now + chrono::Duration::minutes(10)), now).await.unwrap();
        }
        let later = now + chrono::Duration::minutes(11);
        store.put_oauth_state(&state("new", later + chrono::Duration::minutes(10)), later).await.unwrap();
        assert_eq!(store.with(|s| s.oauth_states.len()), 1, "only the unexpired connect is kept");
    }
}
