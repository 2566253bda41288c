use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use super::{Classify, DsqlClassifier, ErrorClass};

/// The one representation of a classifier that every builder stores: a
/// clonable, type-erased [`Classify`]. Defaults to [`DsqlClassifier`].
///
/// ```
/// use dsql_tower::classify::{Classify, ErrorClass, SharedClassifier};
///
/// let everything_conflicts = SharedClassifier::new(|_: &(dyn std::error::Error + 'static)| ErrorClass::Conflict);
/// let io = std::io::Error::other("boom");
/// assert_eq!(everything_conflicts.classify(&io), ErrorClass::Conflict);
/// assert_eq!(SharedClassifier::default().classify(&io), ErrorClass::Reconnect);
/// ```
#[derive(Clone)]
pub struct SharedClassifier(Arc<dyn Classify>);

impl SharedClassifier {
    /// Erases the type of `classifier`.
    pub fn new(classifier: impl Classify + 'static) -> Self {
        Self(Arc::new(classifier))
    }
}

impl Default for SharedClassifier {
    fn default() -> Self {
        Self::new(DsqlClassifier)
    }
}

impl Classify for SharedClassifier {
    fn classify(&self, error: &(dyn StdError + 'static)) -> ErrorClass {
        self.0.classify(error)
    }
}

impl fmt::Debug for SharedClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedClassifier").finish_non_exhaustive()
    }
}
