//! The signature request's status and the only transitions it may make (DESIGN.md §2).
//!
//! ```text
//! pending ──send──▶ sent ──first open──▶ opened ──last signature──▶ awaiting_stamp ──seal ok──▶ signed
//!    │                │                    │                             └──seal fails──▶ stamp_failed ──retry──▶ awaiting_stamp
//!    └────────────────┴────────────────────┴──▶ declined | cancelled | expired
//! ```

use chrono::{DateTime, Utc};

use crate::model::wire_enum;

wire_enum!(
    /// Where a signature request stands (`expired` is computed on read once `expires_at` has
    /// passed).
    RequestStatus {
        Pending = "pending",
        Sent = "sent",
        Opened = "opened",
        AwaitingStamp = "awaiting_stamp",
        Signed = "signed",
        StampFailed = "stamp_failed",
        Declined = "declined",
        Cancelled = "cancelled",
        Expired = "expired",
    }
);

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The invitations went out (or the links were handed to the integrator).
    Send,
    /// A signer opened the request for the first time.
    Open,
    /// The last missing signature arrived.
    LastSignature,
    /// The sealed document was stored.
    SealSucceeded,
    /// Sealing failed for the last time.
    SealFailed,
    /// Someone asked to try sealing again.
    RetrySeal,
    /// A signer declined.
    Decline,
    /// The sender cancelled.
    Cancel,
    /// `expires_at` passed.
    Expire,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::Send,
        Action::Open,
        Action::LastSignature,
        Action::SealSucceeded,
        Action::SealFailed,
        Action::RetrySeal,
        Action::Decline,
        Action::Cancel,
        Action::Expire,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a request that is '{from}' cannot be {}", action.past_tense())]
pub struct IllegalTransition {
    pub from: RequestStatus,
    pub action: Action,
}

impl Action {
    /// "cancelled", "sent", …: for messages.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Send => "sent",
            Action::Open => "opened",
            Action::LastSignature => "signed",
            Action::SealSucceeded | Action::SealFailed => "sealed",
            Action::RetrySeal => "retried",
            Action::Decline => "declined",
            Action::Cancel => "cancelled",
            Action::Expire => "expired",
        }
    }
}

impl RequestStatus {
    /// The status after `action`, or the refusal.
    pub fn apply(self, action: Action) -> Result<RequestStatus, IllegalTransition> {
        use Action as A;
        use RequestStatus as S;
        let next = match (self, action) {
            (S::Pending, A::Send) => S::Sent,
            (S::Sent, A::Open) => S::Opened,
            (S::Sent | S::Opened, A::LastSignature) => S::AwaitingStamp,
            (S::AwaitingStamp, A::SealSucceeded) => S::Signed,
            (S::AwaitingStamp, A::SealFailed) => S::StampFailed,
            (S::StampFailed, A::RetrySeal) => S::AwaitingStamp,
            (S::Pending | S::Sent | S::Opened, A::Decline) => S::Declined,
            (S::Pending | S::Sent | S::Opened, A::Cancel) => S::Cancelled,
            (S::Pending | S::Sent | S::Opened, A::Expire) => S::Expired,
            (from, action) => return Err(IllegalTransition { from, action }),
        };
        Ok(next)
    }

    /// No transition leaves a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestStatus::Signed
                | RequestStatus::Declined
                | RequestStatus::Cancelled
                | RequestStatus::Expired
        )
    }

    /// Still waiting for signatures: the only statuses that can expire.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RequestStatus::Pending | RequestStatus::Sent | RequestStatus::Opened
        )
    }

    /// The status a reader sees: an open request past `expires_at` reads `expired` at once,
    /// before the expiry worker has written it.
    pub fn effective(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> RequestStatus {
        if self.is_open() && now >= expires_at {
            RequestStatus::Expired
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use RequestStatus as S;

    /// The whole table, written out once more by hand: every (status, action) pair.
    fn expected(from: S, action: A) -> Option<S> {
        Some(match (from, action) {
            (S::Pending, A::Send) => S::Sent,
            (S::Sent, A::Open) => S::Opened,
            (S::Sent, A::LastSignature) => S::AwaitingStamp,
            (S::Opened, A::LastSignature) => S::AwaitingStamp,
            (S::AwaitingStamp, A::SealSucceeded) => S::Signed,
            (S::AwaitingStamp, A::SealFailed) => S::StampFailed,
            (S::StampFailed, A::RetrySeal) => S::AwaitingStamp,
            (S::Pending, A::Decline) | (S::Sent, A::Decline) | (S::Opened, A::Decline) => {
                S::Declined
            }
            (S::Pending, A::Cancel) | (S::Sent, A::Cancel) | (S::Opened, A::Cancel) => S::Cancelled,
            (S::Pending, A::Expire) | (S::Sent, A::Expire) | (S::Opened, A::Expire) => S::Expired,
            _ => return None,
        })
    }

    #[test]
    fn every_pair_matches_the_picture() {
        let mut legal = 0;
        for from in S::ALL {
            for action in A::ALL {
                let got = from.apply(*action);
                match expected(*from, *action) {
                    Some(next) => {
                        legal += 1;
                        assert_eq!(got, Ok(next), "{from} + {action:?}");
                    }
                    None => assert_eq!(
                        got,
                        Err(IllegalTransition {
                            from: *from,
                            action: *action
                        }),
                        "{from} + {action:?}"
                    ),
                }
            }
        }
        assert_eq!(legal, 16);
    }

    #[test]
    fn terminal_statuses_have_no_way_out() {
        for from in S::ALL.iter().filter(|s| s.is_terminal()) {
            for action in A::ALL {
                assert!(from.apply(*action).is_err(), "{from} + {action:?}");
            }
        }
    }

    #[test]
    fn every_non_terminal_status_can_still_end() {
        for from in S::ALL.iter().filter(|s| !s.is_terminal()) {
            assert!(
                A::ALL.iter().any(|a| from.apply(*a).is_ok()),
                "{from} is stuck"
            );
        }
    }

    #[test]
    fn only_open_requests_expire_on_read() {
        let t = crate::time::parse("2026-01-01T00:00:00Z").unwrap();
        let later = t + chrono::Duration::milliseconds(1);
        for s in S::ALL {
            let read = s.effective(t, later);
            if s.is_open() {
                assert_eq!(read, S::Expired);
                assert_eq!(s.effective(t, t - chrono::Duration::seconds(1)), *s);
            } else {
                assert_eq!(read, *s);
            }
        }
        // Exactly at expires_at the request has expired.
        assert_eq!(S::Sent.effective(t, t), S::Expired);
    }

    #[test]
    fn refusal_names_the_current_status() {
        let err = S::Signed.apply(A::Cancel).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a request that is 'signed' cannot be cancelled"
        );
    }
}
