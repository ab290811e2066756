//! The Smooch emulator, in-process over real HTTP, and clients of it.

use smooch::{Credentials, SmoochClient, Transport, TransportConfig};
use smooch_emulator::{EmulatorConfig, RunningEmulator};

/// An emulator on a free loopback port, in memory, without faults.
pub async fn start() -> RunningEmulator {
    smooch_emulator::spawn(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .expect("emulator starts")
}

/// An app-maker client of the emulator with its own transport (`config`
/// with the emulator's URL filled in), signing with the emulator's
/// app-maker key.
pub fn app_maker_client(
    emulator_base_url: &str,
    key_id: &str,
    secret: &smooch::Sensitive,
    config: TransportConfig,
) -> SmoochClient {
    let transport = Transport::new(
        TransportConfig {
            base_url: emulator_base_url.to_string(),
            ..config
        },
        None,
    )
    .unwrap();
    SmoochClient::new(
        transport,
        &Credentials::app_maker_key(key_id, secret.clone()),
    )
    .unwrap()
}

/// [`app_maker_client`] of a running emulator.
pub fn client(emulator: &RunningEmulator, config: TransportConfig) -> SmoochClient {
    app_maker_client(
        emulator.base_url(),
        emulator.maker_key_id(),
        emulator.maker_secret(),
        config,
    )
}
