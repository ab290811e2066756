//! The emulator in another project's tests: start it in-process on a free
//! port, point your Smooch client at it, then check what your code did
//! through the emulator's own state.
//!
//! ```text
//! cargo run -p smooch-emulator --example in_a_test
//! ```
//!
//! `cargo test` builds and runs it too (`test = true` in Cargo.toml), as
//! the `#[test]` at the bottom.

use smooch::models::AppParams;
use smooch::{Credentials, SmoochClient, Transport, TransportConfig};
use smooch_emulator::{EmulatorConfig, Faults};

/// What a test of your own code looks like.
async fn create_an_app_against_the_emulator() {
    // In memory, on 127.0.0.1:<free port>, with a generated app-maker key.
    let emulator = smooch_emulator::spawn(EmulatorConfig::default())
        .await
        .expect("the emulator starts");

    // Your code under test would get these two settings from its config.
    let base_url = emulator.base_url();
    let credentials =
        Credentials::app_maker_key(emulator.maker_key_id(), emulator.maker_secret().clone());

    let transport = Transport::new(
        TransportConfig {
            base_url: base_url.to_owned(),
            ..Default::default()
        },
        None,
    )
    .expect("transport");
    let smooch = SmoochClient::new(transport, &credentials).expect("client");
    let app = smooch
        .create_app(&AppParams {
            name: Some("Example".into()),
            ..Default::default()
        })
        .await
        .expect("the app is created");

    // The emulator answers like Smooch does; its counters say what was asked.
    assert_eq!(smooch.get_app(&app.id).await.expect("get").name, "Example");
    assert_eq!(emulator.state().request_counts().writes, 1);

    // Faults can be switched on for a test of your retry logic.
    emulator
        .state()
        .set_faults(Faults {
            latency_ms: 5,
            ..Default::default()
        })
        .expect("valid faults");

    println!("created app {} at {base_url}", app.id);
    emulator.shutdown().await.expect("clean stop");
}

#[tokio::main]
async fn main() {
    create_an_app_against_the_emulator().await;
}

#[test]
fn example_runs() {
    main();
}
