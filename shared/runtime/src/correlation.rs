use std::fmt;

/// Follows one piece of work across HTTP, the outbox, queues and logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CorrelationId(String);

pub const HEADER: &str = "x-correlation-id";
/// The SQS message attribute (and outbox column) that carries it.
pub const ATTRIBUTE: &str = "correlation_id";

impl CorrelationId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new().to_string())
    }

    /// Accepts a caller-supplied id if it is safe to log and echo: 1-128 characters of
    /// letters, digits and `-_.:`. Anything else is replaced, never trusted.
    pub fn accept(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CorrelationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

tokio::task_local! {
    /// The correlation id of the request or message being handled on this task.
    pub static CURRENT: CorrelationId;
}

/// The current task's correlation id, if one is in scope.
pub fn current() -> Option<CorrelationId> {
    CURRENT.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_are_accepted() {
        assert!(CorrelationId::accept("req-123_abc.def:9").is_some());
        for bad in ["", "has space", "new\nline", "<script>", &"x".repeat(129)] {
            assert!(CorrelationId::accept(bad).is_none(), "{bad:?}");
        }
    }
}
