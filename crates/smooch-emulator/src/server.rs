//! Starting and stopping the emulator: [`spawn`] binds, serves in a task
//! and hands back a [`RunningEmulator`].

use super::connection::ErrorBodyListener;
use super::faults::Faults;
use super::ids;
use super::persist::{StateFile, StateFileError};
use super::routes::router;
use super::state::{DEFAULT_BODY_LIMIT, EmulatorState, MakerKeySource, empty_snapshot};
use super::store::{Snapshot, Store};
use smooch::Sensitive;
use smooch::jwt::{self, Claims};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Persist to this JSON file (and load it at startup); `None` keeps
    /// everything in memory.
    pub state_file: Option<PathBuf>,
    /// The app-maker key. Both or neither; generated when neither is given
    /// and there is no state file. A state file's key wins over these.
    pub maker_key_id: Option<String>,
    pub maker_secret: Option<Sensitive>,
    pub faults: Faults,
    /// Larger request bodies are answered 413.
    pub body_limit_bytes: usize,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            state_file: None,
            maker_key_id: None,
            maker_secret: None,
            faults: Faults::default(),
            body_limit_bytes: DEFAULT_BODY_LIMIT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    #[error("invalid emulator configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("emulator server failed: {0}")]
    Serve(String),
}

/// A started emulator. Dropping it stops the server too; [`shutdown`]
/// also waits until it has stopped.
///
/// [`shutdown`]: RunningEmulator::shutdown
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    base_url: String,
    state: EmulatorState,
    maker_key_source: MakerKeySource,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Opens the state (loading the state file, if any), binds and serves in
/// a background task.
pub async fn spawn(config: EmulatorConfig) -> Result<RunningEmulator, EmulatorError> {
    let (state, maker_key_source) = EmulatorState::open(&config)?;
    let bind_error = |source| EmulatorError::Bind {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(ErrorBodyListener(listener), app)
            .with_graceful_shutdown(async {
                // A dropped sender (RunningEmulator dropped) stops it too.
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningEmulator {
        addr,
        base_url: format!("http://{addr}"),
        state,
        maker_key_source,
        stop: Some(stop),
        task: Some(task),
    })
}

impl RunningEmulator {
    /// `http://127.0.0.1:<port>`, without a version prefix (the client's
    /// `TransportConfig::base_url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn maker_key_id(&self) -> &str {
        self.state.maker_key_id()
    }

    pub fn maker_secret(&self) -> &Sensitive {
        self.state.maker_secret()
    }

    pub fn maker_key_source(&self) -> MakerKeySource {
        self.maker_key_source
    }

    /// A fresh appMaker-scoped JWT signed with the app-maker key.
    pub fn app_maker_token(&self) -> Sensitive {
        jwt::sign(
            self.maker_key_id(),
            self.maker_secret(),
            &Claims::app_maker(),
        )
        .expect("HS256 signing of fixed claims cannot fail")
    }

    /// The live state: faults can be changed and counters read here.
    pub fn state(&self) -> &EmulatorState {
        &self.state
    }

    /// Stops accepting connections, lets requests in flight finish, and
    /// waits for the server task.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match task.await {
                Ok(served) => served.map_err(|e| EmulatorError::Serve(e.to_string())),
                Err(e) => Err(EmulatorError::Serve(e.to_string())),
            },
            None => Ok(()),
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl EmulatorState {
    /// The state to serve: from the state file when it exists (its maker
    /// key wins), else empty with the configured or a generated maker key.
    /// Also the way to build a state for [`super::router`] in tower tests.
    pub fn open(config: &EmulatorConfig) -> Result<(Self, MakerKeySource), EmulatorError> {
        config.faults.validate().map_err(EmulatorError::Config)?;
        if config.body_limit_bytes == 0 {
            return Err(EmulatorError::Config(
                "body limit must be at least 1 byte".into(),
            ));
        }
        let configured = configured_maker_key(config)?;
        let file = config.state_file.clone().map(StateFile::new);
        let loaded = match &file {
            Some(file) => file.load()?,
            None => None,
        };
        let (store, source, fresh) = match (loaded, &file) {
            (Some(snapshot), Some(file)) => {
                warn_if_configured_key_differs(configured.as_ref(), &snapshot);
                let store =
                    Store::from_snapshot(snapshot).map_err(|reason| file.corrupt(reason))?;
                (store, MakerKeySource::StateFile, false)
            }
            _ => {
                let (id, secret, source) = match configured {
                    Some((id, secret)) => (id, secret, MakerKeySource::Configured),
                    None => (
                        ids::key_id(),
                        Sensitive::from(ids::secret()),
                        MakerKeySource::Generated,
                    ),
                };
                let store = Store::from_snapshot(empty_snapshot(id, secret))
                    .map_err(EmulatorError::Config)?;
                (store, source, true)
            }
        };
        let state = EmulatorState::new(store, file, fresh, config.faults, config.body_limit_bytes)?;
        Ok((state, source))
    }
}

fn warn_if_configured_key_differs(configured: Option<&(String, Sensitive)>, saved: &Snapshot) {
    if let Some((id, secret)) = configured
        && (*id != saved.maker_key_id || *secret != saved.maker_secret)
    {
        tracing::warn!(
            configured_key_id = %id,
            state_key_id = %saved.maker_key_id,
            "the configured app-maker key differs from the state file's; using the state file's"
        );
    }
}

fn configured_maker_key(
    config: &EmulatorConfig,
) -> Result<Option<(String, Sensitive)>, EmulatorError> {
    match (&config.maker_key_id, &config.maker_secret) {
        (None, None) => Ok(None),
        (Some(id), Some(secret)) => {
            let id_ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !id_ok {
                return Err(EmulatorError::Config(
                    "the maker key id must be 1 to 128 characters of A-Z, a-z, 0-9, _ and -".into(),
                ));
            }
            if secret.is_empty() {
                return Err(EmulatorError::Config(
                    "the maker secret must not be empty".into(),
                ));
            }
            Ok(Some((id.clone(), secret.clone())))
        }
        _ => Err(EmulatorError::Config(
            "give both the maker key id and the maker secret, or neither".into(),
        )),
    }
}
