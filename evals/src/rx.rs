use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use baton_rx::{Code, Day, RuleBook, validate_bytes, validate_value};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{EvalError, Result};

/// One labelled prescription.
#[derive(Debug, Clone, PartialEq)]
pub struct RxCase {
    /// Case id (the file stem).
    pub id: String,
    /// `simple`, `fhir` or `text` (raw bytes, for malformed input).
    pub format: String,
    /// What the case is about.
    pub description: String,
    /// The rule source the expectation rests on (shown when the case mismatches).
    pub note: Option<String>,
    /// Expected verdict.
    pub valid: bool,
    /// Expected codes, exactly.
    pub codes: BTreeSet<Code>,
    /// For E-INPUT cases, the path the finding must name.
    pub path: Option<String>,
    /// The input.
    pub input: Input,
}

impl RxCase {
    /// The report `book` gives this case's input.
    pub fn report(&self, book: &RuleBook, today: Day) -> baton_rx::Report {
        match &self.input {
            Input::Json(value) => validate_value(book, value.clone(), today),
            Input::Text(text) => validate_bytes(book, text.as_bytes(), today),
        }
    }
}

/// A case's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A JSON value (either format).
    Json(Value),
    /// Raw text (not necessarily JSON).
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    valid: bool,
    codes: Vec<Code>,
    #[serde(default)]
    path: Option<String>,
}

/// Load every `*.json` case under `dir`, sorted by id.
pub fn load_rx_cases(dir: &Path) -> Result<Vec<RxCase>> {
    let io = |source| EvalError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files: Vec<_> = fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
    files.sort();
    files.iter().map(|path| load_case(path)).collect()
}

fn load_case(path: &Path) -> Result<RxCase> {
    let bad = |message: String| EvalError::Case {
        path: path.to_owned(),
        message,
    };
    let text = fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_owned(),
        source,
    })?;
    let Value::Object(mut object) =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?
    else {
        return Err(bad("not a JSON object".into()));
    };
    let mut take_str = |key: &str| match object.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad(format!("`{key}` must be a string"))),
    };
    let id = take_str("id")?;
    let format = take_str("format")?;
    let description = take_str("description")?;
    let note = match object.remove("note") {
        None => None,
        Some(Value::String(note)) => Some(note),
        Some(_) => return Err(bad("`note` must be a string".into())),
    };
    let expected: Expected =
        serde_json::from_value(object.remove("expected").unwrap_or(Value::Null))
            .map_err(|e| bad(format!("`expected`: {e}")))?;
    // `input` may legitimately be JSON null (a case about null input), so presence is
    // checked on the key, not the value.
    let input = match (object.remove("input"), object.remove("input_text")) {
        (Some(value), None) => Input::Json(value),
        (None, Some(Value::String(text))) => Input::Text(text),
        _ => {
            return Err(bad(
                "give exactly one of `input` or `input_text` (a string)".into(),
            ));
        }
    };
    if let Some(key) = object.keys().next() {
        return Err(bad(format!("unknown field `{key}`")));
    }
    Ok(RxCase {
        id,
        format,
        description,
        note,
        valid: expected.valid,
        codes: expected.codes.into_iter().collect(),
        path: expected.path,
        input,
    })
}

/// How one case went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseOutcome {
    /// Case id.
    pub id: String,
    /// Expected verdict.
    pub expected_valid: bool,
    /// Verdict given.
    pub valid: bool,
    /// Expected codes.
    pub expected_codes: BTreeSet<Code>,
    /// Codes given.
    pub codes: BTreeSet<Code>,
    /// For E-INPUT cases: the path expected and the path given, when they differ.
    pub path_mismatch: Option<(String, String)>,
    /// The case's note: the rule source its expectation rests on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CaseOutcome {
    /// Verdict, codes and (for E-INPUT) path all as labelled.
    pub fn exact(&self) -> bool {
        self.valid == self.expected_valid
            && self.codes == self.expected_codes
            && self.path_mismatch.is_none()
    }
}

/// Precision and recall of one code.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CodeScore {
    /// Cases labelled with the code and given it.
    pub true_positives: usize,
    /// Cases given it but not labelled with it.
    pub false_positives: usize,
    /// Cases labelled with it but not given it.
    pub false_negatives: usize,
}

impl CodeScore {
    /// TP / (TP + FP); 1 when the code was never given.
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// TP / (TP + FN); 1 when the code was never expected.
    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// The scores of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RxScores {
    /// Rules version evaluated.
    pub rules_version: String,
    /// Cases run.
    pub cases: usize,
    /// Cases by format.
    pub by_format: BTreeMap<String, usize>,
    /// Cases labelled invalid.
    pub invalid_cases: usize,
    /// Of those, how many were found invalid.
    pub detected: usize,
    /// Cases labelled valid.
    pub valid_cases: usize,
    /// Of those, how many were rejected.
    pub false_rejections: usize,
    /// Per code.
    pub per_code: BTreeMap<Code, CodeScore>,
    /// Cases whose verdict, codes and path were all exactly as labelled.
    pub exact: usize,
    /// Cases that were not.
    pub mismatches: Vec<CaseOutcome>,
}

impl RxScores {
    /// Detection rate on invalid cases.
    pub fn detection_rate(&self) -> f64 {
        ratio(self.detected, self.invalid_cases)
    }

    /// False-rejection rate on valid cases.
    pub fn false_rejection_rate(&self) -> f64 {
        if self.valid_cases == 0 {
            0.0
        } else {
            self.false_rejections as f64 / self.valid_cases as f64
        }
    }

    /// 100 % detection, no false rejections, every case exact.
    pub fn targets_met(&self) -> bool {
        self.detected == self.invalid_cases
            && self.false_rejections == 0
            && self.mismatches.is_empty()
    }

    /// The report `baton eval rx` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let formats: Vec<String> = self
            .by_format
            .iter()
            .map(|(format, n)| format!("{n} {format}"))
            .collect();
        let _ = writeln!(
            out,
            "rx eval: {} cases ({}), rules {}",
            self.cases,
            formats.join(", "),
            self.rules_version
        );
        let _ = writeln!(
            out,
            "detection on invalid cases:   {}/{} = {:.1} %",
            self.detected,
            self.invalid_cases,
            self.detection_rate() * 100.0
        );
        let _ = writeln!(
            out,
            "false rejections of valid:    {}/{} = {:.1} %",
            self.false_rejections,
            self.valid_cases,
            self.false_rejection_rate() * 100.0
        );
        let _ = writeln!(
            out,
            "exact (verdict + codes):      {}/{}",
            self.exact, self.cases
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:>5} {:>4} {:>4} {:>9} {:>7}",
            "code", "TP", "FP", "FN", "precision", "recall"
        );
        for (code, score) in &self.per_code {
            let _ = writeln!(
                out,
                "{:<24} {:>5} {:>4} {:>4} {:>8.1}% {:>6.1}%",
                code.as_str(),
                score.true_positives,
                score.false_positives,
                score.false_negatives,
                score.precision() * 100.0,
                score.recall() * 100.0
            );
        }
        if !self.mismatches.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(out, "mismatches:");
            for m in &self.mismatches {
                let list = |codes: &BTreeSet<Code>| {
                    codes
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    out,
                    "  {}: expected {} [{}], got {} [{}]{}",
                    m.id,
                    if m.expected_valid { "valid" } else { "invalid" },
                    list(&m.expected_codes),
                    if m.valid { "valid" } else { "invalid" },
                    list(&m.codes),
                    m.path_mismatch
                        .as_ref()
                        .map(|(want, got)| format!(" (path: expected `{want}`, got `{got}`)"))
                        .unwrap_or_default()
                );
                if let Some(note) = &m.note {
                    let _ = writeln!(out, "    source: {note}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\ntargets (100 % detection, 0 false rejections, every code exact): {}",
            if self.targets_met() { "met" } else { "NOT met" }
        );
        out
    }
}

/// Run `cases` against `book`; `today` stands in for cases without `as_of`.
pub fn run_rx(book: &RuleBook, cases: &[RxCase], today: Day) -> RxScores {
    let mut scores = RxScores {
        rules_version: book.version.clone(),
        cases: cases.len(),
        by_format: BTreeMap::new(),
        invalid_cases: 0,
        detected: 0,
        valid_cases: 0,
        false_rejections: 0,
        per_code: Code::ALL
            .iter()
            .map(|&code| {
                (
                    code,
                    CodeScore {
                        true_positives: 0,
                        false_positives: 0,
                        false_negatives: 0,
                    },
                )
            })
            .collect(),
        exact: 0,
        mismatches: Vec::new(),
    };
    for case in cases {
        *scores.by_format.entry(case.format.clone()).or_insert(0) += 1;
        let report = case.report(book, today);
        let codes: BTreeSet<Code> = report.codes().into_iter().collect();
        if case.valid {
            scores.valid_cases += 1;
            if !report.valid {
                scores.false_rejections += 1;
            }
        } else {
            scores.invalid_cases += 1;
            if !report.valid {
                scores.detected += 1;
            }
        }
        for (code, score) in &mut scores.per_code {
            match (case.codes.contains(code), codes.contains(code)) {
                (true, true) => score.true_positives += 1,
                (false, true) => score.false_positives += 1,
                (true, false) => score.false_negatives += 1,
                (false, false) => {}
            }
        }
        let path_mismatch = case.path.as_ref().and_then(|want| {
            let got = report
                .findings
                .iter()
                .find(|f| f.code == Code::Input)
                .map(|f| f.path.clone())
                .unwrap_or_default();
            (got != *want).then(|| (want.clone(), got))
        });
        let outcome = CaseOutcome {
            id: case.id.clone(),
            expected_valid: case.valid,
            valid: report.valid,
            expected_codes: case.codes.clone(),
            codes,
            path_mismatch,
            note: case.note.clone(),
        };
        if outcome.exact() {
            scores.exact += 1;
        } else {
            scores.mismatches.push(outcome);
        }
    }
    scores
}
