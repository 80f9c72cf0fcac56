//! Lists paged by authenticated cursors: what the store's position becomes on the way out and
//! is checked to be on the way in.

use crate::app::{AppError, ErrorCode};
use crate::crypto::CursorSigner;
use crate::domain::OrganizationId;
use crate::store::PageOf;

/// Signs and opens the cursors of one organization's lists.
#[derive(Clone, Debug)]
pub struct PageCursors {
    signer: CursorSigner,
}

impl PageCursors {
    /// Cursors signed by `signer`.
    pub fn new(signer: CursorSigner) -> Self {
        Self { signer }
    }

    /// The store's position in a cursor this API handed out for `list` of `org`.
    pub fn position<'a>(
        &self,
        list: &str,
        org: &OrganizationId,
        cursor: Option<&'a str>,
    ) -> Result<Option<&'a str>, AppError> {
        cursor
            .map(|c| {
                self.signer
                    .open(&scope(list, org), c)
                    .ok_or_else(|| AppError::bad_request(ErrorCode::InvalidCursor, "the cursor is not valid"))
            })
            .transpose()
    }

    /// A store page with its next cursor signed for `list` of `org`.
    pub fn signed<T>(&self, list: &str, org: &OrganizationId, page: PageOf<T>) -> PageOf<T> {
        let next_cursor = page.next_cursor.map(|c| self.signer.sign(&scope(list, org), &c));
        PageOf { next_cursor, ..page }
    }
}

/// What a cursor is bound to: the list and the organization.
fn scope(list: &str, org: &OrganizationId) -> String {
    format!("{list}\u{0}{org}")
}
