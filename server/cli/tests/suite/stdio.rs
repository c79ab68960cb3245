//! A real rmcp client drives `baton serve` over stdio, in both protocol eras.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use super::common::{
    Home, modern_client, redact,
    session::{Era, assert_session, exercise},
};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;

#[tokio::test]
async fn legacy_client_2025_11_25() {
    let home = Home::new("");
    let (transport, _) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    assert_eq!(
        client
            .peer_info()
            .map(|info| info.protocol_version.to_string()),
        Some("2025-11-25".to_owned())
    );
    assert_session(Era::Legacy, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_client_2026_07_28() {
    let home = Home::new("");
    let (transport, _) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = modern_client(transport).await;
    assert_session(Era::Stateless, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}
