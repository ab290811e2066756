//! The binaries cargo built next to the running test or bench.
//!
//! `env!("CARGO_BIN_EXE_<name>")` exists only in the tests of the package
//! that has the binary; this crate is another package, so it finds them
//! where cargo puts them: `target/<profile>/`, the parent of the `deps/`
//! directory that holds the running test executable. `hack/test.sh` builds
//! the whole workspace, so both are there and up to date.

use std::path::PathBuf;

/// `smooch-operator`, or `$SMOOCH_OPERATOR_BIN` when set.
pub fn operator_binary() -> PathBuf {
    binary("smooch-operator", "SMOOCH_OPERATOR_BIN")
}

/// `smooch-emulator`, or `$SMOOCH_EMULATOR_BIN` when set.
pub fn emulator_binary() -> PathBuf {
    binary("smooch-emulator", "SMOOCH_EMULATOR_BIN")
}

fn binary(name: &str, override_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(override_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the path of the running test");
    let profile_dir = exe
        .parent()
        .filter(|dir| dir.ends_with("deps"))
        .and_then(|deps| deps.parent())
        .or_else(|| exe.parent())
        .expect("the running test is in a directory");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, or run `hack/test.sh`)",
        path.display()
    );
    path
}
