//! Routing-form leads: a submission whose answers hold an e-mail creates or enriches a prospect
//! with one note, and the booking that follows the same submission joins that prospect
//! (whatever e-mail it was made with), whichever of the two arrives first.
//!
//! The join is one item per submission (`SubmissionLink`): written by whichever comes first
//! (the submission with `noted`, or the booking without), under a condition, so the other
//! finds it; the note is written with `noted` flipping, so it is written once.

use super::booking::ProspectChange;
use super::bounds::{self, clip};
use super::snapshot::{QuestionAnswer, Tracking};
pub use super::submission_link::{LinkWrite, SubmissionLink};
use super::{Email, NoteStyle, OrganizationId, Prospect};
use chrono::{DateTime, Utc};

/// What Calendly says of one routing form submission.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmissionSnapshot {
    /// The submission's UUID (the join's key).
    pub uuid: String,
    /// The form's name, when known.
    pub form_name: Option<String>,
    /// The answers, in the form's order (unanswered ones left out).
    pub answers: Vec<QuestionAnswer>,
    /// The form link's UTM parameters.
    pub tracking: Tracking,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
}

impl SubmissionSnapshot {
    /// The submitter's e-mail: the answer to a question about an e-mail, else the first answer
    /// that is one.
    pub fn email(&self) -> Option<Email> {
        let about_email = |qa: &&QuestionAnswer| {
            let q = qa.question.to_lowercase();
            q.contains("mail") || q.contains("courriel")
        };
        let parsed = |qa: &QuestionAnswer| Email::parse(qa.answer.trim()).ok();
        self.answers.iter().filter(about_email).find_map(parsed).or_else(|| self.answers.iter().find_map(parsed))
    }

    /// Within the CRM's bounds.
    pub fn bounded(mut self) -> Self {
        self.form_name = bounds::clip_opt(&self.form_name, bounds::EVENT_NAME_BYTES);
        self.answers.truncate(bounds::MAX_ANSWERS);
        for qa in &mut self.answers {
            qa.question = clip(&qa.question, bounds::QUESTION_BYTES);
            qa.answer = clip(&qa.answer, bounds::ANSWER_BYTES);
        }
        self
    }
}

/// Everything one submission writes, at once.
#[derive(Clone, Debug)]
pub struct SubmissionPlan {
    /// The organization.
    pub organization_id: OrganizationId,
    /// The integration it came through (the commit holds only while it is the active one).
    pub integration_id: super::IntegrationId,
    /// The prospect's change: created, or the note appended.
    pub prospect: ProspectChange,
    /// The join.
    pub link: LinkWrite,
    /// The submitter as the privacy index knows them: refused if suppressed.
    pub person: Option<super::PersonKeys>,
    /// When it is written.
    pub at: DateTime<Utc>,
}

/// What is read before planning a submission.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownForSubmission<'a> {
    /// The join, if the booking (or this submission) wrote it.
    pub link: Option<&'a SubmissionLink>,
    /// The join's prospect, as read (`None`: deleted, or no join).
    pub linked_prospect: Option<&'a Prospect>,
    /// The prospect holding the submitter's e-mail.
    pub prospect_with_email: Option<&'a Prospect>,
}

/// The note of a submission: `Formulaire Calendly « X » envoyé le …`, then its answers and
/// UTM fields (unless the organization keeps first lines only, as for bookings).
pub fn submission_note(snapshot: &SubmissionSnapshot, style: &NoteStyle) -> String {
    let name = snapshot.form_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or("sans nom");
    let first_line = format!("Formulaire Calendly « {name} » envoyé le {}", style.date(snapshot.created_at));
    clip(&style.with_answers(first_line, &snapshot.answers, &snapshot.tracking), bounds::NOTE_ENTRY_BYTES)
}

/// Decides what a submission writes; `None` when its note is written already, or when it
/// names nobody (no e-mail, and no booking joined it first).
pub fn plan_submission(
    organization_id: &OrganizationId,
    integration_id: &super::IntegrationId,
    snapshot: &SubmissionSnapshot,
    known: KnownForSubmission<'_>,
    style: &NoteStyle,
    now: DateTime<Utc>,
) -> Option<SubmissionPlan> {
    if known.link.is_some_and(|l| l.noted) {
        return None;
    }
    let note = submission_note(snapshot, style);
    // The booking came first: its prospect, while it exists; else the submitter's e-mail.
    let target = known.linked_prospect.or(known.prospect_with_email);
    let prospect = match target {
        Some(existing) => ProspectChange::append_to_prospect(existing, vec![note]),
        None => {
            let email = snapshot.email()?;
            ProspectChange::Create(Prospect::from_calendly(organization_id, email, (None, None), vec![note], now))
        }
    };
    let prospect_id = prospect.prospect_id()?.clone();
    let link = SubmissionLink { prospect_id, noted: true };
    let link = match known.link {
        Some(read) => LinkWrite::Update { submission_uuid: snapshot.uuid.clone(), read: read.clone(), link },
        None => LinkWrite::Create { submission_uuid: snapshot.uuid.clone(), link },
    };
    Some(SubmissionPlan {
        organization_id: organization_id.clone(),
        integration_id: integration_id.clone(),
        prospect,
        link,
        person: None,
        at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(answers: &[(&str, &str)]) -> SubmissionSnapshot {
        SubmissionSnapshot {
            uuid: "S1".into(),
            form_name: Some("Qualification".into()),
            answers: answers
                .iter()
                .map(|(q, a)| QuestionAnswer { question: q.to_string(), answer: a.to_string() })
                .collect(),
            tracking: Tracking::default(),
            created_at: "2026-01-16T15:30:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_email_is_the_answer_about_an_email_else_the_first_that_is_one() {
        let s = submission(&[("Nom", "Ada"), ("Contact", "x@example.com"), ("Votre e-mail", "Ada@Example.com")]);
        assert_eq!(s.email().map(|e| e.key()).as_deref(), Some("ada@example.com"));
        let s = submission(&[("Nom", "Ada"), ("Contact", "x@example.com")]);
        assert_eq!(s.email().map(|e| e.key()).as_deref(), Some("x@example.com"));
        assert!(submission(&[("Nom", "Ada")]).email().is_none());
    }

    #[test]
    fn a_submission_creates_joins_or_waits_and_is_noted_once() {
        let (org, int) = (OrganizationId::new("o"), super::super::IntegrationId::new("i"));
        let style = NoteStyle::default();
        let now = Utc::now();
        let s = submission(&[("Entreprise", "Acme"), ("Email", "ada@example.com")]);
        let plan = plan_submission(&org, &int, &s, KnownForSubmission::default(), &style, now).unwrap();
        let ProspectChange::Create(p) = &plan.prospect else { panic!("{:?}", plan.prospect) };
        assert_eq!(
            p.notes,
            vec![
                "Formulaire Calendly « Qualification » envoyé le 16/01/2026 16:30:00\nEntreprise : Acme\nEmail : ada@example.com"
            ]
        );
        assert!(matches!(&plan.link, LinkWrite::Create { link, .. } if link.noted && link.prospect_id == p.id));
        // An organization keeping first lines only gets no answers in form notes either.
        let brief = submission_note(&s, &NoteStyle::default().with_details(false));
        assert_eq!(brief, "Formulaire Calendly « Qualification » envoyé le 16/01/2026 16:30:00");

        // The booking came first and joined its own prospect: the note goes there, once.
        let booked = p.clone();
        let read = SubmissionLink { prospect_id: booked.id.clone(), noted: false };
        let known = KnownForSubmission { link: Some(&read), linked_prospect: Some(&booked), prospect_with_email: None };
        let plan = plan_submission(&org, &int, &s, known, &style, now).unwrap();
        assert!(matches!(&plan.prospect, ProspectChange::Append { prospect_id, .. } if *prospect_id == booked.id));
        let noted = SubmissionLink { noted: true, ..read.clone() };
        let known =
            KnownForSubmission { link: Some(&noted), linked_prospect: Some(&booked), prospect_with_email: None };
        assert!(plan_submission(&org, &int, &s, known, &style, now).is_none(), "noted once");

        // No e-mail and nobody joined: nothing to write.
        let anonymous = submission(&[("Entreprise", "Acme")]);
        assert!(plan_submission(&org, &int, &anonymous, KnownForSubmission::default(), &style, now).is_none());
    }
}
