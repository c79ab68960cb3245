//! The page shell every console page shares, and how times read.

use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

use crate::session::{Flash, Reviewer};

/// Which section a page belongs to (the navigation marks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Approvals,
    Runs,
    Workers,
    Audit,
}

/// A whole page: `title`, the signed-in `reviewer`, a flash message, then `body`.
pub(crate) fn page(
    title: &str,
    section: Section,
    reviewer: &Reviewer,
    flash: Option<&Flash>,
    body: Markup,
) -> Html<String> {
    let link = |target: Section, href: &str, label: &str| {
        html! {
            @if target == section {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    a.skip href="#main" { "Skip to content" }
                    header {
                        a.brand href="/console/approvals" { "Baton" }
                        nav aria-label="Console" {
                            (link(Section::Approvals, "/console/approvals", "Approvals"))
                            (link(Section::Runs, "/console/runs", "Runs"))
                            (link(Section::Workers, "/console/workers", "Workers"))
                            (link(Section::Audit, "/console/audit", "Audit"))
                        }
                        form.signout method="post" action="/console/signout" {
                            input type="hidden" name="csrf" value=(reviewer.session.csrf);
                            span.who { (reviewer.session.principal.id) }
                            button type="submit" { "Sign out" }
                        }
                    }
                    main #main tabindex="-1" {
                        @if let Some(flash) = flash {
                            p.flash.error[flash.error] role="status" { (flash.text) }
                        }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Baton" }
            link rel="stylesheet" href=(crate::assets::CSS_PATH);
            script src=(crate::assets::JS_PATH) defer {}
        }
    }
}

/// The sign-in page.
pub(crate) fn signin(nonce: &str, problem: Option<&str>, no_tokens: bool) -> Html<String> {
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.signin {
                main #main {
                    h1 { "Baton console" }
                    p { "Sign in with your reviewer token (the bearer token your MCP clients use)." }
                    @if no_tokens {
                        p.flash.error role="alert" {
                            "No tokens are configured: add [[http.tokens]] entries with the reviewer role to baton.toml."
                        }
                    }
                    @if let Some(problem) = problem {
                        p.flash.error role="alert" { (problem) }
                    }
                    form method="post" action="/console/signin" {
                        input type="hidden" name="nonce" value=(nonce);
                        label for="token" { "Token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
    .into_string())
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn when(ms: u64) -> String {
    let stamp = baton_runs::rfc3339(ms);
    stamp
        .get(..19)
        .map(|s| s.replace('T', " "))
        .unwrap_or(stamp)
}

/// A length of time in words: `850 ms`, `42 s`, `3 min 5 s`, `2 h 10 min`.
pub(crate) fn span(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{} s", ms / 1_000),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1_000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// Text cut to `max` characters, with an ellipsis when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}
