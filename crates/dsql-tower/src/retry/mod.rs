//! Retrying by error class, on `tower::retry`.
//!
//! [`RetryPolicy`] is a `tower::retry::Policy`: it takes the class of each
//! failure (from the error, classified where it happened, or from its own
//! classifier), and retries it according to the rule of its class
//! (attempts, a window in seconds, a full-jitter [`Backoff`]), within a
//! retry budget shared by all requests so that a failing cluster is not
//! hammered. Put it in a stack with [`RetryPolicy::layer`] (tower's
//! `RetryLayer`).
//!
//! The policy owns the replay rule, whatever the classifier says: a
//! request whose last attempt may have taken effect
//! ([`Replay::effects`]) is replayed only when it is idempotent. See
//! [`Operation`](crate::Operation) for the table.

mod backoff;
mod replay;

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, RetryLayer};

pub use self::backoff::Backoff;
pub use self::replay::Replay;
use crate::classify::{Classify, ErrorClass, SharedClassifier};
use crate::error::{Error, Phase};
use crate::operation::Effects;

/// How one class of errors is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryRule {
    /// Delay before each retry.
    pub backoff: Backoff,
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// No retry starts later than this after the first failure.
    pub max_elapsed: Duration,
}

impl RetryRule {
    /// A rule.
    pub const fn new(backoff: Backoff, max_attempts: u32, max_elapsed: Duration) -> Self {
        Self {
            backoff,
            max_attempts,
            max_elapsed,
        }
    }
}

const fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

const fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[derive(Clone, Debug)]
struct Rules {
    conflict: Option<RetryRule>,
    reconnect: Option<RetryRule>,
    outcome_unknown: Option<RetryRule>,
    reauthenticate: Option<RetryRule>,
    throttled: Option<RetryRule>,
}

impl Rules {
    fn get(&self, class: ErrorClass) -> Option<RetryRule> {
        match class {
            ErrorClass::Conflict => self.conflict,
            ErrorClass::Reconnect => self.reconnect,
            ErrorClass::OutcomeUnknown => self.outcome_unknown,
            ErrorClass::Reauthenticate => self.reauthenticate,
            ErrorClass::Throttled => self.throttled,
            _ => None,
        }
    }

    fn set(&mut self, class: ErrorClass, rule: Option<RetryRule>) {
        match class {
            ErrorClass::Conflict => self.conflict = rule,
            ErrorClass::Reconnect => self.reconnect = rule,
            ErrorClass::OutcomeUnknown => self.outcome_unknown = rule,
            ErrorClass::Reauthenticate => self.reauthenticate = rule,
            ErrorClass::Throttled => self.throttled = rule,
            _ => {}
        }
    }
}

/// Retries by [`ErrorClass`]; a `tower::retry::Policy` for [`Operation`](crate::Operation)s
/// and for connects.
///
/// | class | operations ([`for_operations`](Self::for_operations)) | connects ([`for_connects`](Self::for_connects)) |
/// |---|---|---|
/// | conflict | replay the transaction: 2 ms → 250 ms, 100 attempts, 10 s | — |
/// | reconnect | 10 ms → 1 s, 10 attempts, 10 s | 50 ms → 2 s, 8 attempts, 15 s |
/// | outcome unknown | idempotent operations only, as reconnect | — |
/// | reauthenticate | 100 ms → 2 s, 10 attempts, 5 s | 100 ms → 2 s, 10 attempts, 5 s |
/// | throttled | 100 ms → 5 s, 10 attempts, 30 s | 100 ms → 5 s, 12 attempts, 30 s |
/// | fatal | never | never |
///
/// A conflict is bounded by its window, not by its attempts: under heavy
/// contention each attempt fails with about the same probability (0.76 at
/// 128 tasks on 4 hot rows in `dsql-bench occ`), so a small attempt count
/// (0.76³⁰ ≈ 3·10⁻⁴) makes a few transactions of thousands give up while
/// the cluster is healthy and a replay is the cure. 100 attempts, with the
/// backoff's cap of 250 ms (125 ms on average), take longer than the 10 s
/// window, which is then the bound that applies.
///
/// Errors from getting a connection ([`Phase::Connect`]) are not retried at
/// the operation level: the connect stack has already retried them with the
/// connect rules, and retrying again would multiply the attempts.
///
/// Whatever the class, a request whose failed attempt may have taken
/// effect ([`Replay::effects`]: an autocommit statement completed or
/// unanswered, a `COMMIT` unanswered) is replayed only if it is idempotent;
/// the error that surfaces says why it was not
/// ([`Error::not_replayed`]).
///
/// Retries other than conflicts draw from a budget shared by every clone
/// (tower's `TpsBudget`: 20 % of recent successes plus 10 per second), so a
/// failing cluster sees a bounded trickle rather than a storm. Conflicts are
/// bounded by their own rule: the cluster is healthy, a replay is the cure.
///
/// ```
/// use dsql_tower::retry::RetryPolicy;
/// use dsql_tower::classify::ClassifyLayer;
/// use tower::ServiceBuilder;
///
/// let stack = ServiceBuilder::new()
///     .layer(RetryPolicy::for_operations().layer())
///     .layer(ClassifyLayer::new())
///     .service(tower::service_fn(|op: dsql_tower::Operation<()>| async move {
///         Ok::<(), dsql_tower::Error>(())
///     }));
/// # let _ = stack;
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    rules: Arc<Rules>,
    budget: Option<Arc<TpsBudget>>,
    classifier: SharedClassifier,
    /// Whether connect-phase errors are this policy's to retry (the
    /// connect stack's policy) or not (an operation policy's).
    connects: bool,
    retries: u32,
    first_failure: Option<Instant>,
}

impl RetryPolicy {
    /// The rules for operations (see the table above).
    pub fn for_operations() -> Self {
        let reconnect = RetryRule::new(Backoff::new(ms(10), secs(1)), 10, secs(10));
        Self::with_rules(
            Rules {
                conflict: Some(RetryRule::new(Backoff::new(ms(2), ms(250)), 100, secs(10))),
                reconnect: Some(reconnect),
                outcome_unknown: Some(reconnect),
                reauthenticate: Some(RetryRule::new(Backoff::new(ms(100), secs(2)), 10, secs(5))),
                throttled: Some(RetryRule::new(Backoff::new(ms(100), secs(5)), 10, secs(30))),
            },
            false,
        )
    }

    /// The rules for connects (see the table above).
    pub fn for_connects() -> Self {
        Self::with_rules(
            Rules {
                conflict: None,
                reconnect: Some(RetryRule::new(Backoff::new(ms(50), secs(2)), 8, secs(15))),
                outcome_unknown: None,
                reauthenticate: Some(RetryRule::new(Backoff::new(ms(100), secs(2)), 10, secs(5))),
                throttled: Some(RetryRule::new(Backoff::new(ms(100), secs(5)), 12, secs(30))),
            },
            true,
        )
    }

    fn with_rules(rules: Rules, connects: bool) -> Self {
        Self {
            rules: Arc::new(rules),
            budget: Some(Arc::new(TpsBudget::new(secs(10), 10, 0.2))),
            classifier: SharedClassifier::default(),
            connects,
            retries: 0,
            first_failure: None,
        }
    }
    /// Sets how `class` is retried; `None` never retries it.
    /// [`ErrorClass::Fatal`] is never retried whatever is set.
    pub fn rule(mut self, class: ErrorClass, rule: Option<RetryRule>) -> Self {
        Arc::make_mut(&mut self.rules).set(class, rule);
        self
    }

    /// The rule for `class`.
    pub fn rule_for(&self, class: ErrorClass) -> Option<RetryRule> {
        self.rules.get(class)
    }

    /// Replaces the retry budget: `retry_percent` of recent successes (over
    /// `ttl`) plus `min_per_sec` retries per second.
    pub fn budget(mut self, ttl: Duration, min_per_sec: u32, retry_percent: f32) -> Self {
        self.budget = Some(Arc::new(TpsBudget::new(ttl, min_per_sec, retry_percent)));
        self
    }

    /// Retries without a budget (only the per-class rules bound them).
    pub fn without_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Classifies errors that come unclassified (not a [`crate::Error`])
    /// with `classifier` instead of [`DsqlClassifier`](crate::DsqlClassifier).
    /// It cannot make an unsafe replay happen: see the type's docs.
    pub fn classifier(self, classifier: impl Classify + 'static) -> Self {
        self.shared_classifier(SharedClassifier::new(classifier))
    }

    pub(crate) fn shared_classifier(mut self, classifier: SharedClassifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// tower's `RetryLayer` with this policy.
    pub fn layer(self) -> RetryLayer<Self> {
        RetryLayer::new(self)
    }

    fn decide(
        &mut self,
        class: ErrorClass,
        phase: Option<Phase>,
        effects: Effects,
        idempotent: bool,
    ) -> Result<Duration, &'static str> {
        if phase == Some(Phase::Connect) && !self.connects {
            return Err("connect errors are retried by the connect stack");
        }
        if effects.may_have_landed() && !idempotent {
            return Err(effects.as_str());
        }
        if class == ErrorClass::OutcomeUnknown && !idempotent {
            return Err("the outcome is unknown and the operation is not idempotent");
        }
        let rule = self.rules.get(class).ok_or("this class is not retried")?;
        let attempts = self.retries + 1;
        if attempts >= rule.max_attempts {
            return Err("attempts exhausted");
        }
        let first_failure = *self.first_failure.get_or_insert_with(Instant::now);
        if first_failure.elapsed() >= rule.max_elapsed {
            return Err("retry window exhausted");
        }
        if class != ErrorClass::Conflict
            && let Some(budget) = &self.budget
            && !budget.withdraw()
        {
            return Err("retry budget exhausted");
        }
        Ok(rule.backoff.delay(self.retries))
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("rules", &self.rules)
            .field("budget", &self.budget.is_some())
            .field("connects", &self.connects)
            .field("retries", &self.retries)
            .finish()
    }
}

impl<Req, Res, E> Policy<Req, Res, E> for RetryPolicy
where
    Req: Replay,
    E: StdError + 'static,
{
    type Future = tokio::time::Sleep;

    fn retry(&mut self, request: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        let error = match result {
            Ok(_) => {
                if let Some(budget) = &self.budget {
                    budget.deposit();
                }
                return None;
            }
            Err(error) => error,
        };
        let (class, phase) = match classified(&*error) {
            Some(classified) => (classified.class(), Some(classified.phase())),
            None => (self.classifier.classify(&*error), None),
        };
        let effects = request.effects();
        match self.decide(class, phase, effects, request.is_idempotent()) {
            Ok(delay) => {
                self.retries += 1;
                #[cfg(feature = "metrics")]
                crate::metrics::retried(class, self.connects);
                tracing::debug!(
                    class = %class,
                    attempt = self.retries + 1,
                    delay_ms = delay.as_millis() as u64,
                    error = %crate::error::display_chain(&*error),
                    "retrying"
                );
                Some(tokio::time::sleep(delay))
            }
            Err(reason) => {
                let attempts = self.retries + 1;
                if attempts > 1 || class != ErrorClass::Fatal {
                    tracing::debug!(class = %class, attempts, reason, "not retrying");
                }
                if let Some(error) = (error as &mut dyn Any).downcast_mut::<Error>() {
                    error.set_attempts(attempts);
                    let allowed_by_class =
                        self.rules.get(class).is_some() && class != ErrorClass::OutcomeUnknown;
                    if effects.may_have_landed() && allowed_by_class {
                        error.set_not_replayed(reason);
                    }
                }
                None
            }
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        request.replay()
    }
}

/// The first classified [`Error`] in the chain: its class is trusted.
fn classified<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(error) = error.downcast_ref::<Error>() {
            return Some(error);
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests;
