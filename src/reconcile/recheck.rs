//! Periodic re-checks, apart from the controllers' queues.
//!
//! A resource reconciled to Ready is looked at again after the resync
//! period (sooner when its kind asks: a key's rotation). That look runs
//! here, not in its controller: new and changed resources, which the
//! controllers take, never queue behind re-checks, and re-checks hold at
//! most their own share of the Smooch calls in flight
//! (`--recheck-concurrency`).
//!
//! A re-check runs the same reconcile code as the controller, reads-only
//! ([`smooch::scope`]): a resource in sync costs what a no-op reconcile
//! reads (from caches, and one Smooch read); the first request it would
//! send beyond that (a Smooch write, any Kubernetes request: a write, or the
//! fresh read before a decision) is refused, and the resource goes to its
//! controller, which reconciles it as usual. Running beside the controller
//! is safe: a re-check writes nothing.
//!
//! Each kind has a [`Queue`] of due times. A successful reconcile puts its
//! resource in (replacing what was there); a reconcile starting takes it
//! out; a re-check in sync puts it back, unless the controller has taken
//! the resource meanwhile.

use super::{Managed, Recheck};
use crate::reconcile::Context;
use kube::runtime::reflector::{ObjectRef, Store};
use smooch::scope::Refusal;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tower::BoxError;

/// `namespace/name` of a resource (neither can contain `/`).
type Key = Arc<str>;

/// Which kind a queue is for.
const KINDS: [&str; 4] = [
    "SmoochApp",
    "SmoochKey",
    "SmoochIntegration",
    "SmoochWebhook",
];

/// The due re-checks of every kind.
#[derive(Default)]
pub struct Rechecks {
    queues: [Queue; 4],
}

impl Rechecks {
    pub fn queue<K: Managed>(&self) -> &Queue {
        let i = KINDS
            .iter()
            .position(|k| *k == K::KIND)
            .expect("every managed kind has a re-check queue");
        &self.queues[i]
    }
}

/// Due times of one kind's re-checks.
#[derive(Default)]
pub struct Queue {
    due: Mutex<Due>,
    /// Told when a re-check is due sooner than every other.
    sooner: Notify,
}

#[derive(Default)]
struct Due {
    last_seq: u64,
    /// The one valid entry of each resource: its sequence number.
    current: HashMap<Key, u64>,
    /// Entries by due time; replaced or cancelled ones are skipped.
    heap: BinaryHeap<Reverse<(Instant, u64, Key)>>,
}

impl Due {
    /// Drops replaced and cancelled entries once they outnumber the valid
    /// ones. Each reconcile of a resource leaves its previous entry in the
    /// heap until that falls due, a resync period later; while thousands
    /// converge, that was most of the heap (heaptrack: 1.3 MB at 3,000
    /// resources).
    fn drop_stale_when_many(&mut self) {
        if self.heap.len() > 2 * self.current.len() + 64 {
            let current = &self.current;
            self.heap
                .retain(|Reverse((_, seq, key))| current.get(key) == Some(seq));
        }
    }
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl Queue {
    /// Re-check `namespace/name` after `after` (replaces any earlier entry).
    pub fn schedule(&self, namespace: &str, name: &str, after: Duration) {
        self.push(&key(namespace, name), None, after);
    }

    /// No re-check of `namespace/name` until it is scheduled again.
    pub fn cancel(&self, namespace: &str, name: &str) {
        let mut due = self.due.lock().expect("not poisoned");
        due.current.remove(key(namespace, name).as_str());
    }

    /// Puts back a resource re-checked in sync, unless the entry it was
    /// taken out as (`seq`) was replaced or cancelled meanwhile.
    fn reschedule(&self, key: &str, seq: u64, after: Duration) {
        self.push(key, Some(seq), after);
    }

    fn push(&self, key: &str, only_if: Option<u64>, after: Duration) {
        let at = Instant::now() + after;
        let mut due = self.due.lock().expect("not poisoned");
        if only_if.is_some() && due.current.get(key).copied() != only_if {
            return;
        }
        due.last_seq += 1;
        let seq = due.last_seq;
        let shared = match due.current.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => Key::from(key),
        };
        due.current.insert(shared.clone(), seq);
        let soonest = due.heap.peek().is_none_or(|Reverse((t, _, _))| at < *t);
        due.heap.push(Reverse((at, seq, shared)));
        due.drop_stale_when_many();
        drop(due);
        if soonest {
            self.sooner.notify_one();
        }
    }

    /// The next due resource, and its entry's sequence number; waits until
    /// one is due.
    async fn next(&self) -> (Key, u64) {
        loop {
            // Made before looking, so that a sooner entry pushed between
            // the look and the wait still wakes the wait.
            let sooner = self.sooner.notified();
            let wait_until = {
                let mut due = self.due.lock().expect("not poisoned");
                let now = Instant::now();
                loop {
                    match due.heap.peek() {
                        None => break None,
                        Some(Reverse((t, _, _))) if *t > now => break Some(*t),
                        Some(_) => {
                            let Reverse((_, seq, key)) = due.heap.pop().expect("peeked");
                            if due.current.get(&key) == Some(&seq) {
                                return (key, seq);
                            }
                        }
                    }
                }
            };
            match wait_until {
                Some(t) => {
                    tokio::select! {
                        _ = sooner => {}
                        _ = tokio::time::sleep_until(t) => {}
                    }
                }
                None => sooner.await,
            }
        }
    }

    /// How many resources have a re-check due (the tests' view).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.due.lock().expect("not poisoned").current.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs the re-checks of kind `K` as they fall due, at most as many at once
/// as `slots` (shared by every kind) allows. A resource not in sync goes to
/// the controller of its scope (`targets`: each scope's cache and
/// controller). Runs until dropped; dropping it stops the re-checks running.
pub async fn drive<K: Managed>(
    ctx: Arc<Context>,
    targets: Vec<(Store<K>, super::controllers::Wake<K>)>,
    slots: Arc<Semaphore>,
) {
    let queue = ctx.rechecks.queue::<K>();
    let mut running = tokio::task::JoinSet::new();
    loop {
        let (key, seq) = queue.next().await;
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        while running.try_join_next().is_some() {}
        let (namespace, name) = key.split_once('/').expect("namespace/name");
        let object = ObjectRef::<K>::new(name).within(namespace);
        let found = targets
            .iter()
            .find_map(|(store, wake)| store.get(&object).map(|obj| (obj, wake.clone())));
        let Some((obj, wake)) = found else {
            // Deleted: nothing to look at again.
            queue.cancel(namespace, name);
            continue;
        };
        let ctx = ctx.clone();
        running.spawn(async move {
            let outcome = super::recheck(obj, &ctx).await;
            drop(permit);
            ctx.metrics.rechecked(K::KIND, outcome.label());
            match outcome {
                Recheck::InSync(after) => ctx.rechecks.queue::<K>().reschedule(&key, seq, after),
                Recheck::Skipped => {}
                Recheck::HandOver(why) => {
                    tracing::debug!(kind = K::KIND, %key, %why, "re-check found work; reconciling");
                    // A closed channel is a controller that has shut down.
                    let _ = wake.unbounded_send(object);
                }
            }
        });
    }
}

/// A layer for the operator's Kubernetes client: in a reads-only scope
/// ([`smooch::scope`]) every request is refused, reads included, since a
/// re-check reads only from caches; a read it would send is the fresh read
/// before a decision, which is its controller's to take.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefuseInRechecks;

impl<S> tower::Layer<S> for RefuseInRechecks {
    type Service = Refusing<S>;
    fn layer(&self, inner: S) -> Refusing<S> {
        Refusing(inner)
    }
}

#[derive(Clone, Debug)]
pub struct Refusing<S>(S);

/// The error of a refused Kubernetes request.
#[derive(Debug, thiserror::Error)]
#[error("{0} not sent: this work only reads")]
pub struct Refused(Refusal);

impl<S, B> tower::Service<http::Request<B>> for Refusing<S>
where
    S: tower::Service<http::Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = match *request.method() {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::PUT => "PUT",
            http::Method::PATCH => "PATCH",
            http::Method::DELETE => "DELETE",
            _ => "OTHER",
        };
        // kube's client hands the request to a worker task, which calls
        // this; the future it returns is awaited by the caller, in the
        // caller's task, where a re-check's scope is. Nothing is sent
        // before it is awaited.
        let response = self.0.call(request);
        Box::pin(async move {
            const ROUTE: &str = "(Kubernetes API)";
            if smooch::scope::refuse(method, ROUTE) {
                return Err(Box::new(Refused(Refusal {
                    method,
                    route: ROUTE,
                })) as BoxError);
            }
            response.await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_len(q: &Queue) -> usize {
        q.due.lock().unwrap().heap.len()
    }

    #[tokio::test(start_paused = true)]
    async fn due_in_time_order_and_a_replaced_entry_only_once() {
        let q = Queue::default();
        q.schedule("ns", "late", Duration::from_secs(30));
        q.schedule("ns", "early", Duration::from_secs(10));
        // Rescheduled: its first entry is stale and skipped.
        q.schedule("ns", "late", Duration::from_secs(20));
        assert_eq!(queue_len(&q), 3);
        let start = Instant::now();
        let (k, _) = q.next().await;
        assert_eq!((&*k, start.elapsed().as_secs()), ("ns/early", 10));
        let (k, _) = q.next().await;
        assert_eq!((&*k, start.elapsed().as_secs()), ("ns/late", 20));
        // Nothing else is due: the stale entry is not handed out.
        assert!(
            tokio::time::timeout(Duration::from_secs(60), q.next())
                .await
                .is_err()
        );
        assert_eq!(queue_len(&q), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_entries_are_dropped_once_they_outnumber_the_valid_ones() {
        let q = Queue::default();
        for round in 0..100u64 {
            for name in ["a", "b", "c"] {
                q.schedule("ns", name, Duration::from_secs(600 + round));
            }
        }
        q.cancel("ns", "c");
        assert_eq!(q.len(), 2);
        assert!(queue_len(&q) <= 2 * 3 + 64 + 1, "{} entries", queue_len(&q));
        // The valid entries survive: a and b, each at its last time.
        let start = Instant::now();
        let (k, _) = q.next().await;
        assert_eq!((&*k, start.elapsed().as_secs()), ("ns/a", 699));
        let (k, _) = q.next().await;
        assert_eq!((&*k, start.elapsed().as_secs()), ("ns/b", 699));
        assert!(
            tokio::time::timeout(Duration::from_secs(600), q.next())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_entry_is_not_due_and_a_sooner_one_wakes_the_wait() {
        let q = Arc::new(Queue::default());
        q.schedule("ns", "a", Duration::from_secs(5));
        q.cancel("ns", "a");
        assert!(q.is_empty());
        q.schedule("ns", "b", Duration::from_secs(600));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Sooner than the entry the wait sleeps for.
        q.schedule("ns", "c", Duration::from_secs(2));
        let start = Instant::now();
        let (k, _) = waiting.await.unwrap();
        assert_eq!(&*k, "ns/c");
        assert_eq!(start.elapsed().as_secs(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_in_sync_recheck_is_put_back_only_if_nobody_took_the_resource() {
        let q = Queue::default();
        q.schedule("ns", "a", Duration::ZERO);
        let (k, seq) = q.next().await;
        q.reschedule(&k, seq, Duration::from_secs(30));
        assert_eq!(q.len(), 1);
        let (k, seq) = q.next().await;
        // The controller took it meanwhile (a reconcile started): the
        // re-check does not put it back.
        q.cancel("ns", "a");
        q.reschedule(&k, seq, Duration::from_secs(30));
        assert!(q.is_empty());
        // The controller scheduled it anew: the re-check's older entry
        // does not replace that.
        q.schedule("ns", "a", Duration::ZERO);
        let (k, seq) = q.next().await;
        q.schedule("ns", "a", Duration::from_secs(100));
        q.reschedule(&k, seq, Duration::from_secs(1));
        let start = Instant::now();
        q.next().await;
        assert_eq!(start.elapsed().as_secs(), 100);
    }
}
