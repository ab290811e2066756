//! Conditions the Kubernetes way, computed without side effects so that an
//! unchanged outcome produces an identical status (and so no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";

/// What a reconcile wants a condition to say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Wanted {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Wanted {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The conditions after applying `wanted` to `current`: a condition whose
/// status did not change keeps its `lastTransitionTime`; others keep theirs
/// untouched. Messages are capped to what the API accepts.
pub fn merge(
    current: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = current
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    for w in wanted {
        let status = if w.status { "True" } else { "False" };
        let previous = current.iter().find(|c| c.type_ == w.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: w.type_.to_string(),
            status: status.to_string(),
            reason: w.reason.clone(),
            message: truncate(&w.message, 1024),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let first = merge(
            &[],
            &[Wanted::new(READY, true, "Available", "ok")],
            Some(1),
            &t("2026-01-01T00:00:00Z"),
        );
        let second = merge(
            &first,
            &[Wanted::new(READY, true, "Available", "ok")],
            Some(1),
            &t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(first, second);
        let third = merge(
            &second,
            &[Wanted::new(READY, false, "Unavailable", "gone")],
            Some(2),
            &t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(third[0].last_transition_time, t("2026-01-03T00:00:00Z"));
        assert_eq!(third[0].observed_generation, Some(2));
    }

    #[test]
    fn other_conditions_survive_and_order_is_stable() {
        let a = merge(
            &[],
            &[
                Wanted::new(SYNCED, true, "ReconcileSuccess", ""),
                Wanted::new(READY, true, "Available", ""),
            ],
            Some(1),
            &t("2026-01-01T00:00:00Z"),
        );
        let b = merge(
            &a,
            &[Wanted::new(SYNCED, false, "SmoochUnauthorized", "401")],
            Some(1),
            &t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].type_, READY);
        assert_eq!(b[0].status, "True");
        assert_eq!(b[1].status, "False");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(800);
        let c = merge(
            &[],
            &[Wanted::new(READY, false, "X", long)],
            None,
            &t("2026-01-01T00:00:00Z"),
        );
        assert!(c[0].message.len() <= 1024);
    }
}
