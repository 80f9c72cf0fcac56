//! Pending OAuth connects.

use super::*;

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
