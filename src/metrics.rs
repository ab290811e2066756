//! Prometheus metrics (prometheus-client). Labels are kinds, reasons,
//! methods, route templates and status codes: bounded, never a value
//! from a Secret.

use crate::Error;
use crate::smooch::CallObserver;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub kind: String,
    /// The watched namespace, or `*` for all.
    pub scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    pub reason: String,
}

/// Labels of a Smooch call: all `'static` or a number, so that counting a
/// call allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: CallStatus,
}

/// The HTTP status of a call's answer; `none` when there was no answer.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct CallStatus(pub Option<u16>);

impl EncodeLabelValue for CallStatus {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self.0 {
            Some(code) => EncodeLabelValue::encode(&code, encoder),
            None => EncodeLabelValue::encode(&"none", encoder),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RecheckLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: String,
    pub object: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    reconcile_duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    in_flight: Family<KindLabels, Gauge>,
    smooch_calls: Family<CallLabels, Counter>,
    smooch_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    kube_writes: Family<WriteLabels, Counter>,
    backlog: Family<ScopeLabels, Gauge>,
    rechecks: Family<RecheckLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("smooch_operator");
        let reconciles = Family::<KindLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let reconcile_duration =
            Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let in_flight = Family::<KindLabels, Gauge>::default();
        let smooch_calls = Family::<CallLabels, Counter>::default();
        let smooch_duration =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let kube_writes = Family::<WriteLabels, Counter>::default();
        let backlog = Family::<ScopeLabels, Gauge>::default();
        let rechecks = Family::<RecheckLabels, Counter>::default();
        registry.register(
            "rechecks",
            "Periodic re-checks, per kind and outcome (in_sync; handed_over: work found, given to the controller; skipped: paused or deleting)",
            rechecks.clone(),
        );
        registry.register(
            "queue_depth",
            "Resources whose current generation is not yet reconciled to Ready, per kind and watched scope (sampled every 5 s)",
            backlog.clone(),
        );
        registry.register("reconciles", "Reconciles run, per kind", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Failed reconciles, per kind and reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration, per kind",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, per kind",
            in_flight.clone(),
        );
        registry.register(
            "smooch_api_calls",
            "Smooch API calls, per method, route and status (none = no answer)",
            smooch_calls.clone(),
        );
        registry.register(
            "smooch_api_call_duration_seconds",
            "Smooch API call duration, per method and route",
            smooch_duration.clone(),
        );
        registry.register(
            "kubernetes_writes",
            "Writes to the Kubernetes API, per kind and object (finalizer, status, secret, event)",
            kube_writes.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
            reconcile_duration,
            in_flight,
            smooch_calls,
            smooch_duration,
            kube_writes,
            backlog,
            rechecks,
        }
    }
}

/// Decrements the in-flight gauge when a reconcile ends, however it ends.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn reconcile_started(&self, kind: &str) -> InFlight {
        let gauge = self
            .in_flight
            .get_or_create(&KindLabels { kind: kind.into() })
            .clone();
        gauge.inc();
        InFlight(gauge)
    }

    pub fn reconcile_finished(&self, kind: &str, elapsed: Duration, error: Option<&Error>) {
        let labels = KindLabels { kind: kind.into() };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            self.failures
                .get_or_create(&FailureLabels {
                    kind: kind.into(),
                    reason: e.metric_label(),
                })
                .inc();
        }
    }

    pub fn set_queue_depth(&self, kind: &str, scope: &str, depth: usize) {
        self.backlog
            .get_or_create(&ScopeLabels {
                kind: kind.into(),
                scope: scope.into(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub fn rechecked(&self, kind: &'static str, outcome: &'static str) {
        self.rechecks
            .get_or_create(&RecheckLabels { kind, outcome })
            .inc();
    }

    pub fn kube_write(&self, kind: &str, object: &str) {
        self.kube_writes
            .get_or_create(&WriteLabels {
                kind: kind.into(),
                object: object.into(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl CallObserver for Metrics {
    fn observe(
        &self,
        method: &'static str,
        route: &'static str,
        status: Option<u16>,
        elapsed: Duration,
    ) {
        self.smooch_calls
            .get_or_create(&CallLabels {
                method,
                route,
                status: CallStatus(status),
            })
            .inc();
        self.smooch_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::default();
        m.observe("GET", "/apps/{appId}", Some(200), Duration::from_millis(3));
        m.observe("POST", "/apps", None, Duration::from_millis(3));
        m.reconcile_finished("SmoochApp", Duration::from_millis(10), None);
        let text = m.render();
        assert!(text.contains(r#"smooch_operator_smooch_api_calls_total{method="GET",route="/apps/{appId}",status="200"} 1"#), "{text}");
        assert!(
            text.contains(
                r#"smooch_operator_smooch_api_calls_total{method="POST",route="/apps",status="none"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"smooch_operator_reconciles_total{kind="SmoochApp"} 1"#),
            "{text}"
        );
    }
}
