use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use super::parked::Parked;
use crate::telemetry::OperationTelemetry;

/// What a failed attempt may have left behind: the fact a replay decision
/// rests on. Observed by the execution path (on the wire, and from whether
/// `COMMIT` was answered), never inferred from the error's class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Effects {
    /// Nothing the attempt did can have taken effect: no statement was
    /// sent, or it ran in a transaction that did not commit.
    #[default]
    None,
    /// In autocommit, a statement completed before the failure: it is
    /// committed.
    StatementCompleted,
    /// In autocommit, a statement was sent and its answer was lost: it may
    /// have committed.
    StatementUnanswered,
    /// `COMMIT` was sent and its answer was lost: the transaction may have
    /// committed.
    CommitUnanswered,
}

impl Effects {
    /// Whether some of the attempt's work may have taken effect.
    pub fn may_have_landed(self) -> bool {
        self != Self::None
    }

    /// Whether the attempt's fate is unknown (an answer was lost), as
    /// opposed to known to have partly landed.
    pub fn is_unanswered(self) -> bool {
        matches!(self, Self::StatementUnanswered | Self::CommitUnanswered)
    }

    /// Why a replay would be unsafe, for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "nothing it did can have taken effect",
            Self::StatementCompleted => {
                "a statement of this autocommit operation had completed, so its effects are committed"
            }
            Self::StatementUnanswered => {
                "a statement of this autocommit operation was sent and its answer lost, so it may have committed"
            }
            Self::CommitUnanswered => {
                "COMMIT was sent and its answer lost, so the transaction may have committed"
            }
        }
    }

    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::StatementCompleted,
            2 => Self::StatementUnanswered,
            3 => Self::CommitUnanswered,
            _ => Self::None,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::None => 0,
            Self::StatementCompleted => 1,
            Self::StatementUnanswered => 2,
            Self::CommitUnanswered => 3,
        }
    }
}

impl fmt::Display for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The record of an operation's current attempt, shared by the request a
/// retry keeps and the one it sends (attempts run one after the other).
#[derive(Debug, Default)]
pub(crate) struct Attempt {
    effects: AtomicU8,
    /// Its span and metrics, across attempts.
    telemetry: OperationTelemetry,
    /// A connection kept between attempts (see [`Parked`]). After the
    /// telemetry, so the operation's duration ends before the connection is
    /// handed back.
    parked: Parked,
}

impl Attempt {
    pub(crate) fn telemetry(&self) -> &OperationTelemetry {
        &self.telemetry
    }

    pub(crate) fn parked(&self) -> &Parked {
        &self.parked
    }

    pub(crate) fn set(&self, effects: Effects) {
        self.effects.store(effects.to_u8(), Ordering::Release);
    }

    pub(crate) fn effects(&self) -> Effects {
        Effects::from_u8(self.effects.load(Ordering::Acquire))
    }
}
