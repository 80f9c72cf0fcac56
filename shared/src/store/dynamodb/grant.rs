//! What a function may ask of DynamoDB: the IAM actions each store port needs, and a store
//! that refuses what its function's grant leaves out, as IAM does (the local stack runs every
//! function on one).

use super::DynamoStore;
use crate::store::StoreError;
use aws_sdk_dynamodb::types::TransactWriteItem;

/// The IAM actions a port's requests need on DynamoDB (a transaction's items each need their
/// own: `Put` `PutItem`, `Update` `UpdateItem`, `Delete` `DeleteItem`, `ConditionCheck`
/// `ConditionCheckItem`). The local stack refuses what a function's ports leave out, so an
/// action missing here fails the tests that use it.
pub fn actions_of(port: crate::store::StorePort) -> &'static [&'static str] {
    use crate::store::StorePort as P;
    const GET: &str = "dynamodb:GetItem";
    const PUT: &str = "dynamodb:PutItem";
    const UPDATE: &str = "dynamodb:UpdateItem";
    const DELETE: &str = "dynamodb:DeleteItem";
    const CHECK: &str = "dynamodb:ConditionCheckItem";
    const QUERY: &str = "dynamodb:Query";
    const BATCH_GET: &str = "dynamodb:BatchGetItem";
    const BATCH_WRITE: &str = "dynamodb:BatchWriteItem";
    match port {
        // Settings are merged by a versioned put.
        P::Organizations => &[GET, PUT],
        // Taken with a delete that returns it.
        P::OAuthStates => &[PUT, DELETE],
        // The Calendly user's claim is released with a delete; the schedule's entries are queried.
        P::Integrations => &[GET, PUT, UPDATE, DELETE, QUERY],
        // The due index is queried; a hand-out is one conditional update of a schedule item.
        P::Schedule => &[UPDATE, QUERY],
        // A commit puts and updates under condition checks; fingerprints are batch-read.
        P::Bookings => &[GET, PUT, UPDATE, CHECK, QUERY, BATCH_GET],
        P::BookingContext => &[GET, BATCH_GET],
        // An e-mail change moves the claim: the old one is deleted.
        P::Prospects => &[GET, PUT, DELETE, QUERY],
        P::Notifications => &[PUT, UPDATE, QUERY],
        // The roster is updated; the layout before is queried and moved once.
        P::ConnectionRecords => &[GET, PUT, UPDATE, QUERY],
        P::ConnectionRemoval => &[GET, UPDATE, DELETE],
        // The job is read with its integration and schedule in one batch.
        P::SyncJobs => &[GET, PUT, QUERY, BATCH_GET],
        P::RateLimits => &[GET, PUT],
        P::Quotas => &[GET, PUT],
        // Erasure and purge delete in batches.
        P::Privacy => &[GET, PUT, UPDATE, DELETE, QUERY, BATCH_GET, BATCH_WRITE],
        // Pages queried, then deleted in batches.
        P::CalendlyDataDeletion => &[QUERY, BATCH_WRITE],
        P::PersonHashKey => &[GET, PUT],
        P::DeliveryLedger => &[UPDATE, QUERY],
        P::Submissions => &[GET, PUT, UPDATE, CHECK],
    }
}

impl DynamoStore {
    /// The same store, refusing every request that `actions` (IAM action names,
    /// `dynamodb:GetItem`…) leave out with the error IAM's `AccessDeniedException` gives: the
    /// local stack runs each function on its grant, so a test proves the grant is enough.
    pub fn granted_only(mut self, actions: &[&'static str]) -> Self {
        self.granted = Some(actions.into());
        self
    }

    /// Whether the grant allows `action` (as IAM would refuse it).
    pub(super) fn may(&self, action: &'static str) -> Result<(), StoreError> {
        match &self.granted {
            Some(granted) if !granted.contains(&action) => {
                self.denied.lock().unwrap_or_else(|e| e.into_inner()).push(action);
                Err(StoreError::Misconfigured(format!(
                    "AccessDeniedException: the function is not authorized to perform {action}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The actions a grant refused so far, by this store or any clone of it.
    pub fn denied_actions(&self) -> Vec<&'static str> {
        self.denied.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the grant allows every item of a transaction (each is its own action).
    pub(super) fn may_transact(&self, items: &[TransactWriteItem]) -> Result<(), StoreError> {
        for item in items {
            let action = match item {
                i if i.put().is_some() => "dynamodb:PutItem",
                i if i.update().is_some() => "dynamodb:UpdateItem",
                i if i.delete().is_some() => "dynamodb:DeleteItem",
                _ => "dynamodb:ConditionCheckItem",
            };
            self.may(action)?;
        }
        Ok(())
    }
}
