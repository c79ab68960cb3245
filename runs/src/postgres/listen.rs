//! Hearing other processes' changes: one connection per process `LISTEN`s on the changes
//! channel and bumps the local change counter on every notification. When the connection is
//! lost, the counter is bumped too (a waiter then reads again: it may have missed a
//! notification) and the listener reconnects with back-off.

use std::time::Duration;

use futures::StreamExt as _;
use tokio_postgres::{AsyncMessage, NoTls};

use super::CHANNEL;

/// How often the listening connection is asked whether it is alive, and how long it has to
/// answer.
const PING: Duration = Duration::from_secs(15);

/// Listen until the task is aborted (the store is dropped).
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    changes: tokio::sync::watch::Sender<u64>,
) {
    let bump = || changes.send_modify(|generation| *generation += 1);
    let mut delay = Duration::from_millis(50);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (heard, mut notifications) = tokio::sync::mpsc::unbounded_channel();
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let driver = tokio::spawn(async move {
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => {
                                if heard.send(()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "store change listener lost its connection");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        delay = Duration::from_millis(50);
                        // Whatever changed while nobody listened: waiters read again.
                        bump();
                        let mut ping = tokio::time::interval(PING);
                        loop {
                            tokio::select! {
                                heard = notifications.recv() => match heard {
                                    Some(()) => bump(),
                                    None => break,
                                },
                                _ = ping.tick() => {
                                    // A connection that went silent (no reset, no keepalive
                                    // answer yet) is given up rather than trusted.
                                    let alive = tokio::time::timeout(PING, client.simple_query("SELECT 1")).await;
                                    if !matches!(alive, Ok(Ok(_))) {
                                        tracing::warn!("store change listener's connection stopped answering; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "store change listener: LISTEN failed"),
                }
                driver.abort();
            }
            Err(error) => {
                tracing::warn!(error = %super::describe(&error), "store change listener cannot connect; retrying");
            }
        }
        bump();
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
