//! The shared test support (`crates/smooch-test-support`) under the name
//! the tests use: control plane client, CRD install, emulator start, and
//! the operator harness exist once there, for `tests/` and `benches/`.

pub use smooch_test_support::*;
