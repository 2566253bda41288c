//! What a request is: work against a connection that can be replayed.

mod effects;
mod parked;

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_postgres::{Client, Transaction};

pub(crate) use self::effects::Attempt;
pub use self::effects::Effects;
use crate::error::BoxError;

/// A boxed, sendable future borrowing from `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) type ClientFn<T> = dyn for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<T, BoxError>> + Send + Sync;
pub(crate) type TransactionFn<T> =
    dyn for<'c, 't> Fn(&'c mut Transaction<'t>) -> BoxFuture<'c, Result<T, BoxError>> + Send + Sync;

/// Work to run against a connection, replayable as a whole.
///
/// - [`Operation::transaction`]: a closure run inside `BEGIN … COMMIT`. A
///   conflict (`40001`) or a connection lost before `COMMIT` was sent rolls
///   it back; replaying it is always safe. A connection lost *during*
///   `COMMIT` leaves the outcome unknown: it is replayed only if marked
///   [`idempotent`](Self::idempotent).
/// - [`Operation::autocommit`]: a closure over the client in autocommit mode.
///   Each statement commits on its own, so once one statement has completed
///   (or was sent and its answer lost) the operation is not replayed unless
///   it is marked idempotent (reads, upserts by key). A single statement that
///   fails with a conflict has changed nothing and is replayed.
///
/// # When an operation is replayed
/// The rule lives in one place, the retry policy
/// ([`RetryPolicy`](crate::retry::RetryPolicy)), whatever classifier is
/// set: an operation is replayed only when nothing it did can have taken
/// effect, or when it is marked [`idempotent`](Self::idempotent). What an
/// attempt did is observed on the wire by the execution path (statements
/// completed, `COMMIT` sent and answered) and recorded in the operation
/// ([`Effects`]), not inferred from the error:
///
/// | the attempt failed… | replayed |
/// |---|---|
/// | before any statement was sent | yes |
/// | in a transaction, before `COMMIT` was sent, or with `COMMIT` answered by an error (a conflict) | yes |
/// | with `COMMIT` sent and its answer lost | only if idempotent |
/// | in autocommit, after a statement completed | only if idempotent |
/// | in autocommit, with a statement sent and its answer lost | only if idempotent |
///
/// Closures return a boxed future (`Box::pin(async move { … })`): a plain
/// `async` closure cannot borrow the transaction it is given. Their error
/// can be any error type; a `tokio_postgres::Error` in its source chain is
/// what classification looks at.
///
/// ```
/// use dsql_tower::Operation;
///
/// let transfer = Operation::transaction(|tx| {
///     Box::pin(async move {
///         tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[]).await?;
///         tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", &[]).await?;
///         Ok::<_, tokio_postgres::Error>(())
///     })
/// })
/// .named("transfer");
///
/// let count = Operation::autocommit(|client| {
///     Box::pin(async move {
///         let row = client.query_one("SELECT count(*) FROM accounts", &[]).await?;
///         Ok::<i64, tokio_postgres::Error>(row.get(0))
///     })
/// })
/// .idempotent();
/// # let _ = (transfer, count);
/// ```
pub struct Operation<T> {
    body: Body<T>,
    idempotent: bool,
    name: Cow<'static, str>,
    /// Whether the application named it (`db.operation.name`).
    named: bool,
    attempt: Arc<Attempt>,
}

pub(crate) enum Body<T> {
    Client(Arc<ClientFn<T>>),
    Transaction(Arc<TransactionFn<T>>),
}

impl<T> Clone for Operation<T> {
    fn clone(&self) -> Self {
        Self {
            body: match &self.body {
                Body::Client(f) => Body::Client(Arc::clone(f)),
                Body::Transaction(f) => Body::Transaction(Arc::clone(f)),
            },
            idempotent: self.idempotent,
            name: self.name.clone(),
            named: self.named,
            // A clone is a new request: its attempts are its own. Replays
            // share the record (`Replay::replay`).
            attempt: Arc::default(),
        }
    }
}

impl<T> fmt::Debug for Operation<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field(
                "kind",
                &match self.body {
                    Body::Client(_) => "autocommit",
                    Body::Transaction(_) => "transaction",
                },
            )
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl<T: Send + 'static> Operation<T> {
    /// Statements in autocommit mode, run by `f` on the client: each
    /// statement commits on its own (see the replay rule above).
    pub fn autocommit<F, E>(f: F) -> Self
    where
        F: for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<T, E>> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            body: Body::Client(Arc::new(move |client| {
                let future = f(client);
                Box::pin(async move { future.await.map_err(Into::into) })
            })),
            idempotent: false,
            name: Cow::Borrowed("operation"),
            named: false,
            attempt: Arc::default(),
        }
    }

    /// A transaction: `f` runs between `BEGIN` and `COMMIT`, and the whole
    /// transaction is replayed on conflicts.
    pub fn transaction<F, E>(f: F) -> Self
    where
        F: for<'c, 't> Fn(&'c mut Transaction<'t>) -> BoxFuture<'c, Result<T, E>> + Send + Sync + 'static,
        E: Into<BoxError> + 'static,
    {
        Self {
            body: Body::Transaction(Arc::new(move |tx| {
                let future = f(tx);
                Box::pin(async move { future.await.map_err(Into::into) })
            })),
            idempotent: false,
            name: Cow::Borrowed("transaction"),
            named: false,
            attempt: Arc::default(),
        }
    }
}

impl<T> Operation<T> {
    /// Marks the operation as safe to run more than once (reads, upserts
    /// by key, writes keyed by a unique request id), so it is replayed even
    /// when a lost connection leaves its outcome unknown.
    ///
    /// The key must be enforced by a unique constraint. A guard such as
    /// `INSERT … WHERE NOT EXISTS (…)` is not enough: under snapshot
    /// isolation the replay may not yet see the first attempt's `COMMIT`, and
    /// both attempts then apply. The chaos soak (`dsql-bench soak`) found
    /// this. With a unique key the late replay gets a conflict and is
    /// replayed again, and that replay sees the first attempt's row.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Names the operation in traces and metrics (`db.operation.name`):
    /// a name per kind of operation (`"transfer"`), never one per call, as
    /// each name is a metric series of its own.
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self.named = true;
        self
    }

    /// Whether the operation is marked idempotent.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// Whether the operation runs in a transaction.
    pub fn is_transaction(&self) -> bool {
        matches!(self.body, Body::Transaction(_))
    }

    /// The operation's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the last attempt did that may have taken effect.
    pub fn effects(&self) -> Effects {
        self.attempt.effects()
    }

    /// Keeps `connection` with the operation until its next attempt takes
    /// it back ([`take_parked`](Self::take_parked)), for services that run
    /// operations on pooled connections.
    ///
    /// Why: a conflicted transaction backs off before its replay so that
    /// fewer transactions contend at once, but a connection given back to
    /// its pool during the backoff goes at once to another transaction, and
    /// the backoff thins out nothing. Parked, the connection stays out of
    /// the pool until the replay takes it.
    ///
    /// The slot is shared by the copies a retry layer makes of the request
    /// ([`Replay::replay`](crate::retry::Replay::replay)), not by
    /// [`Clone`] (a clone is a new request). If no attempt takes the
    /// connection back (the retry gives up), it is dropped with the last
    /// copy of the request; a pooled connection then returns to its pool.
    /// One parked before is dropped.
    ///
    /// Park only a connection that is safe to use again (outside a
    /// transaction, nothing outstanding), and only when the operation will
    /// be replayed: until it is dropped, nobody else can use it.
    ///
    /// ```
    /// use dsql_tower::Operation;
    ///
    /// struct Connection(u32);
    ///
    /// let operation = Operation::transaction(|_tx| Box::pin(async { Ok::<(), tokio_postgres::Error>(()) }));
    /// operation.park(Connection(7));
    /// assert!(operation.take_parked::<String>().is_none(), "another type stays parked");
    /// assert_eq!(operation.take_parked::<Connection>().map(|c| c.0), Some(7));
    /// assert!(operation.take_parked::<Connection>().is_none());
    /// ```
    pub fn park<C: Any + Send>(&self, connection: C) {
        self.attempt.parked().park(Box::new(connection));
    }

    /// Takes back the connection parked by [`park`](Self::park), if one of
    /// type `C` is parked; a value of another type stays parked.
    pub fn take_parked<C: Any + Send>(&self) -> Option<C> {
        self.attempt.parked().take()
    }

    pub(crate) fn body(&self) -> &Body<T> {
        &self.body
    }

    pub(crate) fn attempt(&self) -> &Attempt {
        &self.attempt
    }

    /// The shared record, to outlive this copy of the request.
    pub(crate) fn record(&self) -> Arc<Attempt> {
        Arc::clone(&self.attempt)
    }

    /// The name the application gave, if any.
    pub(crate) fn given_name(&self) -> Option<&Cow<'static, str>> {
        self.named.then_some(&self.name)
    }

    /// The same request again, sharing its attempt record: what a retry
    /// sends.
    pub(crate) fn replayed(&self) -> Self {
        Self {
            attempt: Arc::clone(&self.attempt),
            ..self.clone()
        }
    }
}

/// Runs an [`Operation`] through any service that accepts it: waits until
/// the service is ready, then calls it.
///
/// Services of this crate accept `Operation<T>` for every `T`, so
/// `service.ready()` alone cannot tell which `T` is meant; `run` takes the
/// operation, and with it the type.
///
/// ```no_run
/// use dsql_tower::{Operation, OperationExt};
/// # async fn example(mut service: dsql_tower::Session<dsql_tower::connect::ConnectStack<dsql_auth::SharedTokenProvider>>)
/// # -> Result<(), dsql_tower::Error> {
/// let one: i32 = service
///     .run(Operation::autocommit(|client| Box::pin(async move {
///         Ok::<i32, tokio_postgres::Error>(client.query_one("SELECT 1", &[]).await?.get(0))
///     })))
///     .await?;
/// # Ok(())
/// # }
/// ```
pub trait OperationExt<T>: tower::Service<Operation<T>> {
    /// Waits for readiness, then runs `operation`.
    fn run(&mut self, operation: Operation<T>) -> tower::util::Oneshot<&mut Self, Operation<T>>
    where
        Self: Sized,
    {
        tower::util::Oneshot::new(self, operation)
    }
}

impl<S, T> OperationExt<T> for S where S: tower::Service<Operation<T>> {}
