//! The real control plane of `hack/test.sh` and `hack/bench.sh`: a client,
//! the operator's CRDs, namespaces and Secrets.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use smooch_operator::resources;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The field manager of everything the tests and benchmarks apply.
const FIELD_MANAGER: &str = "smooch-operator-tests";

/// A client for the control plane. Fails with a clear message when the
/// tests or benchmarks were not started by `hack/test.sh` or `hack/bench.sh`.
pub async fn kube_client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run the tests with `hack/test.sh` (benchmarks: `hack/bench.sh <scenario>`), which starts a control plane"
    );
    Client::try_default()
        .await
        .expect("kubeconfig from hack/test.sh must be usable")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Installs the generated CRDs (once per process) and waits until they are
/// established.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in resources::all_crds() {
            let name = crd.name_any();
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .expect("CRD applies");
            tokio::time::timeout(
                Duration::from_secs(60),
                await_condition(api.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .expect("CRD established in time")
            .expect("CRD watch");
        }
    })
    .await;
}

/// A namespace of its own (`<prefix>-<8 hex digits>`) for one test or run.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    name
}

/// Applies (server-side, forced) a Secret with these string values.
pub async fn apply_secret(
    client: &Client,
    ns: &str,
    name: &str,
    pairs: &[(&str, &str)],
) -> kube::Result<Secret> {
    let data: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name}, "stringData": data,
    });
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
}
