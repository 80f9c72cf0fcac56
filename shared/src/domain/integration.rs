//! An organization's Calendly connection: who connected it, its sealed tokens, its scope,
//! schedule, webhook and CRM settings, and the state transitions every store shares.

use super::*;

/// One Calendly connection of an organization (there is at most one per organization).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Integration {
    /// Its id.
    pub id: IntegrationId,
    /// The organization it belongs to.
    pub organization_id: OrganizationId,
    /// The Velvena user who connected it.
    pub connected_by: UserId,
    /// The connected Calendly user's URI.
    pub calendly_user_uri: String,
    /// That user's Calendly organization URI.
    pub calendly_organization_uri: String,
    /// That user's e-mail (never a prospect).
    pub email: String,
    /// That user's name.
    pub name: String,
    /// That user's public booking page.
    pub scheduling_url: Option<String>,
    /// The access token, sealed (AES-256-GCM, bound to this integration).
    pub access_token: Sealed,
    /// The refresh token, sealed; single-use at Calendly.
    pub refresh_token: Sealed,
    /// As Calendly gave it (`Bearer`).
    pub token_type: String,
    /// The OAuth scopes Calendly granted, if it said.
    pub scope: Option<String>,
    /// When the access token expires (refreshed ahead of it).
    pub expires_at: DateTime<Utc>,
    /// Bumped on every stored token pair: the compare-and-swap guard of refreshes.
    pub token_version: u64,
    /// A refresh in flight holds this lease; others wait for the new pair instead of refreshing.
    pub refresh_lease_until: Option<DateTime<Utc>>,
    /// The webhook subscription's Calendly URI.
    pub webhook_subscription_uri: Option<String>,
    /// Whether that subscription delivers.
    pub webhook_active: bool,
    /// Since when it delivers (the subscription's creation when Calendly says it): a booking
    /// made after this that only a sync brought is a missed delivery.
    #[serde(default)]
    pub webhook_active_since: Option<DateTime<Utc>>,
    /// Why no subscription delivers (e.g. Calendly's 403 on a plan without webhooks).
    #[serde(default)]
    pub webhook_error: Option<String>,
    /// Whether the schedule syncs it every `sync_interval_minutes`.
    pub auto_sync_enabled: bool,
    /// Minutes between scheduled syncs (`SYNC_INTERVAL_RANGE`).
    pub sync_interval_minutes: u32,
    /// Whose bookings: the connecting user's, or every member's of their Calendly organization.
    #[serde(default)]
    pub coverage: CalendlyScope,
    /// Members of the Calendly organization covered (organization scope), as last read.
    #[serde(default)]
    pub members_covered: Option<u32>,
    /// The members' own e-mails (organization scope): a member booking a colleague is no lead.
    #[serde(default)]
    pub member_emails: Vec<String>,
    /// When the member list was last read from Calendly (refreshed daily: hires and leavers).
    #[serde(default)]
    pub members_read_at: Option<DateTime<Utc>>,
    /// A scope change in progress holds this lease: another one is refused until it ends.
    #[serde(default)]
    pub scope_change_until: Option<DateTime<Utc>>,
    /// When the last sync ended successfully.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the schedule runs its next job (the scheduler's index key).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// The scheduled job last handed out (written with `next_sync_at`; see `HandedOutJob`).
    #[serde(default)]
    pub handed_out: Option<HandedOutJob>,
    /// Calendly refused the tokens for good: the user must connect again.
    pub needs_reconnect: bool,
    /// `false` once disconnected (soft delete).
    pub is_active: bool,
    /// When it was connected.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Which bookings become prospects (`PATCH /calendly/settings`).
    #[serde(default)]
    pub filter: BookingFilter,
    /// Days bookings (past their event's end) and notifications are kept; `None` keeps them.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// What a booking does to the CRM beyond its note (field map, guests).
    #[serde(default)]
    pub crm: CrmRules,
}

/// Which bookings the CRM takes: of some event types only, and never from some invitees.
/// The host's own e-mail is always left out (a host booking themselves is no lead).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingFilter {
    /// Event type URIs to take (`None`: all of them).
    pub event_types: Option<Vec<String>>,
    /// E-mail addresses, or `@domain` entries, to leave out.
    pub ignore_emails: Vec<String>,
}

impl BookingFilter {
    /// Whether an event of this type is taken at all.
    pub fn admits_event_type(&self, event_type: Option<&str>) -> bool {
        match &self.event_types {
            None => true,
            Some(types) => event_type.is_some_and(|t| types.iter().any(|x| x == t)),
        }
    }

    /// Whether a booking by `invitee_email` of an event of `event_type` becomes a prospect.
    pub fn admits(&self, host_email: &str, event_type: Option<&str>, invitee_email: &str) -> bool {
        if !self.admits_event_type(event_type) {
            return false;
        }
        let Ok(invitee) = Email::parse(invitee_email) else { return true };
        let key = invitee.key();
        let domain = key.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
        let host = Email::parse(host_email).map(|e| e.key()).ok();
        if host.as_deref() == Some(key.as_str()) {
            return false;
        }
        !self.ignore_emails.iter().any(|entry| match entry.strip_prefix('@') {
            Some(d) => Email::parse(&format!("x@{d}")).is_ok_and(|e| e.key().ends_with(&format!("@{domain}"))),
            None => Email::parse(entry).is_ok_and(|e| e.key() == key),
        })
    }
}

/// Whose Calendly account an integration connects, and who connected it.
#[derive(Clone, Debug)]
pub struct ConnectedAccount {
    /// The new integration's id.
    pub id: IntegrationId,
    /// The organization connecting.
    pub organization_id: OrganizationId,
    /// The Velvena user connecting.
    pub connected_by: UserId,
    /// The Calendly user's URI.
    pub calendly_user_uri: String,
    /// The Calendly user's organization URI.
    pub calendly_organization_uri: String,
    /// The Calendly user's e-mail.
    pub email: String,
    /// The Calendly user's name.
    pub name: String,
    /// The Calendly user's public booking page.
    pub scheduling_url: Option<String>,
}

impl Integration {
    /// Organization scope lost (the connecting user is no longer an owner or admin): back to
    /// the user's own bookings. Whether it changed anything.
    pub fn fall_back_to_user_scope(&mut self) -> bool {
        self.set_coverage(CalendlyScope::User, Vec::new(), None)
    }

    /// Whose bookings, and (organization scope) the members' e-mails as read at `read_at`.
    /// Whether it changed.
    pub fn set_coverage(
        &mut self,
        coverage: CalendlyScope,
        member_emails: Vec<String>,
        read_at: Option<DateTime<Utc>>,
    ) -> bool {
        self.members_read_at = read_at.filter(|_| coverage == CalendlyScope::Organization);
        let member_emails = if coverage == CalendlyScope::User { Vec::new() } else { member_emails };
        let members_covered =
            (coverage == CalendlyScope::Organization).then(|| u32::try_from(member_emails.len()).unwrap_or(u32::MAX));
        let changed = self.coverage != coverage || self.member_emails != member_emails;
        self.coverage = coverage;
        self.members_covered = members_covered;
        self.member_emails = member_emails;
        changed
    }

    /// Whether a booking by `invitee_email` of `event_type` becomes a prospect: the filter,
    /// and never the host's own e-mail, nor (organization scope) any member's.
    pub fn admits(&self, event_host: Option<&str>, event_type: Option<&str>, invitee_email: &str) -> bool {
        std::iter::once(self.email.as_str())
            .chain(self.member_emails.iter().map(String::as_str))
            .chain(event_host)
            .all(|host| self.filter.admits(host, event_type, invitee_email))
    }

    /// A newly connected integration: active, healthy, auto-syncing every
    /// `DEFAULT_SYNC_INTERVAL_MINUTES` and due now, no subscription yet, tokens still to seal
    /// (their sealing context names the integration).
    pub fn connected(account: ConnectedAccount, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            id: account.id,
            organization_id: account.organization_id,
            connected_by: account.connected_by,
            calendly_user_uri: account.calendly_user_uri,
            calendly_organization_uri: account.calendly_organization_uri,
            email: account.email,
            name: account.name,
            scheduling_url: account.scheduling_url,
            access_token: Sealed::from_stored(String::new()),
            refresh_token: Sealed::from_stored(String::new()),
            token_type: "Bearer".into(),
            scope: None,
            expires_at,
            token_version: 1,
            refresh_lease_until: None,
            webhook_subscription_uri: None,
            webhook_active: false,
            webhook_active_since: None,
            webhook_error: None,
            auto_sync_enabled: true,
            sync_interval_minutes: DEFAULT_SYNC_INTERVAL_MINUTES,
            coverage: CalendlyScope::User,
            members_covered: None,
            member_emails: Vec::new(),
            members_read_at: None,
            scope_change_until: None,
            last_synced_at: None,
            next_sync_at: Some(now),
            handed_out: None,
            needs_reconnect: false,
            is_active: true,
            created_at: now,
            updated_at: now,
            filter: BookingFilter::default(),
            retention_days: None,
            crm: CrmRules::default(),
        }
    }
}

/// A freshly obtained token pair, sealed.
#[derive(Clone, Debug)]
pub struct TokenUpdate {
    /// The new access token, sealed.
    pub access_token: Sealed,
    /// The new refresh token, sealed (the old one is spent).
    pub refresh_token: Sealed,
    /// When the new access token expires.
    pub expires_at: DateTime<Utc>,
}

/// The integration's state transitions, shared by every store (each store decides how to make
/// them atomic). Those returning `bool` say whether anything changed.
impl Integration {
    /// Takes the last sync a job recorded (scheduled jobs record theirs on the job item only,
    /// sparing the integration item a write per sync): `last_synced_at` is the later of both.
    pub fn with_sync_of(mut self, job: Option<&SyncJob>) -> Self {
        self.last_synced_at = self.last_synced_at.max(job.and_then(|j| j.synced_at));
        self
    }

    /// Takes the refresh lease if nobody holds a live one and the tokens are still `token_version`.
    pub fn take_refresh_lease(&mut self, token_version: u64, now: DateTime<Utc>, until: DateTime<Utc>) -> bool {
        let free = self.refresh_lease_until.is_none_or(|l| l <= now);
        let taken = self.token_version == token_version && free;
        if taken {
            self.refresh_lease_until = Some(until);
        }
        taken
    }

    /// Stores a refreshed pair if the tokens are still `expected_version`; frees the lease.
    pub fn store_refreshed_tokens(&mut self, expected_version: u64, tokens: &TokenUpdate) -> bool {
        if self.token_version != expected_version {
            return false;
        }
        self.access_token = tokens.access_token.clone();
        self.refresh_token = tokens.refresh_token.clone();
        self.expires_at = tokens.expires_at;
        self.token_version += 1;
        self.refresh_lease_until = None;
        self.needs_reconnect = false;
        true
    }

    /// Frees the lease after a failed refresh (if the tokens are still `token_version`).
    pub fn release_refresh_lease(&mut self, token_version: u64) -> bool {
        let ours = self.token_version == token_version && self.refresh_lease_until.is_some();
        if ours {
            self.refresh_lease_until = None;
        }
        ours
    }

    /// Takes the scope-change lease until `until` (`None`: releases it). Taking fails while
    /// another change holds a live one.
    pub fn set_scope_lease(&mut self, now: DateTime<Utc>, until: Option<DateTime<Utc>>) -> bool {
        if until.is_some() && self.scope_change_until.is_some_and(|held| held > now) {
            return false;
        }
        self.scope_change_until = until;
        true
    }

    /// The refresh token of `token_version` is dead: the user must reconnect.
    /// Returns whether this call marked it (false when another version or already marked).
    pub fn mark_needs_reconnect(&mut self, token_version: u64) -> bool {
        // A disconnected integration lost its access on purpose (its tokens were revoked by
        // the disconnect): nobody is to be told to reconnect it.
        let marks = self.is_active && self.token_version == token_version && !self.needs_reconnect;
        if marks {
            self.needs_reconnect = true;
            self.refresh_lease_until = None;
        }
        marks
    }

    /// Auto-sync settings (and the next due time when given).
    pub fn apply_sync_settings(
        &mut self,
        auto_sync_enabled: bool,
        interval_minutes: u32,
        next_sync_at: Option<DateTime<Utc>>,
    ) {
        self.auto_sync_enabled = auto_sync_enabled;
        self.sync_interval_minutes = interval_minutes;
        if next_sync_at.is_some() {
            self.next_sync_at = next_sync_at;
        }
    }

    /// Which bookings become prospects from now on.
    /// How long what came from Calendly is kept. Whether it changed.
    pub fn set_retention(&mut self, days: Option<u32>) -> bool {
        let changed = self.retention_days != days;
        self.retention_days = days;
        changed
    }

    /// The field map and the guests rule. Whether it changed.
    pub fn set_crm_rules(&mut self, rules: CrmRules) -> bool {
        let changed = self.crm != rules;
        self.crm = rules;
        changed
    }

    /// The field map in force (the organization's, else the default of its scope).
    pub fn field_map(&self) -> FieldMap {
        self.crm.field_map_for(self.coverage)
    }

    /// Which bookings become prospects. Whether it changed.
    pub fn set_filter(&mut self, filter: BookingFilter) -> bool {
        let changed = self.filter != filter;
        self.filter = filter;
        changed
    }

    /// The webhook subscription's URI and state, and why there is none when that is known;
    /// `since`: when it started delivering (kept while the same subscription stays active).
    pub fn set_webhook(
        &mut self,
        subscription_uri: Option<String>,
        active: bool,
        error: Option<String>,
        since: DateTime<Utc>,
    ) -> bool {
        let same_delivering = self.webhook_active && active && self.webhook_subscription_uri == subscription_uri;
        let active_since = match (active, same_delivering) {
            (false, _) => None,
            (true, true) => self.webhook_active_since.or(Some(since)),
            (true, false) => Some(since),
        };
        let changed = self.webhook_subscription_uri != subscription_uri
            || self.webhook_active != active
            || self.webhook_error != error
            || self.webhook_active_since != active_since;
        self.webhook_active_since = active_since;
        self.webhook_subscription_uri = subscription_uri;
        self.webhook_active = active;
        self.webhook_error = error;
        changed
    }

    /// Soft delete.
    pub fn deactivate(&mut self, now: DateTime<Utc>) {
        self.is_active = false;
        self.webhook_active = false;
        self.webhook_active_since = None;
        self.webhook_subscription_uri = None;
        self.updated_at = now;
    }
}

/// With auto-sync off, the schedule still checks the webhook subscription this often.
pub const WEBHOOK_CHECK_INTERVAL_MINUTES: u32 = 24 * 60;

impl Integration {
    /// Minutes until the schedule's next job for it: a sync, or with auto-sync off only the
    /// webhook subscription's check.
    pub fn schedule_interval_minutes(&self) -> u32 {
        if self.auto_sync_enabled { self.sync_interval_minutes } else { WEBHOOK_CHECK_INTERVAL_MINUTES }
    }
}

/// The default interval between scheduled syncs.
pub const DEFAULT_SYNC_INTERVAL_MINUTES: u32 = 30;
/// The allowed range of `sync_interval_minutes`.
pub const SYNC_INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 5..=1440;
