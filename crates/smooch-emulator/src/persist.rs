//! The optional state file: read once at startup, rewritten atomically
//! (temporary file in the same directory, fsync, rename, fsync of the
//! directory) after every change.

use super::store::Snapshot;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Why the state file could not be used. Messages name the file and the
/// reason, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read state file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("state file {} is not a valid emulator state: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write state file {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// Writes go through here so that two changes finishing out of order never
/// leave the older snapshot on disk: each snapshot carries the store's
/// version, and one older than the last written is skipped (the newer file
/// already contains its change).
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
    last_written: Arc<Mutex<u64>>,
}

impl StateFile {
    pub fn new(path: PathBuf) -> Self {
        StateFile {
            path,
            last_written: Arc::new(Mutex::new(0)),
        }
    }

    /// The saved snapshot, or `None` when the file does not exist yet. A
    /// file that exists but cannot be read or parsed is an error, and the
    /// file is left as it is.
    pub fn load(&self) -> Result<Option<Snapshot>, StateFileError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StateFileError::Read {
                    path: self.path.clone(),
                    reason: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(e.to_string()))
    }

    pub fn corrupt(&self, reason: String) -> StateFileError {
        StateFileError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// Writes the snapshot serialized as `bytes` at store `version`.
    pub async fn save(&self, version: u64, bytes: Vec<u8>) -> Result<(), StateFileError> {
        let file = self.clone();
        let outcome =
            tokio::task::spawn_blocking(move || file.save_blocking(version, &bytes)).await;
        match outcome {
            Ok(result) => result,
            Err(e) => Err(self.write_error(e.to_string())),
        }
    }

    fn save_blocking(&self, version: u64, bytes: &[u8]) -> Result<(), StateFileError> {
        let mut last = self
            .last_written
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if version <= *last {
            return Ok(());
        }
        self.create(bytes)?;
        *last = version;
        Ok(())
    }

    /// Writes the file unconditionally (the first snapshot, at startup).
    pub fn create(&self, bytes: &[u8]) -> Result<(), StateFileError> {
        write_private_file(&self.path, bytes).map_err(|e| self.write_error(e.to_string()))
    }

    fn write_error(&self, reason: String) -> StateFileError {
        StateFileError::Write {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Replaces `path` with `bytes` atomically, readable by the owner only
/// (the state and env files hold secrets).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".smooch-emulator-")
        .tempfile_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // The rename is durable only once the directory entry is.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
