//! Injected faults (added latency, 503s, 429s with `Retry-After`), off by
//! default. They are decided before the request reaches a handler, so a
//! faulted request never changes state.

use super::body::Fields;
use super::error::ApiError;
use super::state::EmulatorState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest latency one may add: long enough for any timeout test, short
/// enough that a typo cannot hang a test run for hours.
const MAX_LATENCY_MS: u64 = 600_000;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Faults {
    /// Added to every API request before it is answered.
    pub latency_ms: u64,
    /// Added to every API `GET` instead, when longer: reads slow, writes
    /// not (a test holding periodic re-checks while resources are created).
    pub read_latency_ms: u64,
    /// Fraction (0 to 1) of API requests answered 503.
    pub error_rate: f64,
    /// Fraction (0 to 1) of API requests answered 429.
    pub rate_limit_rate: f64,
    /// `Retry-After` seconds on 429 answers.
    pub retry_after_secs: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            read_latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
        }
    }
}

/// Marks an answer made by fault injection (for the request counters).
#[derive(Clone, Copy, Debug)]
pub struct Faulted;

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("rateLimitRate", self.rate_limit_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be a number from 0 to 1"));
            }
        }
        for (name, ms) in [
            ("latencyMs", self.latency_ms),
            ("readLatencyMs", self.read_latency_ms),
        ] {
            if ms > MAX_LATENCY_MS {
                return Err(format!("{name} must be at most {MAX_LATENCY_MS}"));
            }
        }
        Ok(())
    }

    /// These faults with the fields given in a `PUT /_emulator/faults` body.
    pub(crate) fn updated(&self, fields: &Fields<'_>) -> Result<Faults, ApiError> {
        fields.only(&[
            "latencyMs",
            "readLatencyMs",
            "errorRate",
            "rateLimitRate",
            "retryAfterSecs",
        ])?;
        let whole = |field| {
            fields
                .optional_non_negative_int(field)
                .map(|v| v.map(|n| n as u64))
        };
        let updated = Faults {
            latency_ms: whole("latencyMs")?.unwrap_or(self.latency_ms),
            read_latency_ms: whole("readLatencyMs")?.unwrap_or(self.read_latency_ms),
            error_rate: fields
                .optional_rate("errorRate")?
                .unwrap_or(self.error_rate),
            rate_limit_rate: fields
                .optional_rate("rateLimitRate")?
                .unwrap_or(self.rate_limit_rate),
            retry_after_secs: whole("retryAfterSecs")?.unwrap_or(self.retry_after_secs),
        };
        updated.validate().map_err(ApiError::bad_request)?;
        Ok(updated)
    }

    /// The fault to answer with, if the dice say so.
    fn roll(&self, rng: &mut impl Rng) -> Option<ApiError> {
        if self.rate_limit_rate > 0.0 && rng.random::<f64>() < self.rate_limit_rate {
            return Some(ApiError::too_many_requests(self.retry_after_secs));
        }
        if self.error_rate > 0.0 && rng.random::<f64>() < self.error_rate {
            return Some(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable (injected by the emulator)",
            ));
        }
        None
    }
}

/// Middleware on the API routes: sleep, then maybe answer with a fault
/// instead of calling the handler.
pub async fn inject(State(state): State<EmulatorState>, request: Request, next: Next) -> Response {
    let faults = state.faults();
    let latency = match *request.method() {
        axum::http::Method::GET => faults.latency_ms.max(faults.read_latency_ms),
        _ => faults.latency_ms,
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let fault = faults.roll(&mut rand::rng());
    match fault {
        Some(error) => {
            let mut response = error.into_response();
            response.extensions_mut().insert(Faulted);
            response
        }
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn certain_faults_always_fire_and_none_never() {
        let mut rng = rand::rng();
        let always = Faults {
            rate_limit_rate: 1.0,
            retry_after_secs: 7,
            ..Faults::default()
        };
        let e = always.roll(&mut rng).unwrap();
        assert_eq!((e.status.as_u16(), e.retry_after_secs), (429, Some(7)));
        let unavailable = Faults {
            error_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(unavailable.roll(&mut rng).unwrap().status.as_u16(), 503);
        assert!((0..1000).all(|_| Faults::default().roll(&mut rng).is_none()));
    }

    #[test]
    fn updates_are_partial_and_checked() {
        let body = json!({"errorRate": 0.5});
        let map = body.as_object().unwrap();
        let f = Faults::default().updated(&Fields::new(map)).unwrap();
        assert_eq!(f.error_rate, 0.5);
        assert_eq!(f.retry_after_secs, 1);
        for bad in [
            json!({"errorRate": 2}),
            json!({"latencyMs": -1}),
            json!({"bogus": 1}),
        ] {
            let map = bad.as_object().unwrap();
            assert!(
                Faults::default().updated(&Fields::new(map)).is_err(),
                "{bad}"
            );
        }
    }
}
