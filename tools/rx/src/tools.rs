//! The pack's tools: thin typed adapters over the engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_kit::{Effect, Registry, RegistryError, Tool, ToolContext, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::classify::{self, Strength};
use crate::engine::years_between;
use crate::input::{self, InputError};
use crate::model::{Day, Product, Schedule};
use crate::report::{Code, Report};
use crate::rules::{Check, RuleBook, RuleInfo};
use crate::{Rules, today};

/// Most prescriptions one batch call takes.
pub const MAX_BATCH: usize = 10_000;

/// Register every tool of the pack under `pack` (normally `rx`), reading rules from `rules`.
pub fn register(
    registry: &mut Registry,
    pack: &str,
    rules: Arc<Rules>,
) -> std::result::Result<(), RegistryError> {
    registry.register(
        pack,
        RxValidate {
            rules: rules.clone(),
        },
    )?;
    registry.register(
        pack,
        RxValidateBatch {
            rules: rules.clone(),
        },
    )?;
    registry.register(
        pack,
        RxClassifyProduct {
            rules: rules.clone(),
        },
    )?;
    registry.register(pack, RxRules { rules })?;
    Ok(())
}

/// Validate one prescription given as JSON text or a JSON value (either format).
pub fn validate_value(book: &RuleBook, value: Value, today: Day) -> Report {
    let parsed = match value {
        Value::String(text) => input::parse_bytes(text.as_bytes()),
        other => input::parse_value(other),
    };
    match parsed {
        Ok((rx, _)) => crate::validate(book, &rx, today),
        Err(error) => crate::engine::input_report(book, &error),
    }
}

/// Arguments of `rx_validate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateArgs {
    /// The prescription: a FHIR R4 Bundle (with `resourceType`) or Baton's simple format, as a
    /// JSON object (or JSON text). See the `knowledge://docs/rx-format.md` resource.
    #[schemars(schema_with = "baton_kit::object_or_text")]
    pub prescription: Value,
}

/// `rx_validate`.
#[derive(Debug)]
pub struct RxValidate {
    rules: Arc<Rules>,
}

impl Tool for RxValidate {
    type Args = ValidateArgs;
    type Output = Report;

    const NAME: &'static str = "rx_validate";
    const TITLE: Option<&'static str> = Some("Validate a medicinal-cannabis prescription");
    const DESCRIPTION: &'static str = "Check one Australian medicinal-cannabis prescription \
        (FHIR R4 Bundle or Baton's simple JSON) against TGA and state/territory rules in force \
        on its `as_of` date. Returns valid (false iff an error finding), the product's schedule \
        and TGA category, the rules version, and findings with code (E-… errors, W-… warnings), \
        rule id, message, field path and legal source. Unreadable input gives one E-INPUT finding.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: ValidateArgs, _ctx: ToolContext) -> baton_kit::Result<Report> {
        let book = self.rules.book()?;
        Ok(validate_value(&book, args.prescription, today()))
    }
}

/// Arguments of `rx_validate_batch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    /// The prescriptions (each like `rx_validate`'s `prescription`), at most 10,000.
    #[schemars(schema_with = "baton_kit::objects_or_texts")]
    pub prescriptions: Vec<Value>,
}

/// The verdicts on a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BatchReport {
    /// How many were checked.
    pub total: usize,
    /// How many are valid.
    pub valid: usize,
    /// How many are not.
    pub invalid: usize,
    /// How many prescriptions carry each code.
    pub by_code: BTreeMap<Code, usize>,
    /// Version of the rule tables used for all of them.
    pub rules_version: String,
    /// One report per prescription, in order.
    pub reports: Vec<Report>,
}

/// `rx_validate_batch`.
#[derive(Debug)]
pub struct RxValidateBatch {
    rules: Arc<Rules>,
}

impl Tool for RxValidateBatch {
    type Args = BatchArgs;
    type Output = BatchReport;

    const NAME: &'static str = "rx_validate_batch";
    const TITLE: Option<&'static str> = Some("Validate many prescriptions");
    const DESCRIPTION: &'static str = "Check many prescriptions (each a FHIR R4 Bundle or simple \
        JSON) with one rules version, reporting progress. Returns counts, prescriptions per code, \
        and one report per prescription in input order.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: BatchArgs, ctx: ToolContext) -> baton_kit::Result<BatchReport> {
        let total = args.prescriptions.len();
        if total > MAX_BATCH {
            return Err(ToolError::invalid_args(
                "prescriptions",
                format!("{total} prescriptions; at most {MAX_BATCH} per call"),
            ));
        }
        let book = self.rules.book()?;
        let today = today();
        let step = (total / 20).max(1);
        let mut reports = Vec::with_capacity(total);
        for (index, value) in args.prescriptions.into_iter().enumerate() {
            if index % step == 0 {
                ctx.check_cancelled()?;
                ctx.progress(
                    index as f64,
                    Some(total as f64),
                    format!("{index} of {total} checked"),
                );
                tokio::task::yield_now().await;
            }
            reports.push(validate_value(&book, value, today));
        }
        ctx.progress(
            total as f64,
            Some(total as f64),
            format!("{total} of {total} checked"),
        );
        let mut by_code = BTreeMap::new();
        for report in &reports {
            for code in report.codes() {
                *by_code.entry(code).or_insert(0) += 1;
            }
        }
        let valid = reports.iter().filter(|r| r.valid).count();
        Ok(BatchReport {
            total,
            valid,
            invalid: total - valid,
            by_code,
            rules_version: book.version.clone(),
            reports,
        })
    }
}

/// Arguments of `rx_classify_product`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyArgs {
    /// The product, as in the simple format's `product`.
    pub product: Product,
    /// Classify under the rules in force on this date (default today).
    #[serde(default)]
    pub as_of: Option<Day>,
    /// Directions for use ("0.5 mL under the tongue twice daily"): Schedule 3 limits the
    /// daily dose they give.
    #[serde(default)]
    pub directions: Option<String>,
    /// The patient's date of birth: Schedule 3 is for adults only.
    #[serde(default)]
    pub patient_dob: Option<Day>,
}

/// A product's classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Classification {
    /// TGA category, 1–5.
    pub category: u8,
    /// The rule that gave the category.
    pub category_rule: String,
    /// Poisons Standard schedule, in the use the directions and date of birth describe.
    pub schedule: Option<Schedule>,
    /// Why a product that can be Schedule 3 is not, in this use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_s3: Option<String>,
    /// Schedule 3 conditions Baton did not judge (no facts given, or none a prescription
    /// shows): a pharmacist checks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub s3_unchecked: Vec<String>,
    /// CBD share of total cannabinoids, percent.
    pub cbd_pct: f64,
    /// THC share of total cannabinoids, percent.
    pub thc_pct: f64,
    /// Total cannabinoids, mg per `per`.
    pub total_mg: f64,
    /// The basis of the strengths (mL, g, capsule…).
    pub per: String,
    /// Version of the rule tables used.
    pub rules_version: String,
}

/// `rx_classify_product`.
#[derive(Debug)]
pub struct RxClassifyProduct {
    rules: Arc<Rules>,
}

impl Tool for RxClassifyProduct {
    type Args = ClassifyArgs;
    type Output = Classification;

    const NAME: &'static str = "rx_classify_product";
    const TITLE: Option<&'static str> = Some("Classify a medicinal-cannabis product");
    const DESCRIPTION: &'static str = "Work out a product's TGA category (1–5, from its CBD and \
        THC share of total cannabinoids; % w/w is read as mg/g) and Poisons Standard schedule \
        (S3, S4 or S8) from its ingredient strengths, under the rules in force on `as_of`. Schedule \
        3 holds only within its conditions: give `directions` and `patient_dob` to have the daily \
        dose and age judged; conditions not judged are listed in `s3_unchecked`.";
    const EFFECT: Effect = Effect::Read;

    async fn call(
        &self,
        args: ClassifyArgs,
        _ctx: ToolContext,
    ) -> baton_kit::Result<Classification> {
        let book = self.rules.book()?;
        let day = args.as_of.unwrap_or_else(today);
        let invalid = |error: InputError| ToolError::invalid_args(error.path, error.message);
        let shares = match classify::strength(&book, &args.product).map_err(invalid)? {
            Strength::Known(shares) => shares,
            Strength::Missing { path, message } => {
                return Err(ToolError::invalid_args(path, message));
            }
        };
        let Some((category, rule)) = classify::category(&book, &shares, day) else {
            return Err(ToolError::failed(format!(
                "no category rule in force on {day} matches (CBD {:.1} %, THC {:.1} %)",
                shares.cbd_pct, shares.thc_pct
            )));
        };
        if let Some(dob) = args.patient_dob
            && dob > day
        {
            return Err(ToolError::invalid_args(
                "patient_dob",
                format!("{dob} is after the classification date {day}"),
            ));
        }
        let use_ = classify::Use {
            product: &args.product,
            directions: args.directions.as_deref(),
            age: args.patient_dob.and_then(|dob| years_between(dob, day)),
        };
        let scheduled = classify::schedule(&book, category, &shares, use_, day);
        Ok(Classification {
            category,
            category_rule: rule.to_owned(),
            schedule: scheduled.schedule,
            outside_s3: scheduled.outside_s3,
            s3_unchecked: scheduled.s3_unchecked,
            cbd_pct: shares.cbd_pct,
            thc_pct: shares.thc_pct,
            total_mg: shares.total_mg,
            per: shares.per,
            rules_version: book.version.clone(),
        })
    }
}

/// Arguments of `rx_rules`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesArgs {
    /// Only rules that apply in this state or territory (federal rules included).
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// Only rules reporting this code.
    #[serde(default)]
    pub code: Option<Code>,
    /// Say which rules are in force on this date (default today).
    #[serde(default)]
    pub as_of: Option<Day>,
}

/// The rule tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RulesList {
    /// Version of the tables.
    pub rules_version: String,
    /// The date `in_force` refers to.
    pub as_of: Day,
    /// The rules, in table order.
    pub rules: Vec<RuleInfo>,
}

/// `rx_rules`.
#[derive(Debug)]
pub struct RxRules {
    rules: Arc<Rules>,
}

impl Tool for RxRules {
    type Args = RulesArgs;
    type Output = RulesList;

    const NAME: &'static str = "rx_rules";
    const TITLE: Option<&'static str> = Some("List the prescription rules");
    const DESCRIPTION: &'static str = "List the prescription rules with id, version, code, \
        where and when each applies, whether it is in force, its legal source and its table \
        (readable as a `knowledge://rx/…` resource). Filter by jurisdiction or code.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: RulesArgs, _ctx: ToolContext) -> baton_kit::Result<RulesList> {
        let book = self.rules.book()?;
        let day = args.as_of.unwrap_or_else(today);
        let jurisdiction = args.jurisdiction.map(|j| j.trim().to_ascii_uppercase());
        let rules = book
            .rules
            .iter()
            .filter(|rule| {
                jurisdiction
                    .as_ref()
                    .is_none_or(|j| rule.jurisdictions.is_empty() || rule.jurisdictions.contains(j))
            })
            .filter(|rule| args.code.is_none_or(|code| rule.code == Some(code)))
            .filter(|rule| !matches!(rule.check, Check::Category { .. }) || args.code.is_none())
            .map(|rule| RuleInfo::of(rule, day))
            .collect();
        Ok(RulesList {
            rules_version: book.version.clone(),
            as_of: day,
            rules,
        })
    }
}
