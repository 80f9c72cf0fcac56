//! How much of what an invitee typed the CRM keeps. Anyone with a public booking link can send
//! 100 KB answers: unbounded, they would push a prospect past DynamoDB's 400 KB item limit and
//! break every later write about them. Text past a bound is cut (at a character boundary, with
//! a marker), never refused: the booking still counts.

/// Names (invitee, first, last, host, who canceled).
pub const NAME_BYTES: usize = 200;
/// An e-mail address as given (a valid one is at most 254 bytes).
pub const EMAIL_BYTES: usize = 320;
/// A phone number.
pub const PHONE_BYTES: usize = 40;
/// A time zone name.
pub const TIMEZONE_BYTES: usize = 64;
/// An event's name.
pub const EVENT_NAME_BYTES: usize = 200;
/// A location, a meeting link, a URI.
pub const LOCATION_BYTES: usize = 1_000;
/// A cancellation reason.
pub const REASON_BYTES: usize = 1_000;
/// A booking question.
pub const QUESTION_BYTES: usize = 300;
/// An answer to a booking question.
pub const ANSWER_BYTES: usize = 1_000;
/// Answers kept per booking (event types ask at most ten custom questions).
pub const MAX_ANSWERS: usize = 20;
/// Guests kept per booking (Calendly allows up to ten).
pub const MAX_GUESTS: usize = 20;
/// A UTM value.
pub const UTM_BYTES: usize = 200;
/// One note entry, its detail lines included.
pub const NOTE_ENTRY_BYTES: usize = 2_000;
/// Note entries kept inline on a prospect: at most 32 × 2 KB = 64 KB. Past it, the list is
/// rewritten with its newest half, the older entries summed up in one first entry (each
/// booking keeps its own details); the headroom keeps the next writes plain appends, which
/// never contend with each other.
pub const MAX_INLINE_NOTES: usize = 32;

/// What a cut ends with.
const MARKER: &str = "…";

/// `text` within `max_bytes` (UTF-8), cut at a character boundary and marked when longer.
pub fn clip(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes.saturating_sub(MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARKER}", &text[..end])
}

/// The same for an optional value.
pub fn clip_opt(text: &Option<String>, max_bytes: usize) -> Option<String> {
    text.as_deref().map(|t| clip(t, max_bytes))
}

/// A prospect's notes after `new` ones are added: all of them within `MAX_INLINE_NOTES`, else
/// the newest half of that, after one first entry saying how many older ones were dropped.
pub fn notes_after(existing: &[String], new: &[String]) -> Vec<String> {
    let all: Vec<&String> = existing.iter().chain(new).collect();
    if all.len() <= MAX_INLINE_NOTES {
        return all.into_iter().cloned().collect();
    }
    let previously_dropped = existing.first().and_then(|n| dropped_count(n)).unwrap_or(0);
    let real: Vec<&String> = all.into_iter().filter(|n| dropped_count(n).is_none()).collect();
    let keep = (MAX_INLINE_NOTES / 2 - 1).max(new.len());
    let dropped = previously_dropped + real.len().saturating_sub(keep);
    let mut notes = vec![dropped_note(dropped)];
    notes.extend(real[real.len().saturating_sub(keep)..].iter().map(|n| (*n).clone()));
    notes
}

const DROPPED_PREFIX: &str = "Notes Calendly plus anciennes : ";
const DROPPED_SUFFIX: &str = " (détail dans les rendez-vous Calendly)";

fn dropped_note(count: usize) -> String {
    format!("{DROPPED_PREFIX}{count}{DROPPED_SUFFIX}")
}

fn dropped_count(note: &str) -> Option<usize> {
    note.strip_prefix(DROPPED_PREFIX)?.strip_suffix(DROPPED_SUFFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary_with_a_marker() {
        assert_eq!(clip("court", 10), "court");
        let cut = clip(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
        assert_eq!(cut, format!("{}…", "é".repeat(4)));
    }

    #[test]
    fn notes_keep_the_newest_and_count_the_dropped() {
        let existing: Vec<String> = (0..32).map(|i| format!("note {i}")).collect();
        let after = notes_after(&existing, &["note 32".into(), "note 33".into()]);
        assert_eq!(after.len(), MAX_INLINE_NOTES / 2);
        assert_eq!(after[0], dropped_note(19));
        assert_eq!(after[1], "note 19");
        assert_eq!(after.last().unwrap(), "note 33");
        // Appends fit again until the bound; then dropping adds to the count.
        let mut notes = after;
        for i in 34..50 {
            notes = notes_after(&notes, &[format!("note {i}")]);
        }
        assert_eq!(notes.len(), MAX_INLINE_NOTES);
        let again = notes_after(&notes, &["note 50".into()]);
        assert_eq!(again[0], dropped_note(36));
        assert_eq!(again[1], "note 36");
        assert_eq!(again.len(), MAX_INLINE_NOTES / 2);
    }
}
