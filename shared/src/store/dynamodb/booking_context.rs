//! What recording a delivered booking starts from, in one `BatchGetItem`: the organization,
//! the stored booking, the e-mail's claim and the connection roster share one partition.
use crate::domain::{Organization, OrganizationId, ProspectId};
use crate::store::dynamodb::connection::roster_connections;
use crate::store::dynamodb::item::{from_item, get_s};
use crate::store::dynamodb::keys::{CONNECTIONS_SK, ORG_SK, SK, booking_sk, email_sk, org_pk};
use crate::store::{BookingContext, BookingContextStore, DynamoStore, ProspectStore, StoreError};
use async_trait::async_trait;
use serde_json::Map;

#[async_trait]
impl BookingContextStore for DynamoStore {
    async fn booking_context(
        &self,
        org: &OrganizationId,
        invitee_uuid: &str,
        email_key: Option<&str>,
    ) -> Result<BookingContext, StoreError> {
        let pk = org_pk(org);
        let (booking, email) = (booking_sk(invitee_uuid), email_key.map(email_sk));
        let mut sks = vec![ORG_SK, booking.as_str(), CONNECTIONS_SK];
        sks.extend(email.as_deref());
        let keys = sks.iter().map(|sk| Self::key(pk.clone(), sk)).collect();
        let mut context = BookingContext {
            organization: Organization { id: org.clone(), settings: Map::new() },
            stored: None,
            prospect_with_email: None,
            connections: None,
        };
        let (mut claimed_by, mut roster) = (None, None);
        for item in self.batch_get(keys).await? {
            match get_s(&item, SK) {
                Some(ORG_SK) => context.organization.settings = from_item::<Organization>(&item)?.settings,
                Some(CONNECTIONS_SK) => roster = Some(item),
                Some(sk) if sk == booking => context.stored = Some(from_item(&item)?),
                Some(sk) if Some(sk) == email.as_deref() => {
                    claimed_by = get_s(&item, "prospect_id").map(ProspectId::new)
                }
                _ => {}
            }
        }
        context.connections = roster_connections(org, roster.as_ref());
        // A known e-mail's prospect is its own item, named by the claim.
        if let Some(id) = claimed_by {
            context.prospect_with_email = self.get_prospect(org, &id).await?;
        }
        Ok(context)
    }
}
