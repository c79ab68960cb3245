use std::sync::{Arc, Mutex};

use baton_kit::{Progress, ProgressSink};
use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Forwards a tool's progress to the client as `notifications/progress`, in order, and makes
/// sure every update is on the wire before the call's response.
///
/// Some clients (rmcp's among them) send a progress token with every request, so the forwarding
/// task starts only when a tool first reports: most calls never do.
#[derive(Debug)]
pub struct ProgressRelay {
    sink: Arc<RelaySink>,
}

#[derive(Debug)]
struct RelaySink {
    state: Mutex<State>,
    /// The server's runtime: tools report from their own worker threads (a batch's scoped
    /// threads, `spawn_blocking`), where there is no runtime to spawn the forwarder on.
    runtime: Handle,
}

#[derive(Debug)]
enum State {
    /// Nothing reported yet.
    Idle {
        peer: Peer<RoleServer>,
        token: ProgressToken,
    },
    /// Forwarding.
    Running {
        sender: mpsc::UnboundedSender<Progress>,
        forwarder: JoinHandle<()>,
    },
    /// The call has finished; late reports are dropped.
    Closed,
}

impl ProgressSink for RelaySink {
    fn report(&self, update: Progress) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let State::Idle { peer, token } = &*state {
            let (sender, receiver) = mpsc::unbounded_channel();
            let forwarder = self
                .runtime
                .spawn(forward(peer.clone(), token.clone(), receiver));
            *state = State::Running { sender, forwarder };
        }
        match &*state {
            // A send error means the forwarder stopped (the client went away): nothing to do.
            State::Running { sender, .. } => drop(sender.send(update)),
            State::Idle { .. } | State::Closed => {}
        }
    }
}

async fn forward(
    peer: Peer<RoleServer>,
    token: ProgressToken,
    mut receiver: mpsc::UnboundedReceiver<Progress>,
) {
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
}

impl ProgressRelay {
    /// A relay for the request, when the client asked for progress (sent a progress token).
    /// Called from the request's handler, so on the server's runtime.
    pub fn start(context: &RequestContext<RoleServer>) -> Option<ProgressRelay> {
        let token = context.meta.get_progress_token()?;
        let runtime = Handle::try_current().ok()?;
        Some(ProgressRelay {
            sink: Arc::new(RelaySink {
                state: Mutex::new(State::Idle {
                    peer: context.peer.clone(),
                    token,
                }),
                runtime,
            }),
        })
    }

    /// The sink to hand to the tool.
    pub fn sink(&self) -> Arc<dyn ProgressSink> {
        self.sink.clone()
    }

    /// Close the relay and wait until every update reported so far has been sent.
    pub async fn finish(self) {
        let state = match self.sink.state.lock() {
            Ok(mut state) => std::mem::replace(&mut *state, State::Closed),
            Err(_) => return,
        };
        match state {
            State::Running { sender, forwarder } => {
                drop(sender);
                let _ = forwarder.await;
            }
            State::Idle { .. } | State::Closed => {}
        }
    }
}
