//! Reads-only scopes: a piece of work that may look but not touch.
//!
//! Inside [`reads_only`], a call that would change something at Smooch
//! (any method but `GET`) is not sent: it fails with
//! [`SmoochError::Refused`](crate::SmoochError::Refused), and the scope
//! records that it was refused. Other clients (a Kubernetes client, say) can
//! refuse their requests the same way through [`refuse`].
//!
//! The operator runs its periodic re-checks in such a scope: the reconcile
//! code runs unchanged, and the first thing it would do beyond reading
//! (create, update, delete, or a fresh read before a decision) ends the
//! re-check and hands the resource to its controller.

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static SCOPE: Cell<Option<Refusal>>;
}

/// A request a reads-only scope refused: its method and route (`POST` and
/// `/apps/{appId}/keys`, say). Names no object and carries no data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub method: &'static str,
    pub route: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.route)
    }
}

/// Runs `work` reads-only. Returns its output and the first request that
/// was refused in it, if any.
pub async fn reads_only<F: Future>(work: F) -> (F::Output, Option<Refusal>) {
    SCOPE
        .scope(Cell::new(None), async {
            let output = work.await;
            let refused = SCOPE.with(Cell::get);
            (output, refused)
        })
        .await
}

/// Called before a request that a reads-only scope must not send: `true`
/// (refuse it) inside such a scope, which then records it (the first
/// refusal is kept); `false` elsewhere.
pub fn refuse(method: &'static str, route: &'static str) -> bool {
    SCOPE
        .try_with(|refused| {
            if refused.get().is_none() {
                refused.set(Some(Refusal { method, route }));
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_inside_a_scope_only_and_keeps_the_first_refusal() {
        assert!(!refuse("GET", "/outside"));
        let ((), refused) = reads_only(async {}).await;
        assert_eq!(refused, None);
        let (inside, refused) = reads_only(async {
            let first = refuse("POST", "/first");
            let second = refuse("DELETE", "/second");
            (first, second)
        })
        .await;
        assert_eq!(inside, (true, true));
        let refused = refused.expect("recorded");
        assert_eq!(refused.to_string(), "POST /first");
        // The scope ends with its work.
        assert!(!refuse("POST", "/after"));
    }
}
