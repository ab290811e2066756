//! `smooch-emulator`: the local Smooch API server (`serve`) and a JWT
//! maker for it (`token`). See docs/emulator.md.

use clap::{Parser, Subcommand, ValueEnum};
use smooch::Sensitive;
use smooch::jwt::{self, Claims};
use smooch_emulator::{
    DEFAULT_BODY_LIMIT, EmulatorConfig, Faults, MakerKeySource, RunningEmulator,
};
use smooch_telemetry as telemetry;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "smooch-emulator",
    version,
    about = "Local Smooch API server for development and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the Smooch API under /v1 and /v1.1 (and v2 under /v2), admin under /_emulator.
    Serve(ServeArgs),
    /// Print a JWT signed with the given key.
    Token(TokenArgs),
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SMOOCH_EMULATOR_LISTEN", default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// Persist to this JSON file and load it at startup.
    #[arg(long, env = "SMOOCH_EMULATOR_STATE")]
    state: Option<PathBuf>,
    /// App-maker key id (with --maker-secret); generated when neither is given.
    /// A state file's key wins over it.
    #[arg(long, env = "SMOOCH_EMULATOR_MAKER_KEY_ID", requires = "maker_secret")]
    maker_key_id: Option<String>,
    /// App-maker key secret (with --maker-key-id). A value starting with
    /// '-' is taken as the secret.
    #[arg(
        long,
        env = "SMOOCH_EMULATOR_MAKER_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true,
        requires = "maker_key_id"
    )]
    maker_secret: Option<String>,
    /// Milliseconds added to every API request.
    #[arg(long, env = "SMOOCH_EMULATOR_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Milliseconds added to every API GET instead, when longer.
    #[arg(long, env = "SMOOCH_EMULATOR_READ_LATENCY_MS", default_value_t = 0)]
    read_latency_ms: u64,
    /// Fraction (0 to 1) of API requests answered 503.
    #[arg(long, env = "SMOOCH_EMULATOR_ERROR_RATE", default_value_t = 0.0, value_parser = rate)]
    error_rate: f64,
    /// Fraction (0 to 1) of API requests answered 429.
    #[arg(long, env = "SMOOCH_EMULATOR_RATE_LIMIT_RATE", default_value_t = 0.0, value_parser = rate)]
    rate_limit_rate: f64,
    /// Retry-After seconds on 429 answers.
    #[arg(long, env = "SMOOCH_EMULATOR_RETRY_AFTER_SECS", default_value_t = 1)]
    retry_after_secs: u64,
    /// Request bodies larger than this many bytes are answered 413.
    #[arg(long, env = "SMOOCH_EMULATOR_BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    body_limit_bytes: usize,
    /// Write SMOOCH_URL, SMOOCH_KEY_ID, SMOOCH_SECRET and SMOOCH_TOKEN lines
    /// to this file (mode 0600) once listening.
    #[arg(long, env = "SMOOCH_EMULATOR_PRINT_ENV")]
    print_env: Option<PathBuf>,
    /// Log level or filter for the log on stderr, e.g. info, debug (debug
    /// logs one line per request). Precedence: --log-level, then
    /// SMOOCH_EMULATOR_LOG, then RUST_LOG, then info. Coloured only on a
    /// terminal (and not with NO_COLOR set).
    #[arg(long, env = "SMOOCH_EMULATOR_LOG", value_parser = telemetry::parse_level)]
    log_level: Option<String>,
}

#[derive(clap::Args, Debug)]
struct TokenArgs {
    /// Id of the signing key (the app-maker key, or an app's key for --scope app).
    #[arg(long, visible_alias = "key-id", env = "SMOOCH_EMULATOR_MAKER_KEY_ID")]
    maker_key_id: String,
    /// Secret of the signing key. A value starting with '-' is taken as
    /// the secret.
    #[arg(
        long,
        visible_alias = "secret",
        env = "SMOOCH_EMULATOR_MAKER_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    maker_secret: String,
    #[arg(long, value_enum, default_value_t = TokenScope::AppMaker)]
    scope: TokenScope,
    /// The user for --scope appUser.
    #[arg(long, required_if_eq("scope", "appUser"))]
    user_id: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TokenScope {
    #[value(name = "appMaker")]
    AppMaker,
    #[value(name = "app")]
    App,
    #[value(name = "appUser")]
    AppUser,
}

fn rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("must be a number from 0 to 1".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Token(args) => token(args),
        Command::Serve(args) => serve(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("smooch-emulator: {message}");
            ExitCode::FAILURE
        }
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let claims = match args.scope {
        TokenScope::AppMaker => Claims::app_maker(),
        TokenScope::App => Claims::app(),
        TokenScope::AppUser => Claims::app_user(args.user_id.unwrap_or_default()),
    };
    let token = jwt::sign(
        &args.maker_key_id,
        &Sensitive::new(args.maker_secret),
        &claims,
    )
    .map_err(|e| e.to_string())?;
    println!("{}", token.expose());
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), String> {
    telemetry::init_to(telemetry::Output::Stderr, args.log_level.as_deref(), false);
    let print_env = args.print_env.clone();
    let config = EmulatorConfig {
        listen: args.listen,
        state_file: args.state,
        maker_key_id: args.maker_key_id,
        maker_secret: args.maker_secret.map(Sensitive::new),
        faults: Faults {
            latency_ms: args.latency_ms,
            read_latency_ms: args.read_latency_ms,
            error_rate: args.error_rate,
            rate_limit_rate: args.rate_limit_rate,
            retry_after_secs: args.retry_after_secs,
        },
        body_limit_bytes: args.body_limit_bytes,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let running = smooch_emulator::spawn(config)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(path) = &print_env {
            write_env_file(path, &running)?;
        }
        print_banner(&running);
        wait_for_signal().await;
        tracing::info!("shutting down");
        running.shutdown().await.map_err(|e| e.to_string())
    })
}

/// What a developer needs to start: URL, key id, a JWT and a curl line.
/// The secret is shown only when it was generated here (once; it is in the
/// state file or the --print-env file afterwards, never in logs).
fn print_banner(running: &RunningEmulator) {
    let url = running.base_url();
    let token = running.app_maker_token();
    println!(
        "smooch-emulator listening on {url} (API under /v1, /v1.1 and /v2, admin under /_emulator)"
    );
    println!("app-maker key id: {}", running.maker_key_id());
    match running.maker_key_source() {
        MakerKeySource::Generated => println!(
            "app-maker secret (generated for this dev server, shown once): {}",
            running.maker_secret().expose()
        ),
        MakerKeySource::Configured => println!("app-maker secret: as configured"),
        MakerKeySource::StateFile => println!("app-maker secret: from the state file"),
    }
    println!("app-maker JWT: {}", token.expose());
    println!(
        "try: curl {url}/v1/apps -H 'authorization: Bearer {}'",
        token.expose()
    );
}

fn write_env_file(path: &std::path::Path, running: &RunningEmulator) -> Result<(), String> {
    let contents = format!(
        "SMOOCH_URL={}\nSMOOCH_KEY_ID={}\nSMOOCH_SECRET={}\nSMOOCH_TOKEN={}\n",
        running.base_url(),
        running.maker_key_id(),
        running.maker_secret().expose(),
        running.app_maker_token().expose(),
    );
    smooch_emulator::write_private_file(path, contents.as_bytes())
        .map_err(|e| format!("cannot write env file {}: {e}", path.display()))
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
