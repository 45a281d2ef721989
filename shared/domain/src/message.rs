//! A message's status (`messages.status`) and how provider reports may move it.

crate::text_enum! {
    /// Where a message stands.
    pub enum MessageStatus {
        /// Recorded by the gate; the provider has not (yet) taken it.
        Queued = "queued",
        /// The provider took it.
        Sent = "sent",
        /// The carrier (or mail server) delivered it.
        Delivered = "delivered",
        /// It will not arrive (refused, bounced, undeliverable).
        Failed = "failed",
        /// An inbound message.
        Received = "received",
        /// The gate refused it.
        Blocked = "blocked",
    }
}

impl MessageStatus {
    /// How far along an outbound message is (`None`: not on the way out).
    fn rank(self) -> Option<u8> {
        match self {
            MessageStatus::Queued => Some(0),
            MessageStatus::Sent => Some(1),
            MessageStatus::Delivered | MessageStatus::Failed => Some(2),
            MessageStatus::Received | MessageStatus::Blocked => None,
        }
    }

    /// Whether a provider's report of `self` moves a message that is `current`: a receipt
    /// never moves a message backwards (a late `sent` after `delivered` is recorded as
    /// nothing), and only an outbound status is reported.
    pub fn advances(self, current: MessageStatus) -> bool {
        match (self.rank(), current.rank()) {
            (Some(new), Some(now)) => new > now,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The statuses a mail provider's report of `self` may move a message from.
    pub fn reported_from(self) -> &'static [MessageStatus] {
        match self {
            MessageStatus::Sent => &[MessageStatus::Queued],
            MessageStatus::Delivered | MessageStatus::Failed => &[MessageStatus::Queued, MessageStatus::Sent],
            MessageStatus::Queued | MessageStatus::Received | MessageStatus::Blocked => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;

    #[test]
    fn receipts_only_move_forwards() {
        assert!(Sent.advances(Queued));
        assert!(Delivered.advances(Sent));
        assert!(Failed.advances(Queued));
        assert!(!Sent.advances(Delivered));
        assert!(!Delivered.advances(Failed));
        assert!(!Delivered.advances(Delivered));
        assert!(!Received.advances(Queued));
    }

    #[test]
    fn mail_reports_move_from_earlier_statuses_only() {
        assert_eq!(Sent.reported_from(), &[Queued]);
        assert_eq!(Failed.reported_from(), &[Queued, Sent]);
        assert!(Received.reported_from().is_empty());
    }
}
