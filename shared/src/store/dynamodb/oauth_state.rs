//! Pending OAuth connects: single-use states, taken only by who started them.
use crate::domain::{OAuthState, OrganizationId, UserId};
use crate::store::dynamodb::item::{from_item, s, to_item};
use crate::store::dynamodb::keys::{OAUTH_STATE_SK, PK, SK, TTL, oauth_state_pk};
use crate::store::dynamodb::shapes::ttl_of;
use crate::store::dynamodb::{CONSUMED_CAPACITY, Kind, error, is_condition_failure};
use crate::store::{DynamoStore, OAuthStateStore, StateTake, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

#[async_trait]
impl OAuthStateStore for DynamoStore {
    async fn put_oauth_state(&self, state: &OAuthState, _now: DateTime<Utc>) -> Result<(), StoreError> {
        // Expired states are the table's TTL's to delete.
        let mut item = to_item(state, &[(PK, oauth_state_pk(&state.state)), (SK, OAUTH_STATE_SK.to_string())])?;
        item.insert(TTL.into(), ttl_of(state.expires_at));
        self.put(item, None).await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state: &str,
        org: &OrganizationId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<StateTake, StoreError> {
        // Delete-and-return is atomic: of two callbacks racing with one state, one gets it; the
        // condition leaves a state someone else started where it is (nothing burnt).
        self.may("dynamodb:DeleteItem")?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(oauth_state_pk(state), OAUTH_STATE_SK)))
            .condition_expression("attribute_not_exists(pk) OR (organization_id = :org AND user_id = :user)")
            .expression_attribute_values(":org", s(org.as_str()))
            .expression_attribute_values(":user", s(user.as_str()))
            .return_values(ReturnValue::AllOld)
            .set_return_consumed_capacity(CONSUMED_CAPACITY)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if is_condition_failure(&e) => {
                self.record(Kind::Write, None);
                return Ok(StateTake::NotYours);
            }
            Err(e) => return Err(error(e)),
        };
        self.record(Kind::Write, out.consumed_capacity().and_then(|c| c.capacity_units()));
        let Some(item) = out.attributes else { return Ok(StateTake::Absent) };
        Ok(match from_item::<OAuthState>(&item)?.clone() {
            taken if taken.expires_at > now => StateTake::Taken(taken),
            _ => StateTake::Absent,
        })
    }
}
