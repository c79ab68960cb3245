//! The console's stylesheet and script, compiled into the binary.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

pub(crate) const CSS_PATH: &str = "/console/assets/console.css";
pub(crate) const JS_PATH: &str = "/console/assets/console.js";

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// `GET /console/assets/{name}`.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}
