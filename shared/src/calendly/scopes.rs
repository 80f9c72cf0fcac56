//! Which OAuth scope each Calendly call needs (Calendly's 2026 scope catalog), what the
//! authorize URL asks for, and what a token response granted.
//!
//! Since 2026-03-03 a Calendly app gets nothing beyond the scopes it requests, endpoint by
//! endpoint (403 "Permission Denied" otherwise): this table is the one place that says what the
//! product needs, so the authorize URL can't ask for less than the code calls.

/// A Calendly OAuth scope the product uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `GET /users/me`.
    UsersRead,
    /// `GET /organization_memberships` (organization scope: roles and members).
    OrganizationsRead,
    /// `GET /event_types` (the booking filter's picker).
    EventTypesRead,
    /// Scheduled events and their invitees.
    ScheduledEventsRead,
    /// Marking invitees as no-shows from the CRM (implies `scheduled_events:read`).
    ScheduledEventsWrite,
    /// Routing forms and their submissions (organization scope: leads who filled a form).
    RoutingFormsRead,
    /// Webhook subscriptions: create, list, delete (implies `webhooks:read`).
    WebhooksWrite,
    /// Deleting an invitee's data at Calendly (Enterprise plans only).
    DataComplianceWrite,
}

impl Scope {
    /// Every scope the product uses, in the order the authorize URL lists them.
    pub const ALL: [Scope; 8] = [
        Self::UsersRead,
        Self::ScheduledEventsRead,
        Self::ScheduledEventsWrite,
        Self::EventTypesRead,
        Self::OrganizationsRead,
        Self::RoutingFormsRead,
        Self::WebhooksWrite,
        Self::DataComplianceWrite,
    ];

    /// The scope as Calendly spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersRead => "users:read",
            Self::OrganizationsRead => "organizations:read",
            Self::EventTypesRead => "event_types:read",
            Self::ScheduledEventsRead => "scheduled_events:read",
            Self::ScheduledEventsWrite => "scheduled_events:write",
            Self::RoutingFormsRead => "routing_forms:read",
            Self::WebhooksWrite => "webhooks:write",
            Self::DataComplianceWrite => "data_compliance:write",
        }
    }

    /// What the product can't do without it (said to the user when it is missing).
    pub fn feature(self) -> &'static str {
        match self {
            Self::UsersRead => "identify the connected Calendly user",
            Self::OrganizationsRead => "organization scope (the team's members and roles)",
            Self::EventTypesRead => "the event-type filter",
            Self::ScheduledEventsRead => "syncing bookings",
            Self::ScheduledEventsWrite => "marking no-shows from the CRM",
            Self::RoutingFormsRead => "routing-form leads (organization scope)",
            Self::WebhooksWrite => "real-time updates (webhooks); the scheduled sync still runs",
            Self::DataComplianceWrite => "erasing an invitee's data at Calendly too (Enterprise plans)",
        }
    }

    /// Needed by every connect: without it nothing works.
    pub fn is_core(self) -> bool {
        matches!(self, Self::UsersRead | Self::ScheduledEventsRead)
    }
}

/// Every Calendly API call the product makes (the OAuth token endpoints need no scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendlyCall {
    /// `GET /users/me`.
    CurrentUser,
    /// `GET /scheduled_events`.
    ListScheduledEvents,
    /// `GET /scheduled_events/{uuid}`.
    GetScheduledEvent,
    /// `GET /scheduled_events/{uuid}/invitees`.
    ListInvitees,
    /// `GET /scheduled_events/{uuid}/invitees/{uuid}`.
    GetInvitee,
    /// `GET /event_types`.
    ListEventTypes,
    /// `GET /organization_memberships`.
    ListOrganizationMemberships,
    /// `GET /webhook_subscriptions`.
    ListWebhookSubscriptions,
    /// `POST /webhook_subscriptions`.
    CreateWebhookSubscription,
    /// `DELETE /webhook_subscriptions/{uuid}`.
    DeleteWebhookSubscription,
    /// `POST /data_compliance/deletion/invitees`.
    DeleteInviteeData,
    /// `POST /invitee_no_shows`.
    CreateInviteeNoShow,
    /// `DELETE /invitee_no_shows/{uuid}`.
    DeleteInviteeNoShow,
    /// `GET /routing_forms`.
    ListRoutingForms,
    /// `GET /routing_forms/{uuid}`.
    GetRoutingForm,
    /// `GET /routing_form_submissions`.
    ListRoutingFormSubmissions,
}

impl CalendlyCall {
    /// Every call, for the union the authorize URL requests.
    pub const ALL: [CalendlyCall; 16] = [
        Self::CurrentUser,
        Self::ListScheduledEvents,
        Self::GetScheduledEvent,
        Self::ListInvitees,
        Self::GetInvitee,
        Self::ListEventTypes,
        Self::ListOrganizationMemberships,
        Self::ListWebhookSubscriptions,
        Self::CreateWebhookSubscription,
        Self::DeleteWebhookSubscription,
        Self::DeleteInviteeData,
        Self::CreateInviteeNoShow,
        Self::DeleteInviteeNoShow,
        Self::ListRoutingForms,
        Self::GetRoutingForm,
        Self::ListRoutingFormSubmissions,
    ];

    /// The scope Calendly's catalog requires for this call.
    pub fn scope(self) -> Scope {
        match self {
            Self::CurrentUser => Scope::UsersRead,
            Self::ListScheduledEvents | Self::GetScheduledEvent | Self::ListInvitees | Self::GetInvitee => {
                Scope::ScheduledEventsRead
            }
            Self::ListEventTypes => Scope::EventTypesRead,
            Self::ListOrganizationMemberships => Scope::OrganizationsRead,
            Self::ListWebhookSubscriptions | Self::CreateWebhookSubscription | Self::DeleteWebhookSubscription => {
                Scope::WebhooksWrite
            }
            Self::DeleteInviteeData => Scope::DataComplianceWrite,
            Self::CreateInviteeNoShow | Self::DeleteInviteeNoShow => Scope::ScheduledEventsWrite,
            Self::ListRoutingForms | Self::GetRoutingForm | Self::ListRoutingFormSubmissions => Scope::RoutingFormsRead,
        }
    }
}

/// The `scope` parameter of the authorize URL: exactly the union of what the calls need.
pub fn requested_scopes() -> String {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in Scope::ALL {
        if CalendlyCall::ALL.iter().any(|c| c.scope() == scope) {
            scopes.push(scope.as_str());
        }
    }
    scopes.join(" ")
}

/// What a token response's `scope` granted. Whether Calendly always sends `scope` is not
/// documented: with none, what was requested is presumed granted (a 403 then still says so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedScopes(Option<Vec<String>>);

impl GrantedScopes {
    /// Parses the space-separated `scope` of a token response (as stored on the integration).
    pub fn parse(scope: Option<&str>) -> Self {
        Self(scope.map(|s| s.split_whitespace().map(String::from).collect()))
    }

    /// Whether `scope` was granted: named, or implied (`domain:write` implies `domain:read`).
    pub fn allows(&self, scope: Scope) -> bool {
        let Some(granted) = &self.0 else { return true };
        let wanted = scope.as_str();
        let domain = wanted.split(':').next().unwrap_or_default();
        granted.iter().any(|g| g == wanted || (wanted.ends_with(":read") && *g == format!("{domain}:write")))
    }

    /// Whether the token response said `scope` was granted (named or implied); an answer
    /// without `scope` says nothing, so nothing optional is asked of it.
    pub fn says_granted(&self, scope: Scope) -> bool {
        self.0.is_some() && self.allows(scope)
    }

    /// The scopes the product uses that were not granted.
    pub fn missing(&self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| !self.allows(*s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_asks_for_every_scope_a_call_needs() {
        let requested = requested_scopes();
        for call in CalendlyCall::ALL {
            assert!(requested.split(' ').any(|s| s == call.scope().as_str()), "{call:?} needs {:?}", call.scope());
        }
        assert_eq!(
            requested,
            "users:read scheduled_events:read scheduled_events:write event_types:read organizations:read routing_forms:read webhooks:write data_compliance:write"
        );
    }

    #[test]
    fn a_write_scope_implies_its_own_read_only() {
        let granted = GrantedScopes::parse(Some("users:read scheduled_events:write"));
        assert!(granted.allows(Scope::ScheduledEventsRead));
        assert!(!granted.allows(Scope::EventTypesRead));
        assert_eq!(
            granted.missing(),
            vec![
                Scope::EventTypesRead,
                Scope::OrganizationsRead,
                Scope::RoutingFormsRead,
                Scope::WebhooksWrite,
                Scope::DataComplianceWrite
            ]
        );
    }

    #[test]
    fn no_scope_in_the_token_response_presumes_what_was_requested() {
        assert!(GrantedScopes::parse(None).missing().is_empty());
        assert_eq!(GrantedScopes::parse(Some("")).missing().len(), Scope::ALL.len());
        // Nothing optional is asked of a grant that said nothing.
        assert!(!GrantedScopes::parse(None).says_granted(Scope::RoutingFormsRead));
        assert!(GrantedScopes::parse(Some("routing_forms:read")).says_granted(Scope::RoutingFormsRead));
    }
}
