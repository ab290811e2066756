//! smooch-operator: Smooch messaging apps, keys, integrations and webhooks
//! as Kubernetes custom resources.
//!
//! The operator is this crate: the custom resource types
//! ([`resources`]), the generic reconcile loop with one adapter per kind
//! ([`reconcile`]) and its [`metrics`]. It talks to Smooch through the
//! [`smooch`] API crate, re-exported here because its types are part of
//! this crate's API ([`reconcile::Context`] holds a [`smooch::Transport`]).
//! The local Smooch server lives in the `smooch-emulator` crate, a
//! dev-dependency only: the operator binary does not contain it.

pub mod metrics;
pub mod reconcile;
pub mod resources;

pub use smooch;

use smooch::SmoochError;

/// Why a reconcile did not finish. Messages never hold a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("{0}")]
    Smooch(#[from] SmoochError),

    /// Something this resource needs is not there yet (its SmoochApp is not
    /// Ready, a referenced Secret is missing). Not a failure: the operator
    /// watches for it and proceeds by itself.
    #[error("{message}")]
    Waiting {
        reason: &'static str,
        message: String,
    },

    /// A Secret of the wanted name exists and is not ours; never overwritten.
    #[error("Secret {name} exists and is not owned by this resource; it is left untouched")]
    SecretConflict { name: String },

    /// The spec cannot be acted on (caught here when admission did not).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// The Smooch object is managed by another resource (recorded in its
    /// status, or tagged with its uid): never taken over.
    #[error("{0}")]
    AlreadyManaged(String),

    /// The operator will not go on without a person: its tenancy settings
    /// forbid this (default credentials or adoption outside the allowed
    /// namespaces), or Smooch withholds what it needs (a key's secret).
    #[error("{message}")]
    NotAllowed {
        reason: &'static str,
        message: String,
    },

    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Short, bounded label for metrics and condition reasons.
    pub fn metric_label(&self) -> String {
        match self {
            Error::Kube(_) => "KubernetesError".into(),
            Error::Smooch(e) => match e.status() {
                Some(401) => "SmoochUnauthorized".into(),
                Some(403) => "SmoochForbidden".into(),
                Some(404) => "SmoochNotFound".into(),
                Some(400) => "SmoochBadRequest".into(),
                Some(409) => "SmoochConflict".into(),
                Some(429) => "SmoochRateLimited".into(),
                Some(s) if s >= 500 => "SmoochUnavailable".into(),
                _ => "SmoochUnreachable".into(),
            },
            Error::Waiting { reason, .. } => (*reason).into(),
            Error::SecretConflict { .. } => "SecretConflict".into(),
            Error::InvalidSpec(_) => "InvalidSpec".into(),
            Error::AlreadyManaged(_) => "AlreadyManaged".into(),
            Error::NotAllowed { reason, .. } => (*reason).into(),
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.metric_label(),
                _ => "FinalizerError".into(),
            },
        }
    }

    /// The error inside a finalizer wrapper, or itself.
    pub fn root(&self) -> &Error {
        match self {
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.root(),
                _ => self,
            },
            _ => self,
        }
    }

    /// Permanent errors will not go away by retrying soon: they are retried
    /// slowly (a person must fix the spec, the credentials or the Secret).
    pub fn is_permanent(&self) -> bool {
        match self.root() {
            Error::Smooch(e) => !e.is_transient(),
            Error::SecretConflict { .. }
            | Error::InvalidSpec(_)
            | Error::AlreadyManaged(_)
            | Error::NotAllowed { .. } => true,
            _ => false,
        }
    }
}
