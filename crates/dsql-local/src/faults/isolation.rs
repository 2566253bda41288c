//! A region cut off from its peers ([`Faults::isolate`]): what its clients
//! see, as one table of assumptions ([`Isolation`]).
//!
//! AWS documents that the peer of a multi-region cluster that loses the
//! other peer and the witness cannot commit, not what its clients see. The
//! defaults are `dsql-local`'s best guess, each one field, so that a wrong
//! guess is a one-line change (or a different [`Isolation`] per test).

use tokio::sync::watch;

use super::Faults;
use crate::stats::bump;

/// What an isolated region does with new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IsolatedConnects {
    /// Refused once the token is verified, with the `FATAL`
    /// [`REGION_ISOLATED`](crate::catalog::REGION_ISOLATED) (`08006`): the
    /// front end answers, the cluster behind it cannot serve.
    Refuse,
    /// Left unanswered once the token is verified, until the region heals
    /// (the session then starts) or the handshake timeout closes the
    /// connection without a word.
    Hang,
    /// Served as usual; what they may do is [`Isolation::commits`]'s.
    Accept,
}

/// What becomes of the sessions open when the region is isolated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IsolatedSessions {
    /// Closed at once, without a word (as
    /// [`drop_all_sessions`](Faults::drop_all_sessions) closes them).
    Cut,
    /// Kept; what they may do is [`Isolation::commits`]'s.
    Keep,
}

/// What the sessions of an isolated region may commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IsolatedCommits {
    /// Nothing that wrote: the `COMMIT` of a transaction that wrote is
    /// rolled back and answered with the error
    /// [`REGION_ISOLATED_COMMIT`](crate::catalog::REGION_ISOLATED_COMMIT)
    /// (`08006`), and a write in autocommit fails with it, not applied.
    /// Reads, in transactions or not, and read-only `COMMIT`s are served.
    Fail,
    /// Everything, as if the region were not isolated (only connects and
    /// open sessions are affected).
    Succeed,
}

/// What an isolated region's clients see: one field per behaviour, each a
/// best guess (AWS does not document it).
///
/// | field | default | why |
/// |---|---|---|
/// | [`connects`](Self::connects) | [`Refuse`](IsolatedConnects::Refuse) | the regional front end still answers, and a region that cannot commit had better say so at once |
/// | [`open_sessions`](Self::open_sessions) | [`Cut`](IsolatedSessions::Cut) | the sessions' state lives with the cluster the region lost |
/// | [`commits`](Self::commits) | [`Fail`](IsolatedCommits::Fail) | documented: the isolated peer has no quorum to commit |
///
/// What is written decides whether a commit needs the quorum: PostgreSQL
/// itself tells whether the transaction took a transaction id
/// (`txid_current_if_assigned()`) when its `COMMIT` comes, and a statement
/// in autocommit is a write when DSQL's dialect reads it as one (`INSERT`,
/// `UPDATE`, `DELETE`, `COPY … FROM`, DDL, a data-modifying `WITH`, …; under
/// [`Dialect::Postgres`](crate::Dialect::Postgres), by its first keyword).
/// A `COMMIT` sent in one simple query with other statements is judged by
/// them: it fails when one of them wrote, or when the transaction was open
/// before the query (what it did then is not checked). Reads of tables are
/// served: a real isolated peer might refuse or delay them to keep them
/// strongly consistent, which is not emulated.
///
/// ```no_run
/// # async fn example(local: dsql_local::DsqlLocal) {
/// use dsql_local::{IsolatedConnects, IsolatedSessions, Isolation};
///
/// let faults = local.faults();
/// faults.isolate(); // the defaults: refuse connects, cut sessions, fail commits
/// faults.heal();
/// // A region that still takes connections and keeps its sessions, which
/// // read but cannot commit writes.
/// faults.isolate_with(Isolation {
///     connects: IsolatedConnects::Accept,
///     open_sessions: IsolatedSessions::Keep,
///     ..Isolation::default()
/// });
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Isolation {
    /// New connections.
    pub connects: IsolatedConnects,
    /// Sessions open at the moment of isolation.
    pub open_sessions: IsolatedSessions,
    /// Commits in the sessions that remain or are accepted.
    pub commits: IsolatedCommits,
}

impl Isolation {
    /// `dsql-local`'s best guess: connects refused, open sessions cut,
    /// commits of writes failed.
    pub const DEFAULT: Self = Self {
        connects: IsolatedConnects::Refuse,
        open_sessions: IsolatedSessions::Cut,
        commits: IsolatedCommits::Fail,
    };
}

impl Default for Isolation {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Faults {
    /// Isolates the region from its peers with [`Isolation::DEFAULT`];
    /// returns how many sessions were cut. See [`isolate_with`](Self::isolate_with).
    pub fn isolate(&self) -> usize {
        self.isolate_with(Isolation::DEFAULT)
    }

    /// Isolates the region from its peers, as `isolation` says, until
    /// [`heal`](Self::heal) (or [`clear`](Self::clear)); isolating again
    /// replaces it. Returns how many sessions were cut (with
    /// [`IsolatedSessions::Cut`]). Counted in
    /// [`StatsSnapshot`](crate::StatsSnapshot)'s
    /// `connects_refused_by_isolation`, `sessions_cut_by_isolation` and
    /// `commits_failed_by_isolation`.
    pub fn isolate_with(&self, isolation: Isolation) -> usize {
        // First, so that a session cut now cannot come back before.
        self.state.isolation.send_replace(Some(isolation));
        let cut = match isolation.open_sessions {
            IsolatedSessions::Cut => self.drop_all_sessions(),
            IsolatedSessions::Keep => 0,
        };
        for _ in 0..cut {
            bump(&self.state.stats.counters.sessions_cut_by_isolation);
        }
        tracing::info!(?isolation, cut, "fault: region isolated from its peers");
        cut
    }

    /// Ends the isolation: connections are served again (those left
    /// waiting by [`IsolatedConnects::Hang`] go on), and commits succeed.
    /// Sessions cut stay closed.
    pub fn heal(&self) {
        if self.state.isolation.send_replace(None).is_some() {
            tracing::info!("fault: region healed");
        }
    }

    /// The isolation in force, if any.
    pub fn isolation(&self) -> Option<Isolation> {
        *self.state.isolation.borrow()
    }

    /// Follows the isolation, for connections left waiting.
    pub(crate) fn watch_isolation(&self) -> watch::Receiver<Option<Isolation>> {
        self.state.isolation.subscribe()
    }

    /// Whether commits of writes fail now.
    pub(crate) fn commits_fail(&self) -> bool {
        self.isolation()
            .is_some_and(|i| i.commits == IsolatedCommits::Fail)
    }
}
