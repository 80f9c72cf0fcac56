//! The French text the CRM shows for Calendly activity: prospect notes and notification messages.
//! Dates are written in the organization's timezone as `DD/MM/YYYY HH:MM:SS`.

use chrono::{DateTime, FixedOffset, Offset, Utc};
use jiff::tz::TimeZone;

/// The timezone used when an organization has none (or an unknown one) in its settings.
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";

/// The IANA timezone `name`, from the tz database compiled into the binary (the same on
/// every host, whatever its own `/usr/share/zoneinfo` holds).
pub fn timezone(name: &str) -> Option<TimeZone> {
    TimeZone::get(name).ok()
}

/// Europe/Paris (in every tz database there is).
fn default_timezone() -> TimeZone {
    timezone(DEFAULT_TIMEZONE).unwrap_or(TimeZone::UTC)
}

/// Text as one line: a note's details are one per line, and a blank line separates notes.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Shown where Calendly gives an event no name.
const UNNAMED_EVENT: &str = "Rendez-vous";

/// How one organization's notes are written: its timezone, and whether an appointment note
/// carries the booking's details on the lines after its first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteStyle {
    timezone: TimeZone,
    details: bool,
}

impl Default for NoteStyle {
    fn default() -> Self {
        Self { timezone: default_timezone(), details: true }
    }
}

impl NoteStyle {
    /// A style for an IANA timezone name; unknown names fall back to Europe/Paris.
    pub fn for_timezone(name: Option<&str>) -> Self {
        let timezone = name.and_then(timezone).unwrap_or_else(default_timezone);
        Self { timezone, details: true }
    }

    /// The same style, with or without the detail lines (`settings.calendly_note_details`).
    pub fn with_details(self, details: bool) -> Self {
        Self { details, ..self }
    }

    /// An appointment note followed (one line each) by what helps a salesperson: the
    /// invitee's answers, where the booking came from, the meeting link.
    pub fn with_booking_details(&self, first_line: String, booking: &super::BookingSnapshot) -> String {
        let mut note = self.with_answers(first_line, &booking.questions, &booking.tracking);
        if let Some(url) = booking.join_url.as_ref().filter(|_| self.details) {
            note.push_str(&format!("\nLien de la réunion : {}", one_line(url)));
        }
        note
    }

    /// A note followed (one line each) by the answers given and where they came from (the
    /// UTM parameters), unless the organization keeps first lines only.
    pub fn with_answers(
        &self,
        first_line: String,
        answers: &[super::QuestionAnswer],
        tracking: &super::Tracking,
    ) -> String {
        let mut lines = vec![first_line];
        if self.details {
            for qa in answers {
                lines.push(format!("{} : {}", one_line(&qa.question), one_line(&qa.answer)));
            }
            let utm = tracking.present();
            if !utm.is_empty() {
                let parts: Vec<String> = utm.iter().map(|(k, v)| format!("{k}={}", one_line(v))).collect();
                lines.push(format!("Provenance : {}", parts.join(", ")));
            }
        }
        lines.join("\n")
    }

    /// A cancellation note followed by its reason, when the invitee or host gave one.
    pub fn with_cancel_reason(&self, first_line: String, booking: &super::BookingSnapshot) -> String {
        match booking.cancel_reason.as_deref().map(str::trim).filter(|r| !r.is_empty() && self.details) {
            Some(reason) => format!("{first_line}\nMotif : {}", one_line(reason)),
            None => first_line,
        }
    }

    /// `16/01/2026 16:30:00` in the organization's timezone.
    pub fn date(&self, at: DateTime<Utc>) -> String {
        // The zone's offset at that instant (DST included), then chrono's formatting.
        let offset = jiff::Timestamp::from_second(at.timestamp())
            .map(|instant| self.timezone.to_offset(instant).seconds())
            .unwrap_or(0);
        let offset = FixedOffset::east_opt(offset).unwrap_or_else(|| Utc.fix());
        at.with_timezone(&offset).format("%d/%m/%Y %H:%M:%S").to_string()
    }

    /// The note for a new booking.
    pub fn booked(&self, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("Rendez-vous Calendly prévu le {} - {}", self.date(start), name(event_name))
    }

    /// The note for a booking that replaced an earlier one (a reschedule).
    pub fn rescheduled(&self, new_start: DateTime<Utc>, old_start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!(
            "Rendez-vous Calendly reporté au {} (initialement le {}) - {}",
            self.date(new_start),
            self.date(old_start),
            name(event_name)
        )
    }

    /// The note for a canceled booking (not a reschedule).
    pub fn canceled(&self, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("Rendez-vous Calendly annulé ({}) - {}", self.date(start), name(event_name))
    }

    /// The note for an invitee marked as a no-show.
    pub fn no_show(&self, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("Absence au rendez-vous Calendly du {} - {}", self.date(start), name(event_name))
    }

    /// The note on a guest's prospect: invited to the meeting by its invitee.
    pub fn guest(&self, start: DateTime<Utc>, event_name: Option<&str>, invitee: &str) -> String {
        format!(
            "Invité(e) au rendez-vous Calendly prévu le {} - {} (par {invitee})",
            self.date(start),
            name(event_name)
        )
    }

    /// The notification message for a booking: `John Doe a réservé un rendez-vous "X" le ...`.
    pub fn booked_message(&self, invitee: &str, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("{invitee} a réservé un rendez-vous \"{}\" le {}", name(event_name), self.date(start))
    }

    /// The notification message for a reschedule.
    pub fn rescheduled_message(&self, invitee: &str, new_start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("{invitee} a reporté le rendez-vous \"{}\" au {}", name(event_name), self.date(new_start))
    }

    /// The notification message for a cancellation.
    pub fn canceled_message(&self, invitee: &str, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("{invitee} a annulé le rendez-vous \"{}\" du {}", name(event_name), self.date(start))
    }

    /// The notification message for a no-show.
    pub fn no_show_message(&self, invitee: &str, start: DateTime<Utc>, event_name: Option<&str>) -> String {
        format!("{invitee} ne s'est pas présenté au rendez-vous \"{}\" du {}", name(event_name), self.date(start))
    }
}

fn name(event_name: Option<&str>) -> &str {
    event_name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(UNNAMED_EVENT)
}

/// Notes are stored as a list of entries and shown as one string, entries joined by a blank line.
pub fn render_notes(entries: &[String]) -> String {
    entries.join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn booked_note_is_written_in_paris_time_by_default() {
        let note = NoteStyle::default().booked(utc("2026-01-16T15:30:00.000000Z"), Some("Découverte 30min"));
        assert_eq!(note, "Rendez-vous Calendly prévu le 16/01/2026 16:30:00 - Découverte 30min");
    }

    #[test]
    fn summer_time_shifts_paris_by_two_hours() {
        let style = NoteStyle::for_timezone(Some("Europe/Paris"));
        assert_eq!(style.date(utc("2026-07-01T08:00:00Z")), "01/07/2026 10:00:00");
        // The night the clocks go forward (29 March 2026, 01:00 UTC).
        assert_eq!(style.date(utc("2026-03-29T00:59:59Z")), "29/03/2026 01:59:59");
        assert_eq!(style.date(utc("2026-03-29T01:00:00Z")), "29/03/2026 03:00:00");
    }

    #[test]
    fn organization_timezone_changes_the_written_date() {
        let style = NoteStyle::for_timezone(Some("America/New_York"));
        assert_eq!(style.date(utc("2026-01-16T03:30:00Z")), "15/01/2026 22:30:00");
        let legacy_alias = NoteStyle::for_timezone(Some("Asia/Calcutta"));
        assert_eq!(legacy_alias.date(utc("2026-01-16T00:00:00Z")), "16/01/2026 05:30:00");
    }

    #[test]
    fn unknown_timezone_falls_back_to_paris() {
        assert_eq!(NoteStyle::for_timezone(Some("Mars/Olympus")), NoteStyle::default());
    }

    #[test]
    fn reschedule_and_cancel_notes_name_both_dates() {
        let style = NoteStyle::default();
        assert_eq!(
            style.rescheduled(utc("2026-01-17T09:00:00Z"), utc("2026-01-16T15:30:00Z"), Some("Découverte 30min")),
            "Rendez-vous Calendly reporté au 17/01/2026 10:00:00 (initialement le 16/01/2026 16:30:00) - Découverte 30min"
        );
        assert_eq!(
            style.canceled(utc("2026-01-16T15:30:00Z"), Some("Découverte 30min")),
            "Rendez-vous Calendly annulé (16/01/2026 16:30:00) - Découverte 30min"
        );
        assert_eq!(
            style.booked_message("John Doe", utc("2026-01-16T15:30:00Z"), Some("Découverte 30min")),
            "John Doe a réservé un rendez-vous \"Découverte 30min\" le 16/01/2026 16:30:00"
        );
    }

    #[test]
    fn notes_are_joined_by_a_blank_line() {
        assert_eq!(render_notes(&["a".into(), "b".into()]), "a\n\nb");
        assert_eq!(render_notes(&[]), "");
    }
}
