use std::sync::{Arc, Mutex};

use baton_kit::{Progress, ProgressSink};
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Forwards a tool's progress to the client as `notifications/progress`, in order, and makes
/// sure every update is on the wire before the call's response.
#[derive(Debug)]
pub struct ProgressRelay {
    sink: Arc<RelaySink>,
    forwarder: JoinHandle<()>,
}

#[derive(Debug)]
struct RelaySink {
    sender: Mutex<Option<mpsc::UnboundedSender<Progress>>>,
}

impl ProgressSink for RelaySink {
    fn report(&self, update: Progress) {
        if let Ok(sender) = self.sender.lock()
            && let Some(sender) = sender.as_ref()
        {
            // A closed channel means the call finished; late updates have nowhere to go.
            let _ = sender.send(update);
        }
    }
}

impl ProgressRelay {
    /// A relay for the request, when the client asked for progress (sent a progress token).
    pub fn start(context: &RequestContext<RoleServer>) -> Option<ProgressRelay> {
        let token = context.meta.get_progress_token()?;
        Some(ProgressRelay::to_peer(context.peer.clone(), token))
    }

    fn to_peer(peer: Peer<RoleServer>, token: ProgressToken) -> ProgressRelay {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Progress>();
        let forwarder = tokio::spawn(async move {
            while let Some(update) = receiver.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), update.progress);
                if let Some(total) = update.total {
                    param = param.with_total(total);
                }
                if let Some(message) = update.message {
                    param = param.with_message(message);
                }
                if let Err(error) = peer.notify_progress(param).await {
                    tracing::debug!(%error, "progress notification not delivered");
                    break;
                }
            }
        });
        ProgressRelay {
            sink: Arc::new(RelaySink {
                sender: Mutex::new(Some(sender)),
            }),
            forwarder,
        }
    }

    /// The sink to hand to the tool.
    pub fn sink(&self) -> Arc<dyn ProgressSink> {
        self.sink.clone()
    }

    /// Close the relay and wait until every update reported so far has been sent.
    pub async fn finish(self) {
        if let Ok(mut sender) = self.sink.sender.lock() {
            sender.take();
        }
        let _ = self.forwarder.await;
    }
}
