//! The embedded store: every port in one process, behind one lock. It enforces the same
//! guards as the DynamoDB adapter (revision, email claim, lease, token version), so the
//! exactly-once tests mean the same thing on both.

use super::*;
use crate::domain::booking::ProspectChange;
use std::collections::BTreeMap;
use std::sync::Mutex;

type Key<T> = (OrganizationId, T);

#[derive(Default)]
struct State {
    organizations: HashMap<OrganizationId, Map<String, Value>>,
    oauth_states: HashMap<String, OAuthState>,
    integrations: HashMap<OrganizationId, Integration>,
    bookings: HashMap<Key<String>, Booking>,
    fingerprints: HashMap<Key<String>, String>,
    prospects: HashMap<Key<ProspectId>, Prospect>,
    email_claims: HashMap<Key<String>, ProspectId>,
    notifications: BTreeMap<Key<NotificationId>, Notification>,
    connections: BTreeMap<Key<String>, Connection>,
    connection_owners: HashMap<String, OrganizationId>,
    sync_jobs: HashMap<OrganizationId, SyncJob>,
    calendly_user_claims: HashMap<String, (OrganizationId, DateTime<Utc>)>,
    rate_windows: HashMap<String, RateWindow>,
}

/// The in-memory store used by the local stack and fast tests.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a transition to the organization's integration; false when there is none or
    /// the transition refused.
    fn change_integration(&self, org: &OrganizationId, change: impl FnOnce(&mut Integration) -> bool) -> bool {
        self.with(|s| s.integrations.get_mut(org).is_some_and(change))
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock means a panic mid-write in a test; the data is still consistent
        // because every write below validates before it mutates.
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// Pages `items` (already sorted) after the position in `cursor`, by `position`.
fn paginate<T: Clone>(
    items: Vec<T>,
    position: impl Fn(&T) -> String,
    limit: usize,
    cursor: Option<&str>,
) -> Result<PageOf<T>, StoreError> {
    let after = cursor::decode(cursor)?;
    let start = match &after {
        None => 0,
        Some(after) => {
            items.iter().position(|i| &position(i) == after).map(|i| i + 1).ok_or(StoreError::InvalidCursor)?
        }
    };
    let limit = limit.max(1);
    let page: Vec<T> = items.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + page.len() < items.len())
        .then(|| cursor::encode(&position(page.last().expect("a non-final page is not empty"))));
    Ok(PageOf { items: page, next_cursor })
}

#[async_trait]
impl OrganizationStore for MemoryStore {
    async fn get_organization(&self, org: &OrganizationId) -> Result<Organization, StoreError> {
        Ok(self.with(|s| Organization {
            id: org.clone(),
            settings: s.organizations.get(org).cloned().unwrap_or_default(),
        }))
    }

    async fn merge_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<Organization, StoreError> {
        Ok(self.with(|s| {
            let settings = s.organizations.entry(org.clone()).or_default();
            crate::domain::merge_settings(settings, patch);
            Organization { id: org.clone(), settings: settings.clone() }
        }))
    }

    async fn merge_calendly_settings(
        &self,
        org: &OrganizationId,
        patch: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            crate::domain::merge_calendly_settings(s.organizations.entry(org.clone()).or_default(), patch);
        });
        Ok(())
    }
}

#[async_trait]
impl OAuthStateStore for MemoryStore {
    async fn put_oauth_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        self.with(|s| s.oauth_states.insert(state.state.clone(), state.clone()));
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

#[async_trait]
impl IntegrationStore for MemoryStore {
    async fn get_integration(&self, org: &OrganizationId) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.get(org).cloned()))
    }

    async fn get_integration_by_id(&self, id: &IntegrationId) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.values().find(|i| &i.id == id).cloned()))
    }

    async fn find_integration_by_calendly_user(&self, user_uri: &str) -> Result<Option<Integration>, StoreError> {
        Ok(self.with(|s| s.integrations.values().find(|i| i.is_active && i.calendly_user_uri == user_uri).cloned()))
    }

    async fn save_connected_integration(&self, mut integration: Integration) -> Result<Integration, StoreError> {
        Ok(self.with(|s| {
            if let Some(previous) = s.integrations.get(&integration.organization_id) {
                integration.token_version = integration.token_version.max(previous.token_version + 1);
                integration.created_at = previous.created_at;
            }
            s.integrations.insert(integration.organization_id.clone(), integration.clone());
            integration
        }))
    }

    async fn claim_calendly_user(
        &self,
        user_uri: &str,
        org: &OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|s| {
            let held_by_other = s.calendly_user_claims.get(user_uri).filter(|(owner, _)| owner != org).is_some_and(
                |(owner, claimed_at)| {
                    now - *claimed_at < CLAIM_SETTLES
                        || s.integrations.get(owner).is_some_and(|i| i.is_active && i.calendly_user_uri == user_uri)
                },
            );
            if !held_by_other {
                s.calendly_user_claims.insert(user_uri.to_string(), (org.clone(), now));
            }
            !held_by_other
        }))
    }

    async fn release_calendly_user(&self, user_uri: &str, org: &OrganizationId) -> Result<(), StoreError> {
        self.with(|s| {
            if s.calendly_user_claims.get(user_uri).is_some_and(|(owner, _)| owner == org) {
                s.calendly_user_claims.remove(user_uri);
            }
        });
        Ok(())
    }

    async fn try_acquire_refresh_lease(
        &self,
        org: &OrganizationId,
        token_version: u64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.take_refresh_lease(token_version, now, until)))
    }

    async fn store_refreshed_tokens(
        &self,
        org: &OrganizationId,
        expected_version: u64,
        tokens: TokenUpdate,
    ) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.store_refreshed_tokens(expected_version, &tokens)))
    }

    async fn release_refresh_lease(&self, org: &OrganizationId, token_version: u64) -> Result<(), StoreError> {
        self.change_integration(org, |i| i.release_refresh_lease(token_version));
        Ok(())
    }

    async fn mark_needs_reconnect(&self, org: &OrganizationId, token_version: u64) -> Result<bool, StoreError> {
        Ok(self.change_integration(org, |i| i.mark_needs_reconnect(token_version)))
    }

    async fn record_sync(
        &self,
        org: &OrganizationId,
        synced_at: Option<DateTime<Utc>>,
        next_sync_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(i) = s.integrations.get_mut(org) {
                if synced_at.is_some() {
                    i.last_synced_at = synced_at;
                }
                i.next_sync_at = Some(next_sync_at);
            }
        });
        Ok(())
    }

    async fn update_sync_settings(
        &self,
        org: &OrganizationId,
        auto_sync_enabled: bool,
        interval_minutes: u32,
        next_sync_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let found = self.change_integration(org, |i| {
            i.apply_sync_settings(auto_sync_enabled, interval_minutes, next_sync_at);
            true
        });
        if found { Ok(()) } else { Err(StoreError::NotFound) }
    }

    async fn set_booking_filter(&self, org: &OrganizationId, filter: &BookingFilter) -> Result<(), StoreError> {
        if self.with(|s| s.integrations.contains_key(org)) {
            self.change_integration(org, |i| i.set_filter(filter.clone()));
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn set_webhook(
        &self,
        org: &OrganizationId,
        subscription_uri: Option<String>,
        active: bool,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.change_integration(org, |i| i.set_webhook(subscription_uri, active, error));
        Ok(())
    }

    async fn deactivate_integration(&self, org: &OrganizationId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.change_integration(org, |i| {
            i.deactivate(now);
            true
        });
        Ok(())
    }

    async fn list_due_integrations(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Integration>, StoreError> {
        let position = |i: &Integration| {
            format!("{:020}#{}", i.next_sync_at.map_or(0, |n| n.timestamp_micros().max(0)), i.organization_id)
        };
        let mut due: Vec<Integration> = self.with(|s| {
            s.integrations
                .values()
                .filter(|i| i.is_active && !i.needs_reconnect && i.next_sync_at.is_none_or(|n| n <= now))
                .cloned()
                .collect()
        });
        due.sort_by_key(position);
        // Like the DynamoDB index, a cursor is a position: items that left the range since
        // the last page do not make it invalid.
        let after = cursor::decode(cursor)?;
        due.retain(|i| after.as_ref().is_none_or(|a| &position(i) > a));
        let limit = limit.max(1);
        let next_cursor = (due.len() > limit).then(|| cursor::encode(&position(&due[limit - 1])));
        due.truncate(limit);
        Ok(PageOf { items: due, next_cursor })
    }
}

#[async_trait]
impl BookingStore for MemoryStore {
    async fn get_booking(&self, org: &OrganizationId, invitee_uuid: &str) -> Result<Option<Booking>, StoreError> {
        Ok(self.with(|s| s.bookings.get(&(org.clone(), invitee_uuid.to_string())).cloned()))
    }

    async fn commit_booking(&self, plan: &BookingPlan) -> Result<(), CommitError> {
        let org = &plan.booking.organization_id;
        let booking_key = (org.clone(), plan.booking.id().to_string());
        self.with(|s| {
            // Check every guard before touching anything: all or nothing.
            let stored_revision = s.bookings.get(&booking_key).map(|b| b.revision);
            if stored_revision != plan.expected_revision {
                return Err(CommitConflict::BookingChanged.into());
            }
            match &plan.prospect {
                ProspectChange::Create(p) => {
                    let claim = p.email.as_ref().map(|e| (org.clone(), e.key()));
                    if claim.as_ref().is_some_and(|c| s.email_claims.contains_key(c)) {
                        return Err(CommitConflict::EmailClaimed.into());
                    }
                }
                ProspectChange::Append { prospect_id, .. } => {
                    if !s.prospects.contains_key(&(org.clone(), prospect_id.clone())) {
                        return Err(CommitConflict::ProspectMissing.into());
                    }
                }
                ProspectChange::None => {}
            }
            match &plan.prospect {
                ProspectChange::Create(p) => {
                    if let Some(email) = &p.email {
                        s.email_claims.insert((org.clone(), email.key()), p.id.clone());
                    }
                    s.prospects.insert((org.clone(), p.id.clone()), p.clone());
                }
                ProspectChange::Append { prospect_id, notes } => {
                    if let Some(p) = s.prospects.get_mut(&(org.clone(), prospect_id.clone())) {
                        p.notes.extend(notes.iter().cloned());
                        p.updated_at = plan.booking.updated_at;
                    }
                }
                ProspectChange::None => {}
            }
            if let Some(n) = &plan.notification {
                s.notifications.insert((org.clone(), n.id.clone()), n.clone());
            }
            s.bookings.insert(booking_key, plan.booking.clone());
            Ok(())
        })
    }

    async fn list_bookings(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Booking>, StoreError> {
        let mut bookings: Vec<Booking> =
            self.with(|s| s.bookings.values().filter(|b| &b.organization_id == org).cloned().collect());
        let position = |b: &Booking| format!("{}#{}", b.details.start_time.timestamp_micros(), b.id());
        bookings.sort_by_key(|b| std::cmp::Reverse(position(b)));
        paginate(bookings, position, limit, cursor)
    }

    async fn event_fingerprints(
        &self,
        org: &OrganizationId,
        event_uuids: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        Ok(self.with(|s| {
            event_uuids
                .iter()
                .filter_map(|uuid| s.fingerprints.get(&(org.clone(), uuid.clone())).map(|f| (uuid.clone(), f.clone())))
                .collect()
        }))
    }

    async fn put_event_fingerprint(
        &self,
        org: &OrganizationId,
        event_uuid: &str,
        fingerprint: &str,
    ) -> Result<(), StoreError> {
        self.with(|s| s.fingerprints.insert((org.clone(), event_uuid.to_string()), fingerprint.to_string()));
        Ok(())
    }
}

#[async_trait]
impl ProspectStore for MemoryStore {
    async fn get_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<Option<Prospect>, StoreError> {
        Ok(self.with(|s| s.prospects.get(&(org.clone(), id.clone())).cloned()))
    }

    async fn find_prospect_by_email(
        &self,
        org: &OrganizationId,
        email_key: &str,
    ) -> Result<Option<Prospect>, StoreError> {
        Ok(self.with(|s| {
            let id = s.email_claims.get(&(org.clone(), email_key.to_string()))?;
            s.prospects.get(&(org.clone(), id.clone())).cloned()
        }))
    }

    async fn create_prospect(&self, prospect: &Prospect) -> Result<(), StoreError> {
        let org = &prospect.organization_id;
        self.with(|s| {
            if let Some(email) = &prospect.email {
                let claim = (org.clone(), email.key());
                if s.email_claims.contains_key(&claim) {
                    return Err(StoreError::Conflict(format!("a prospect with email {email} already exists")));
                }
                s.email_claims.insert(claim, prospect.id.clone());
            }
            s.prospects.insert((org.clone(), prospect.id.clone()), prospect.clone());
            Ok(())
        })
    }

    async fn update_prospect(
        &self,
        org: &OrganizationId,
        id: &ProspectId,
        patch: &ProspectPatch,
        now: DateTime<Utc>,
    ) -> Result<Prospect, StoreError> {
        self.with(|s| {
            let key = (org.clone(), id.clone());
            let current = s.prospects.get(&key).ok_or(StoreError::NotFound)?.clone();
            let mut updated = current.clone();
            if let Some(new_email) = &patch.email {
                let old_key = current.email.as_ref().map(Email::key);
                let new_key = new_email.as_ref().map(Email::key);
                if new_key != old_key {
                    if let Some(k) = &new_key {
                        if s.email_claims.contains_key(&(org.clone(), k.clone())) {
                            return Err(StoreError::Conflict(format!("a prospect with email {k} already exists")));
                        }
                        s.email_claims.insert((org.clone(), k.clone()), id.clone());
                    }
                    if let Some(k) = old_key {
                        s.email_claims.remove(&(org.clone(), k));
                    }
                }
                updated.email = new_email.clone();
            }
            patch.apply_fields(&mut updated);
            updated.updated_at = now;
            s.prospects.insert(key, updated.clone());
            Ok(updated)
        })
    }

    async fn delete_prospect(&self, org: &OrganizationId, id: &ProspectId) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.prospects.remove(&(org.clone(), id.clone())) {
            Some(p) => {
                if let Some(email) = p.email {
                    s.email_claims.remove(&(org.clone(), email.key()));
                }
                true
            }
            None => false,
        }))
    }

    async fn list_prospects(
        &self,
        org: &OrganizationId,
        source: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Prospect>, StoreError> {
        let mut prospects: Vec<Prospect> = self.with(|s| {
            s.prospects
                .values()
                .filter(|p| &p.organization_id == org && source.is_none_or(|src| p.source == src))
                .cloned()
                .collect()
        });
        let position = |p: &Prospect| format!("{}#{}", p.created_at.timestamp_micros(), p.id);
        prospects.sort_by_key(|p| std::cmp::Reverse(position(p)));
        paginate(prospects, position, limit, cursor)
    }
}

#[async_trait]
impl NotificationStore for MemoryStore {
    async fn list_notifications(
        &self,
        org: &OrganizationId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<PageOf<Notification>, StoreError> {
        let notifications: Vec<Notification> =
            self.with(|s| s.notifications.values().rev().filter(|n| &n.organization_id == org).cloned().collect());
        paginate(notifications, |n| n.id.to_string(), limit, cursor)
    }

    async fn add_notification(&self, notification: &Notification) -> Result<(), StoreError> {
        self.with(|s| {
            s.notifications
                .insert((notification.organization_id.clone(), notification.id.clone()), notification.clone())
        });
        Ok(())
    }

    async fn mark_notification_read(&self, org: &OrganizationId, id: &NotificationId) -> Result<bool, StoreError> {
        Ok(self.with(|s| match s.notifications.get_mut(&(org.clone(), id.clone())) {
            Some(n) => {
                n.read = true;
                true
            }
            None => false,
        }))
    }
}

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

#[async_trait]
impl SyncJobStore for MemoryStore {
    async fn get_sync_job(&self, org: &OrganizationId) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.with(|s| s.sync_jobs.get(org).cloned()))
    }

    async fn start_sync_job(&self, job: &SyncJob, now: DateTime<Utc>) -> Result<JobStart, StoreError> {
        Ok(self.with(|s| match s.sync_jobs.get(&job.organization_id) {
            Some(current) if !job.may_replace(current, now) => JobStart::AlreadyActive(current.clone()),
            _ => {
                s.sync_jobs.insert(job.organization_id.clone(), job.clone());
                JobStart::Created(job.clone())
            }
        }))
    }

    async fn update_sync_job(
        &self,
        org: &OrganizationId,
        job_id: &str,
        change: JobChange<'_>,
    ) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.with(|s| {
            let job = s.sync_jobs.get_mut(org).filter(|j| j.id == job_id)?;
            let mut changed = job.clone();
            change(&mut changed).then(|| {
                *job = changed.clone();
                changed
            })
        }))
    }
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn get_rate_window(&self, user_uri: &str) -> Result<Option<RateWindow>, StoreError> {
        Ok(self.with(|s| s.rate_windows.get(user_uri).copied()))
    }

    async fn record_rate_window(&self, user_uri: &str, window: &RateWindow) -> Result<(), StoreError> {
        self.with(|s| {
            let stored = s.rate_windows.entry(user_uri.to_string()).or_insert(*window);
            if window.supersedes(stored) {
                *stored = *window;
            }
        });
        Ok(())
    }
}
