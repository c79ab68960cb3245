//! The workers page: every worker of the store — where it runs, its capacity, what it runs
//! now, and how long ago it last beat (a worker silent past its lease has lost its items).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use baton_runs::StoreApi as _;
use maud::html;

use crate::layout::{Section, page as shell, span, when};
use crate::routes::Console;
use crate::session::Reviewer;

/// A worker not heard from for this long is shown as silent: three of the default lease's
/// heartbeats missed.
const SILENT_MS: u64 = 15_000;

/// `GET /console/workers`.
pub(crate) async fn page(State(console): State<Console>, reviewer: Reviewer) -> Response {
    let store = console.served.gate.store();
    let workers = match store.workers().await {
        Ok(workers) => workers,
        Err(error) => return crate::audit::unavailable(&error),
    };
    let now = console.served.gate.clock().now_ms();
    let body = html! {
        h1 { "Workers" }
        p.muted { (workers.len()) " workers have reported to this store (" code { "baton worker" } ")." }
        div.scroll {
            table.table {
                thead { tr { th { "Name" } th { "State" } th { "Host" } th { "Capacity" } th { "Running" } th.wide { "Last heartbeat" } } }
                tbody {
                    @for worker in &workers {
                        @let age = now.saturating_sub(worker.heartbeat_ms);
                        @let state = if worker.stopped { "stopped" } else if age > SILENT_MS { "silent" } else { "up" };
                        tr {
                            td { code { (worker.name) } }
                            td { span.state.(state) { (state) } }
                            td { (worker.host) " (pid " (worker.pid) ")" }
                            td { (worker.capacity) }
                            td {
                                @if worker.running.is_empty() { span.muted { "nothing" } }
                                @for id in &worker.running { code { (id) } " " }
                            }
                            td.wide { (span(age)) " ago · " (when(worker.heartbeat_ms)) }
                        }
                    }
                }
            }
        }
    };
    shell("Workers", Section::Workers, &reviewer, None, body).into_response()
}
