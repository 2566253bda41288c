use std::fmt;

use super::Session;
use crate::classify::{Classify, SharedClassifier};
use crate::lifecycle::{Lifecycle, Lifetime};

/// Builds a [`Session`].
pub struct SessionBuilder<M> {
    connect: M,
    config: tokio_postgres::Config,
    lifetime: Lifetime,
    classifier: SharedClassifier,
}

impl<M> SessionBuilder<M> {
    pub(super) fn new(connect: M, config: tokio_postgres::Config) -> Self {
        Self {
            connect,
            config,
            lifetime: Lifetime::default(),
            classifier: SharedClassifier::default(),
        }
    }

    /// How long a connection is used before it is replaced (below DSQL's
    /// 60-minute limit: [`Lifetime::new`] refuses more).
    pub fn lifetime(mut self, lifetime: Lifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Classifies errors with `classifier` instead of
    /// [`DsqlClassifier`](crate::DsqlClassifier).
    pub fn classifier(mut self, classifier: impl Classify + 'static) -> Self {
        self.classifier = SharedClassifier::new(classifier);
        self
    }

    /// Builds the session; nothing is connected yet.
    pub fn build(self) -> Session<M> {
        Session::from_lifecycle(Lifecycle::new(
            self.connect,
            self.config,
            self.lifetime,
            self.classifier,
        ))
    }
}

impl<M> fmt::Debug for SessionBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("config", &self.config)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}
