//! Causes kept, not flattened: an error holds its cause as `source()`, and the one place that
//! logs it writes the whole chain.

/// Any cause an adapter's error may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `error` and each of its causes, joined with `: ` (what a log line shows).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let next_text = next.to_string();
        // Some errors repeat their causes in their own text: said once.
        if !text.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let error = Outer(std::io::Error::other("refused"));
        assert_eq!(chain(&error), "outer: refused");
    }
}
