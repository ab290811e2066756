//! The state shared by every request: the store behind a lock, the state
//! file, the fault settings and the request counters.

use super::error::ApiError;
use super::faults::Faults;
use super::persist::{StateFile, StateFileError};
use super::requests::RequestCounts;
use super::store::{SNAPSHOT_FORMAT, Snapshot, Store};
use smooch::Sensitive;
use std::sync::{Arc, Mutex, PoisonError, RwLock as StdRwLock};
use tokio::sync::RwLock;

/// Where the app-maker key came from at startup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MakerKeySource {
    /// Made up at startup (no flags, no state file).
    Generated,
    /// Given by the caller (flags, environment, [`super::EmulatorConfig`]).
    Configured,
    /// Read from the state file, which wins over configured values.
    StateFile,
}

/// Cheap to clone; every clone is the same emulator.
#[derive(Clone, Debug)]
pub struct EmulatorState {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// A read/write lock: reads run in parallel; a change holds the write
    /// lock until the state file has it, so no change is lost or reordered.
    store: RwLock<Versioned>,
    state_file: Option<StateFile>,
    faults: StdRwLock<Faults>,
    requests: Mutex<RequestCounts>,
    body_limit: usize,
    maker_key_id: String,
    maker_secret: Sensitive,
}

#[derive(Clone, Debug)]
struct Versioned {
    store: Store,
    /// Counts changes, so that the state file keeps the newest snapshot.
    version: u64,
}

impl EmulatorState {
    /// A state around `store`. With a state file, the file is written now
    /// if `write_now`, so that a new maker key is saved before the first
    /// request.
    pub(crate) fn new(
        store: Store,
        state_file: Option<StateFile>,
        write_now: bool,
        faults: Faults,
        body_limit: usize,
    ) -> Result<Self, StateFileError> {
        if let (Some(file), true) = (&state_file, write_now) {
            file.create(&serialize(&store).map_err(|reason| file.corrupt(reason))?)?;
        }
        let snapshot = store.snapshot();
        let (maker_key_id, maker_secret) =
            (snapshot.maker_key_id.clone(), snapshot.maker_secret.clone());
        Ok(EmulatorState {
            shared: Arc::new(Shared {
                store: RwLock::new(Versioned { store, version: 0 }),
                state_file,
                faults: StdRwLock::new(faults),
                requests: Mutex::new(RequestCounts::default()),
                body_limit,
                maker_key_id,
                maker_secret,
            }),
        })
    }

    pub fn maker_key_id(&self) -> &str {
        &self.shared.maker_key_id
    }

    pub fn maker_secret(&self) -> &Sensitive {
        &self.shared.maker_secret
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.shared.body_limit
    }

    pub(crate) async fn read<T>(&self, look: impl FnOnce(&Store) -> T) -> T {
        look(&self.shared.store.read().await.store)
    }

    /// Applies a change. With a state file, the change is written before
    /// the answer goes out; if the write fails the change is undone and the
    /// request fails with 500. A change that returns an error is undone too.
    pub(crate) async fn mutate<T>(
        &self,
        change: impl FnOnce(&mut Store) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut guard = self.shared.store.write().await;
        let Some(file) = &self.shared.state_file else {
            return change(&mut guard.store);
        };
        let before = guard.clone();
        let outcome = change(&mut guard.store).and_then(|value| {
            guard.version += 1;
            let bytes = serialize(&guard.store).map_err(ApiError::internal)?;
            Ok((value, bytes))
        });
        let (value, bytes) = match outcome {
            Ok(ok) => ok,
            Err(e) => {
                *guard = before;
                return Err(e);
            }
        };
        if let Err(e) = file.save(guard.version, bytes).await {
            *guard = before;
            tracing::error!(error = %e, "state file write failed; change undone");
            return Err(ApiError::internal("Could not save the emulator state"));
        }
        Ok(value)
    }

    pub fn faults(&self) -> Faults {
        *self
            .shared
            .faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(PoisonError::into_inner) = faults;
        Ok(())
    }

    /// The API request counters (what `GET /_emulator/requests` answers).
    pub fn request_counts(&self) -> RequestCounts {
        self.with_request_counts(|counts| counts.clone())
    }

    pub(crate) fn with_request_counts<T>(
        &self,
        use_counts: impl FnOnce(&mut RequestCounts) -> T,
    ) -> T {
        let mut counts = self
            .shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        use_counts(&mut counts)
    }
}

/// Request bodies larger than this are answered 413.
pub const DEFAULT_BODY_LIMIT: usize = 100 * 1024;

pub(crate) fn empty_snapshot(maker_key_id: String, maker_secret: Sensitive) -> Snapshot {
    Snapshot {
        format: SNAPSHOT_FORMAT,
        maker_key_id,
        maker_secret,
        apps: Vec::new(),
    }
}

fn serialize(store: &Store) -> Result<Vec<u8>, String> {
    serde_json::to_vec_pretty(store.snapshot()).map_err(|e| e.to_string())
}
