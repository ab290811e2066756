//! The operator binary as a process: leader election between replicas and
//! crash safety (kill -9 between a create and recording its id).

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::json;
use smooch_operator::resources::SmoochApp;
use std::time::{Duration, Instant};
use support::Harness;

fn app(name: &str) -> serde_json::Value {
    json!({"apiVersion": "smooch-operator.io/v1alpha1", "kind": "SmoochApp",
           "metadata": {"name": name}, "spec": {"name": name}})
}

async fn holder(h: &Harness) -> Option<String> {
    let lease = h
        .api::<Lease>()
        .get_opt("smooch-operator-leader")
        .await
        .unwrap()?;
    lease.spec?.holder_identity
}

#[tokio::test]
async fn one_leader_reconciles_and_a_standby_takes_over_when_it_dies() {
    let h = Harness::without_operator("leader").await;
    let flags = |id: &'static str| {
        [
            "--leader-elect",
            "--leader-election-lease-seconds",
            "3",
            "--identity",
            id,
        ]
    };
    let mut a = h.spawn_operator_process("a", &flags("replica-a"));
    let mut b = h.spawn_operator_process("b", &flags("replica-b"));

    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(id) = holder(&h).await {
            break id;
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    h.create::<SmoochApp>(app("one")).await;
    h.wait_ready::<SmoochApp>("one").await;

    // Kill the leader without letting it release the lease.
    let (leader, standby) = if first == "replica-a" {
        (&mut a, "replica-b")
    } else {
        (&mut b, "replica-a")
    };
    leader.kill9();
    let killed = Instant::now();
    h.create::<SmoochApp>(app("two")).await;
    h.wait_ready::<SmoochApp>("two").await;
    let takeover = killed.elapsed();
    assert_eq!(holder(&h).await.as_deref(), Some(standby));
    // Lease of 3 s: the standby must take over within a few lease periods.
    assert!(
        takeover < Duration::from_secs(15),
        "takeover took {takeover:?}"
    );
    assert_eq!(
        h.requests().routes.get("POST /v1/apps").copied(),
        Some(2),
        "each app created exactly once"
    );
    println!("leader takeover after kill -9: {takeover:?}");
    drop((a, b));
    h.finish().await;
}
