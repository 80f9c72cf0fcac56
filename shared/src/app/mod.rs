//! The product's use cases, by capability, over the ports: connect, subscription, status and
//! settings, sync jobs, webhook intake, real time, prospects, notifications, organization.
//! HTTP, Lambda and the local stack all call these; none of them holds business rules, and no
//! router reaches a port: they call what is here.

mod bookings;
mod calendly_access;
mod compose;
mod connect;
mod error;
#[cfg(test)]
mod fakes;
pub mod jobs;
mod no_show;
mod notifications;
mod organization;
mod pages;
mod privacy;
mod prospects;
mod realtime;
mod retention;
mod schedule;
mod status;
mod subscription;
pub mod webhook;

pub use bookings::Bookings;
pub use calendly_access::{CalendlyAccess, Coverage};
#[cfg(feature = "local")]
pub use compose::Services;
pub use compose::{
    Adapters, Api, FrontendUrl, ManualSync, OAuthCallback, connector_of, jwt_of, people_of, scheduler_of, sealer_of,
    worker_of,
};
pub use connect::{ConnectOutcome, ConnectStart, Connecting, ConnectingPorts};
pub use error::{AppError, ErrorCode};
pub use jobs::{JobError, JobPorts, JobTiming, Jobs, QueuedSync, Worker};
pub use no_show::NoShows;
pub use notifications::Notifications;
pub use organization::Organizations;
pub use pages::PageCursors;
pub use privacy::{Erasure, PersonalData, Privacy, PrivacyPorts, Purge};
pub use prospects::{ProspectDraft, Prospects};
pub use realtime::{Connector, forget_connection};
pub use retention::{Kept, Retention};
pub use schedule::{Scheduler, TickFailure, TickReport};
pub use status::{ConnectionStatus, EventTypeChoice, IntegrationSettings, SettingsChange, SettingsPorts};
pub use subscription::{Subscriptions, WebhookCheck};
pub use webhook::{DeliveryOutcome, IntakePorts, WebhookIntake};

use crate::domain::{Integration, OrganizationId};
use crate::store::IntegrationStore;

/// The few Calendly calls made inside a request (connect, webhook check, disconnect) may wait
/// this long for a rate-limit reset; syncs never wait (they run as jobs).
pub(crate) const MANUAL_RATE_LIMIT_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The organization's integration, if it is connected.
pub(crate) async fn active_integration(
    integrations: &dyn IntegrationStore,
    org: &OrganizationId,
) -> Result<Integration, AppError> {
    integrations.get_integration(org).await?.filter(|i| i.is_active).ok_or_else(AppError::not_connected)
}
