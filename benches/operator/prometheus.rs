//! Metrics in the Prometheus text format: the operator's `/metrics` and
//! the API server's request counters.

use kube::Client;
use std::collections::BTreeMap;

pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((key, after)) = rest.split_once("=\"") {
            let mut end = 0;
            let bytes = after.as_bytes();
            while end < bytes.len()
                && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\'))
            {
                end += 1;
            }
            map.insert(
                key.trim_start_matches(',').to_string(),
                after[..end].to_string(),
            );
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push(Sample {
            name: name.to_string(),
            labels: map,
            value,
        });
    }
    out
}

/// Sum of `name` samples, keyed by the given labels joined with `/`.
pub fn sum_by(samples: &[Sample], name: &str, keys: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        let key = keys
            .iter()
            .map(|k| s.labels.get(*k).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("/");
        *out.entry(key).or_default() += s.value;
    }
    out
}

pub fn diff(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)).round() as u64,
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// Writes the API server saw to our resources, per "VERB resource[/sub]".
pub async fn apiserver_writes(client: &Client) -> BTreeMap<String, f64> {
    let req = axum::http::Request::get("/metrics")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(req).await.unwrap_or_default();
    let mut out = BTreeMap::new();
    for s in parse_prometheus(&text)
        .into_iter()
        .filter(|s| s.name == "apiserver_request_total")
    {
        let verb = s.labels.get("verb").cloned().unwrap_or_default();
        let resource = s.labels.get("resource").cloned().unwrap_or_default();
        let sub = s.labels.get("subresource").cloned().unwrap_or_default();
        if !["POST", "PUT", "PATCH", "APPLY", "DELETE"].contains(&verb.as_str())
            || ![
                "smoochapps",
                "smoochkeys",
                "smoochintegrations",
                "secrets",
                "events",
            ]
            .contains(&resource.as_str())
        {
            continue;
        }
        let key = if sub.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{sub}")
        };
        *out.entry(key).or_default() += s.value;
    }
    out
}
