//! Head sampling: whether the spans of a trace are made at all. The decision is taken once,
//! where a trace starts — a call arriving over MCP or HTTP, a goal's run — from the standard
//! `OTEL_TRACES_SAMPLER` settings, carried with the work (a task-local), and read by the
//! exporter's filter: a call whose trace is not recorded makes no span. Sampling after the
//! spans are made (the SDK's sampler) still paid for making them, most of tracing's cost.

use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static RECORDED: bool;
    /// The span a face made for one pass through the gate, and that pass's tool, until the
    /// gate takes it.
    static FACE: std::cell::Cell<Option<(tracing::span::Id, Box<str>)>>;
}

/// Share of the traces started here that are recorded, as `f64` bits (1.0 at first).
static RATIO: AtomicU64 = AtomicU64::new(f64::to_bits(1.0));

/// Whether a client's sampled flag decides for its calls (`parentbased_*`, the default).
static FOLLOW_PARENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// How traces are sampled, from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Share of the traces started here that are recorded, 0 to 1.
    pub ratio: f64,
    /// Whether a client's `traceparent` decides for its calls when it carries a decision.
    pub follow_parent: bool,
}

/// What a sampler setting says is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplingError {
    /// A sampler this process does not know.
    #[error(
        "OTEL_TRACES_SAMPLER is `{0}`; it takes always_on, always_off, traceidratio, \
         parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
    )]
    Sampler(String),
    /// A ratio that is not a number from 0 to 1.
    #[error("OTEL_TRACES_SAMPLER_ARG is `{0}`; it takes a number from 0 to 1")]
    Ratio(String),
}

impl Sampling {
    /// Every trace recorded, a client's decision followed (OpenTelemetry's default).
    pub const ALL: Sampling = Sampling {
        ratio: 1.0,
        follow_parent: true,
    };

    /// The sampling that `sampler` and `arg` (the two variables' values) name. A ratio
    /// sampler without an argument records every trace, as the specification says.
    pub fn parse(sampler: Option<&str>, arg: Option<&str>) -> Result<Sampling, SamplingError> {
        let ratio = || -> Result<f64, SamplingError> {
            match arg {
                None => Ok(1.0),
                Some(arg) => arg
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|ratio| (0.0..=1.0).contains(ratio))
                    .ok_or_else(|| SamplingError::Ratio(arg.to_owned())),
            }
        };
        let (ratio, follow_parent) = match sampler.map(str::trim) {
            None | Some("") | Some("parentbased_always_on") => (1.0, true),
            Some("always_on") => (1.0, false),
            Some("always_off") => (0.0, false),
            Some("parentbased_always_off") => (0.0, true),
            Some("traceidratio") => (ratio()?, false),
            Some("parentbased_traceidratio") => (ratio()?, true),
            Some(other) => return Err(SamplingError::Sampler(other.to_owned())),
        };
        Ok(Sampling {
            ratio,
            follow_parent,
        })
    }
}

/// Sample the traces started from now on as `sampling` says.
pub fn set_sampling(sampling: Sampling) {
    RATIO.store(sampling.ratio.to_bits(), Ordering::Relaxed);
    FOLLOW_PARENT.store(sampling.follow_parent, Ordering::Relaxed);
}

/// Whether a trace continuing `traceparent` (a W3C header's value, when the caller sent one)
/// is recorded: as the caller decided, when it did and the sampling follows callers; else
/// by the ratio.
pub fn decide(traceparent: Option<&str>) -> bool {
    if FOLLOW_PARENT.load(Ordering::Relaxed)
        && let Some(sampled) = traceparent.and_then(sampled_flag)
    {
        return sampled;
    }
    let ratio = f64::from_bits(RATIO.load(Ordering::Relaxed));
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    // Without randomness from the system, record: a trace too many, never a hole.
    getrandom::u64().map_or(true, |draw| {
        (draw >> 11) as f64 / (1u64 << 53) as f64 <= ratio
    })
}

/// The sampled flag of a well-formed W3C `traceparent` (`00-<trace>-<span>-<flags>`).
fn sampled_flag(traceparent: &str) -> Option<bool> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let hex =
        |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let [version, trace, span, flags] = parts.as_slice() else {
        return None;
    };
    let valid = hex(version, 2)
        && *version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(span, 16)
        && span.bytes().any(|b| b != b'0')
        && hex(flags, 2);
    valid.then(|| u8::from_str_radix(flags, 16).is_ok_and(|flags| flags & 1 == 1))
}

/// `work`, its spans made only when `recorded` (see [`decide`]).
pub async fn scoped<F: Future>(recorded: bool, work: F) -> F::Output {
    RECORDED.scope(recorded, work).await
}

/// The decision for work started here: the trace's it belongs to, or outside any, a new
/// trace's (by the ratio).
pub fn current() -> bool {
    RECORDED.try_with(|r| *r).unwrap_or_else(|_| decide(None))
}

/// `work`, handed to another task, under [`current`]'s decision, and with the face's span
/// for the gate (see [`gate_on`]) when this task has not used it: it moves with the work.
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let face = FACE.try_with(std::cell::Cell::take).ok().flatten();
    RECORDED.scope(current(), FACE.scope(std::cell::Cell::new(face), work))
}

/// `make` (a span's creation, in the task that starts work) under the decision `recorded`.
pub fn in_scope<R>(recorded: bool, make: impl FnOnce() -> R) -> R {
    RECORDED.sync_scope(recorded, make)
}

/// Whether a span made here and now belongs to a recorded trace (outside any decision: yes).
pub fn recording() -> bool {
    RECORDED.try_with(|r| *r).unwrap_or(true)
}

/// `handling` — a face's handling of one call of `tool`, inside `span` — with `span` as the
/// gate's span for the first pass of `tool` through the gate in it: `span` declares the
/// gate's fields (`baton.principal`, `baton.args_digest`, `baton.decision`, `baton.outcome`,
/// `baton.audit.seq`) and the gate records them there instead of making a span of its own.
/// One span fewer per call. Another tool's pass on the way (an approval decided before the
/// call resumes), a later pass of `tool` (a call run again once approved), and passes in
/// other tasks make their own.
pub fn gate_on<F: Future>(
    span: &tracing::Span,
    tool: Box<str>,
    handling: F,
) -> impl Future<Output = F::Output> + use<F> {
    let face = span.id().map(|id| (id, tool));
    FACE.scope(std::cell::Cell::new(face), handling)
}

/// The span [`gate_on`] gave this pass of `tool`, when it is the current one (taken: once
/// per face).
pub(crate) fn face_span(tool: &str) -> Option<tracing::Span> {
    let (id, named) = FACE.try_with(std::cell::Cell::take).ok().flatten()?;
    if *named != *tool {
        // Another tool's pass: the face's span waits for its own tool's.
        let _ = FACE.try_with(|face| face.set(Some((id, named))));
        return None;
    }
    let current = tracing::Span::current();
    (current.id() == Some(id) && current.field("baton.audit.seq").is_some()).then_some(current)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use pretty_assertions::assert_eq;

    use super::*;

    #[test]
    fn the_standard_settings_parse_and_bad_ones_are_named() {
        let parse = |s, a| Sampling::parse(s, a);
        assert_eq!(parse(None, None), Ok(Sampling::ALL));
        assert_eq!(
            parse(Some("parentbased_traceidratio"), Some("0.01")),
            Ok(Sampling {
                ratio: 0.01,
                follow_parent: true
            })
        );
        assert_eq!(
            parse(Some("traceidratio"), None),
            Ok(Sampling {
                ratio: 1.0,
                follow_parent: false
            })
        );
        assert_eq!(parse(Some("always_off"), None).map(|s| s.ratio), Ok(0.0));
        assert_eq!(
            parse(Some("traceidratio"), Some("1.5")),
            Err(SamplingError::Ratio("1.5".into()))
        );
        assert_eq!(
            parse(Some("traceidratio"), Some("half")),
            Err(SamplingError::Ratio("half".into()))
        );
        assert_eq!(
            parse(Some("jaeger_remote"), None),
            Err(SamplingError::Sampler("jaeger_remote".into()))
        );
    }

    #[test]
    fn a_callers_sampled_flag_is_read_only_from_a_well_formed_traceparent() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let span = "00f067aa0ba902b7";
        assert_eq!(sampled_flag(&format!("00-{trace}-{span}-01")), Some(true));
        assert_eq!(sampled_flag(&format!("00-{trace}-{span}-00")), Some(false));
        assert_eq!(sampled_flag(&format!("00-{trace}-{span}-03")), Some(true));
        for bad in [
            format!("ff-{trace}-{span}-01"),
            format!("00-{}-{span}-01", "0".repeat(32)),
            format!("00-{trace}-{}-01", "0".repeat(16)),
            format!("00-{trace}-{span}"),
            format!("00-{trace}-{span}-zz"),
            "garbage".to_owned(),
        ] {
            assert_eq!(sampled_flag(&bad), None, "{bad}");
        }
    }
}
