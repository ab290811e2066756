//! Test support for smooch-operator, shared by its end-to-end tests
//! (`tests/`) and its benchmarks (`benches/operator/`), so that each piece
//! exists once:
//!
//! - [`controlplane`]: a client for the real control plane that
//!   `hack/test.sh` or `hack/bench.sh` started (its kubeconfig in
//!   `KUBECONFIG`), the generated CRDs installed, a namespace per test,
//!   Secrets applied;
//! - [`emulator`]: the Smooch emulator started in-process over real HTTP,
//!   and a client of it;
//! - [`harness`]: one test's world (a namespace, an emulator, the
//!   credentials Secret, the operator in-process or as a child process)
//!   and the waits and checks the tests share;
//! - [`binaries`]: where the `smooch-operator` and `smooch-emulator`
//!   binaries that cargo built are.
//!
//! A dev-only crate (`publish = false`): it depends on the operator crate,
//! and the operator crate has it as a dev-dependency.

pub mod binaries;
pub mod controlplane;
pub mod emulator;
pub mod harness;

pub use binaries::{emulator_binary, operator_binary};
pub use controlplane::{apply_secret, install_crds, kube_client, namespace};
pub use harness::{
    CREDENTIALS_SECRET, Harness, InProcessOperator, OperatorOptions, OperatorProcess, condition,
    create_in, hours_ago, secret_value, wait_for_in,
};
pub use smooch::ApiVersion;

/// One end-to-end test per Smooch API version: for each `async fn
/// name(version: ApiVersion)` listed, the tests `name::v1` and `name::v2`.
/// The same test body runs against the emulator's `/v1` and `/v2`, with the
/// operator started with `--smooch-api-version` of that version.
#[macro_export]
macro_rules! for_each_api_version {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn v1() {
                super::$test($crate::ApiVersion::V1).await
            }
            #[tokio::test]
            async fn v2() {
                super::$test($crate::ApiVersion::V2).await
            }
        }
    )+};
}
