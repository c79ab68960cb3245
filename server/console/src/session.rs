//! Who is signed in: sessions made from bearer tokens, their cookies and CSRF tokens, and the
//! checks every console request passes (Host, Origin, session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use baton_kit::{Principal, Role};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::routes::Console;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "baton_session";
/// The sign-in form's cookie: the form's nonce, so a sign-in cannot be posted from elsewhere.
pub(crate) const SIGNIN_COOKIE: &str = "baton_signin";

/// A signed-in reviewer.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who.
    pub principal: Arc<Principal>,
    /// The token every form of this session carries.
    pub csrf: String,
    /// A message for the next page (what the last form did).
    pub flash: Option<Flash>,
    started: Instant,
}

/// A message shown once, on the page after a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// Whether it reports a failure.
    pub error: bool,
    /// What happened.
    pub text: String,
}

/// Live sessions, in memory: a restart signs everyone out.
#[derive(Debug)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    lifetime: Duration,
    max: usize,
    /// When recent sign-ins failed: guessing tokens gets slow for everyone at once.
    failures: Mutex<std::collections::VecDeque<Instant>>,
}

/// Failed sign-ins allowed per [`FAILURE_WINDOW`], from anyone; past it sign-in answers
/// `429` until the window has room again.
const MAX_FAILURES: usize = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

impl Sessions {
    pub(crate) fn new(lifetime: Duration, max: usize) -> Sessions {
        Sessions {
            live: Mutex::new(HashMap::new()),
            lifetime,
            max: max.max(1),
            failures: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// Whether sign-in is refused for now: too many failed lately.
    pub(crate) fn throttled(&self) -> bool {
        let Ok(mut failures) = self.failures.lock() else {
            return true;
        };
        while failures
            .front()
            .is_some_and(|t| t.elapsed() > FAILURE_WINDOW)
        {
            failures.pop_front();
        }
        failures.len() >= MAX_FAILURES
    }

    /// Count a failed sign-in.
    pub(crate) fn failed(&self) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.push_back(Instant::now());
        }
    }

    /// A new session for `principal`: its id (the cookie's value).
    pub(crate) fn start(&self, principal: Arc<Principal>) -> Option<String> {
        let id = random_token()?;
        let session = Session {
            principal,
            csrf: random_token()?,
            flash: None,
            started: Instant::now(),
        };
        let mut live = self.live.lock().ok()?;
        live.retain(|_, s| s.started.elapsed() < self.lifetime);
        if live.len() >= self.max
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(id, _)| id.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), session);
        Some(id)
    }

    /// The live session `id`, if any.
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().ok()?;
        match live.get(id) {
            Some(session) if session.started.elapsed() < self.lifetime => Some(session.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// Take the flash message of session `id`.
    pub(crate) fn take_flash(&self, id: &str) -> Option<Flash> {
        self.live.lock().ok()?.get_mut(id)?.flash.take()
    }

    /// Leave a flash message for session `id`'s next page.
    pub(crate) fn flash(&self, id: &str, error: bool, text: String) {
        if let Ok(mut live) = self.live.lock()
            && let Some(session) = live.get_mut(id)
        {
            session.flash = Some(Flash { error, text });
        }
    }

    pub(crate) fn end(&self, id: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(id);
        }
    }
}

/// 32 random bytes as hex; `None` only if the OS has no randomness to give.
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compare secrets in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in `headers`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value for the console's cookies: HttpOnly, SameSite=Strict, scoped to
/// `/console`, Secure behind TLS; `max_age` 0 deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("baton_invalid=; Max-Age=0"))
}

/// Whether `principal` may use the console: reviewers and admins only.
pub(crate) fn may_review(principal: &Principal) -> bool {
    principal.has(Role::Reviewer) || principal.has(Role::Admin)
}

/// A request from a signed-in reviewer.
#[derive(Debug, Clone)]
pub(crate) struct Reviewer {
    /// The session's id.
    pub id: String,
    /// The session.
    pub session: Session,
}

impl FromRequestParts<Console> for Reviewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let found = cookie(&parts.headers, SESSION_COOKIE).and_then(|id| {
            console
                .sessions
                .get(id)
                .map(|session| (id.to_owned(), session))
        });
        match found {
            Some((id, session)) => Ok(Reviewer { id, session }),
            None if parts.method == http::Method::GET => {
                Err(Redirect::to("/console/signin").into_response())
            }
            None => Err((
                StatusCode::FORBIDDEN,
                "not signed in (or the session ended): sign in at /console/signin",
            )
                .into_response()),
        }
    }
}

impl Reviewer {
    /// The refusal of a form whose CSRF token is not this session's; `None` when it is.
    pub(crate) fn csrf_refusal(&self, given: &str) -> Option<Response> {
        if same_secret(given, &self.session.csrf) {
            None
        } else {
            tracing::warn!(principal = %self.session.principal.id, "console form refused: bad CSRF token");
            Some(
                (
                    StatusCode::FORBIDDEN,
                    "refused: the form's CSRF token is missing or wrong (reload the page and try again)",
                )
                    .into_response(),
            )
        }
    }
}

/// Every console request: a `Host` this server answers to (DNS rebinding), and for anything
/// but GET an `Origin`, when the browser sends one, of this server.
pub(crate) async fn guard(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let host = baton_mcp::transport::http::request_host(request.headers()).unwrap_or_default();
    if !console.host_allowed(host) {
        tracing::warn!(host, "console request refused: foreign Host");
        return (
            StatusCode::FORBIDDEN,
            "refused: this server does not answer to that Host",
        )
            .into_response();
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        if let Some(origin) = origin
            && !console.origin_allowed(origin, host)
        {
            tracing::warn!(origin, "console form refused: foreign Origin");
            return (
                StatusCode::FORBIDDEN,
                "refused: the form was posted from another site",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The sign-in form's fields.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct SignIn {
    token: String,
    #[serde(default)]
    nonce: String,
}

/// `GET /console/signin`: the form, with a fresh nonce in a cookie and a hidden field.
pub(crate) async fn signin_page(State(console): State<Console>) -> Response {
    signin_form(&console, None, StatusCode::OK)
}

fn signin_form(console: &Console, problem: Option<&str>, status: StatusCode) -> Response {
    let Some(nonce) = random_token() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no OS randomness").into_response();
    };
    let no_tokens = console.tokens.is_empty();
    let body = crate::layout::signin(&nonce, problem, no_tokens);
    let mut response = (status, body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &nonce, 600, console.secure),
    );
    response
}

/// `POST /console/signin`: a reviewer's or admin's token becomes a session cookie.
pub(crate) async fn signin(
    State(console): State<Console>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SignIn>,
) -> Response {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(expected, &form.nonce) {
        tracing::warn!("console sign-in refused: the form's nonce does not match its cookie");
        return signin_form(
            &console,
            Some("The sign-in form expired or was posted from elsewhere; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    if console.sessions.throttled() {
        tracing::warn!("console sign-in refused: too many failed sign-ins in the last minute");
        return signin_form(
            &console,
            Some("Too many failed sign-ins in the last minute; try again shortly."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let Some(principal) = console.tokens.principal(form.token.trim()) else {
        console.sessions.failed();
        tracing::warn!("console sign-in refused: unknown token");
        return signin_form(&console, Some("Unknown token."), StatusCode::UNAUTHORIZED);
    };
    if !may_review(&principal) {
        console.sessions.failed();
        tracing::warn!(principal = %principal.id, "console sign-in refused: not a reviewer");
        let problem = format!(
            "`{}` has no reviewer or admin role: the console is for reviewers.",
            principal.id
        );
        return signin_form(&console, Some(&problem), StatusCode::FORBIDDEN);
    }
    let Some(id) = console.sessions.start(principal.clone()) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session").into_response();
    };
    tracing::info!(principal = %principal.id, "signed in to the console");
    let lifetime = console.served.settings.console.session_hours * 3600;
    let mut response = Redirect::to("/console/approvals").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, lifetime, console.secure),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, "", 0, console.secure),
    );
    response
}

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl CsrfOnly {
    /// The token the form carried.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /console/signout`.
pub(crate) async fn signout(
    State(console): State<Console>,
    reviewer: Reviewer,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = reviewer.csrf_refusal(form.csrf()) {
        return refused;
    }
    console.sessions.end(&reviewer.id);
    let mut response = Redirect::to("/console/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, console.secure),
    );
    response
}
