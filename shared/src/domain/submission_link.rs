//! The join of a routing form submission and its prospect: read and written by the
//! submission's plan and by the plan of the booking that follows it.

use super::ProspectId;

/// The join of a submission and its prospect, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionLink {
    /// The prospect the submission and its booking go to.
    pub prospect_id: ProspectId,
    /// Whether the submission's note was written.
    pub noted: bool,
}

/// How a commit writes the join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkWrite {
    /// None was read: written, failing if one was written meanwhile.
    Create {
        /// The submission's UUID.
        submission_uuid: String,
        /// The join as written.
        link: SubmissionLink,
    },
    /// The one read, still as read (its prospect unchanged), now `noted` when the plan says so.
    Update {
        /// The submission's UUID.
        submission_uuid: String,
        /// The join as read.
        read: SubmissionLink,
        /// The join as written.
        link: SubmissionLink,
    },
}
