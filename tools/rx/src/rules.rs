//! The rule tables: TOML rows in `knowledge/rx/`, each with an id, a version, the code it
//! reports, where and when it applies, and its source; compiled into a [`RuleBook`].

use std::collections::{BTreeMap, BTreeSet};

use baton_knowledge::Library;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AuthorityKind, Day, Form, Pathway, PrescriberKind, Route, Schedule};
use crate::report::{Code, Finding};
use crate::{Result, RxError};

/// The knowledge pack that holds the tables.
pub const PACK: &str = "rx";

/// One rule table file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    rule: Vec<Rule>,
    #[serde(default)]
    cannabinoid: Vec<Cannabinoid>,
}

/// One rule: where and when it applies, what it checks, what it reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    /// Stable id (`FED-03`, `WA-01`).
    pub id: String,
    /// Bumped whenever the rule's meaning changes.
    pub version: u32,
    /// What the rule requires, in a line.
    pub title: String,
    /// The code a breach reports (classification rules report none).
    #[serde(default)]
    pub code: Option<Code>,
    /// States and territories it applies in; empty means everywhere.
    #[serde(default)]
    pub jurisdictions: Vec<String>,
    /// Schedules it applies to; empty means every schedule.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    /// First day in force.
    pub effective_from: Day,
    /// Last day in force, if it has ended.
    #[serde(default)]
    pub effective_to: Option<Day>,
    /// Legislation or guidance it comes from.
    pub source: String,
    /// Codes this rule's finding replaces, being the more specific diagnosis.
    #[serde(default)]
    pub supersedes: Vec<Code>,
    /// What it checks.
    #[serde(flatten)]
    pub check: Check,
    /// The table it came from.
    #[serde(skip)]
    pub file: String,
}

impl Rule {
    /// A finding of this rule (which reports `code`) at `path`.
    pub fn finding(&self, code: Code, path: impl Into<String>, message: String) -> Finding {
        Finding {
            code,
            severity: code.severity(),
            rule: self.id.clone(),
            message,
            path: path.into(),
            source: self.source.clone(),
        }
    }

    /// Whether the rule is in force on `day`.
    pub fn in_force(&self, day: Day) -> bool {
        self.effective_from <= day && self.effective_to.is_none_or(|to| day <= to)
    }
}

/// What a rule checks, with its parameters. The engine knows each kind; the tables choose
/// which apply where, with what numbers, reporting which code.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Category by cannabinoid shares: the first category rule (in table order) that matches.
    /// No thresholds means "otherwise".
    Category {
        /// The category.
        category: u8,
        /// CBD share of total cannabinoids at least this (percent).
        #[serde(default)]
        cbd_min_pct: Option<f64>,
        /// THC share of total cannabinoids above this (percent).
        #[serde(default)]
        thc_above_pct: Option<f64>,
    },
    /// Schedule by category.
    Schedule {
        /// Categories.
        categories: Vec<u8>,
        /// Their schedule.
        schedule: Schedule,
    },
    /// Schedule 3 instead, for ARTG-registered products used within these conditions. A
    /// condition that cannot be judged (no directions, no date of birth) leaves the declared
    /// schedule standing; one known to fail makes the use S4.
    S3Limits {
        /// Categories that can be S3.
        categories: Vec<u8>,
        /// THC share of total cannabinoids at most this (percent).
        thc_max_pct: f64,
        /// Cannabinoids other than CBD at most this share of the total (percent).
        others_max_pct: f64,
        /// Forms that can be S3.
        forms: Vec<Form>,
        /// Routes that can be S3 (when the prescription names one).
        routes: Vec<Route>,
        /// The most CBD a day the directions may give (mg).
        max_daily_mg: f64,
        /// The youngest patient (years).
        min_age: u32,
        /// Conditions of the source text Baton cannot check from a prescription, reported
        /// with an S3 classification so that a pharmacist checks them.
        #[serde(default)]
        unchecked: Vec<String>,
    },
    /// The declared category must match the strengths.
    DeclaredCategory {},
    /// The declared schedule must match the product.
    DeclaredSchedule {},
    /// The jurisdiction must be one of these.
    KnownJurisdiction {
        /// Codes of the states and territories.
        known: Vec<String>,
    },
    /// An unregistered product needs an approval on one of these pathways.
    ApprovalRequired {
        /// Pathways that can authorise it.
        pathways: Vec<Pathway>,
    },
    /// The approval must be valid on the prescription and check dates.
    ApprovalValid {},
    /// The approval must cover the product's category.
    ApprovalCategory {},
    /// The approval must cover the product's dosage form.
    ApprovalDosageForm {},
    /// The approval must belong to this prescriber.
    ApprovalHolder {},
    /// Prescribers of this kind may not use these pathways.
    PrescriberPathway {
        /// The kind.
        kind: PrescriberKind,
        /// Pathways it may not use.
        not_allowed: Vec<Pathway>,
    },
    /// The prescriber's kind must be stated.
    PrescriberKindStated {},
    /// These forms or routes need an approval for an inhalation form.
    InhalationApproval {
        /// Inhalation forms.
        forms: Vec<Form>,
        /// Inhalation routes.
        routes: Vec<Route>,
    },
    /// These routes are never allowed.
    ForbiddenRoute {
        /// The routes.
        routes: Vec<Route>,
    },
    /// The route must suit the form.
    RouteFitsForm {
        /// Routes allowed for each form.
        allowed: BTreeMap<Form, Vec<Route>>,
    },
    /// These items must be present and not blank.
    RequiredContent {
        /// The items.
        fields: Vec<Field>,
        /// Words that alone do not name a product ("category 2 oil" is not a product).
        #[serde(default)]
        generic_words: Vec<String>,
    },
    /// Dates must be in order: born before prescribed, prescribed by the check date.
    DatesInOrder {},
    /// Repeats need an interval.
    RepeatInterval {},
    /// Every repeat must fall within the prescription's validity.
    RepeatsWithinValidity {},
    /// The prescription is valid this many months from `authored_on`.
    Validity {
        /// Months.
        months: u32,
    },
    /// No prescribing for oneself.
    SelfPrescribing {},
    /// No prescribing under registration conditions.
    RegistrationConditions {},
    /// Quantity positive, in a unit that suits the form.
    QuantityUnit {
        /// Units allowed for each form.
        units: BTreeMap<Form, Vec<String>>,
    },
    /// Quantity (repeats included) within the approval's and authorities' limits.
    QuantityLimit {},
    /// A state or territory authority is needed when `when` holds.
    StateAuthority {
        /// Kinds of authority that satisfy the rule.
        authorities: Vec<AuthorityKind>,
        /// When it is needed.
        when: Condition,
        /// For `under_age`.
        #[serde(default)]
        age: Option<u32>,
        /// For `treatment_longer_than`.
        #[serde(default)]
        months: Option<u32>,
        /// Not needed for palliative patients.
        #[serde(default)]
        unless_palliative: bool,
        /// Not needed for patients at least this old.
        #[serde(default)]
        unless_age_at_least: Option<u32>,
        /// The authority's number must be on the prescription.
        #[serde(default)]
        require_number: bool,
    },
    /// The prescriber must practise in the jurisdiction.
    PrescriberPractisesHere {},
    /// The monitoring system must have been checked.
    Rtpm {},
    /// An identifier's format.
    Identifier {
        /// Which identifier.
        field: IdField,
        /// Leading capital letters.
        #[serde(default)]
        letters: usize,
        /// Digits after them.
        digits: usize,
        /// Required prefix of the digits.
        #[serde(default)]
        prefix: Option<String>,
        /// Luhn check digit last.
        #[serde(default)]
        luhn: bool,
        /// Medicare's weighted check digit (9th digit).
        #[serde(default)]
        medicare_check: bool,
        /// Also accept this many digits (Medicare with its reference number).
        #[serde(default)]
        or_digits: Option<usize>,
    },
}

impl Check {
    /// The kind as written in the tables.
    pub fn name(&self) -> &'static str {
        match self {
            Check::Category { .. } => "category",
            Check::Schedule { .. } => "schedule",
            Check::S3Limits { .. } => "s3_limits",
            Check::DeclaredCategory {} => "declared_category",
            Check::DeclaredSchedule {} => "declared_schedule",
            Check::KnownJurisdiction { .. } => "known_jurisdiction",
            Check::ApprovalRequired { .. } => "approval_required",
            Check::ApprovalValid {} => "approval_valid",
            Check::ApprovalCategory {} => "approval_category",
            Check::ApprovalDosageForm {} => "approval_dosage_form",
            Check::ApprovalHolder {} => "approval_holder",
            Check::PrescriberPathway { .. } => "prescriber_pathway",
            Check::PrescriberKindStated {} => "prescriber_kind_stated",
            Check::InhalationApproval { .. } => "inhalation_approval",
            Check::ForbiddenRoute { .. } => "forbidden_route",
            Check::RouteFitsForm { .. } => "route_fits_form",
            Check::RequiredContent { .. } => "required_content",
            Check::DatesInOrder {} => "dates_in_order",
            Check::RepeatInterval {} => "repeat_interval",
            Check::RepeatsWithinValidity {} => "repeats_within_validity",
            Check::Validity { .. } => "validity",
            Check::SelfPrescribing {} => "self_prescribing",
            Check::RegistrationConditions {} => "registration_conditions",
            Check::QuantityUnit { .. } => "quantity_unit",
            Check::QuantityLimit {} => "quantity_limit",
            Check::StateAuthority { .. } => "state_authority",
            Check::PrescriberPractisesHere {} => "prescriber_practises_here",
            Check::Rtpm {} => "rtpm",
            Check::Identifier { .. } => "identifier",
        }
    }

    /// Whether the rule classifies the product rather than reporting a finding.
    fn classifies(&self) -> bool {
        matches!(
            self,
            Check::Category { .. } | Check::Schedule { .. } | Check::S3Limits { .. }
        )
    }
}

/// When a state authority is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// For every prescription the rule applies to.
    Always,
    /// For drug-dependent patients.
    DrugDependent,
    /// For compounded products.
    Compounded,
    /// For patients younger than `age`.
    UnderAge,
    /// When treatment has lasted longer than `months` by the check date.
    TreatmentLongerThan,
}

/// Prescription items a content rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Field {
    /// Date written.
    #[serde(rename = "authored_on")]
    AuthoredOn,
    /// Patient's name.
    #[serde(rename = "patient.name")]
    PatientName,
    /// Patient's address (line, state, postcode).
    #[serde(rename = "patient.address")]
    PatientAddress,
    /// Patient's date of birth.
    #[serde(rename = "patient.dob")]
    PatientDob,
    /// Prescriber's name.
    #[serde(rename = "prescriber.name")]
    PrescriberName,
    /// Prescriber's practice address.
    #[serde(rename = "prescriber.address")]
    PrescriberAddress,
    /// Prescriber's phone.
    #[serde(rename = "prescriber.phone")]
    PrescriberPhone,
    /// Prescriber's signature.
    #[serde(rename = "prescriber.signed")]
    PrescriberSigned,
    /// Product name (not just a category).
    #[serde(rename = "product.name")]
    ProductName,
    /// Dosage form.
    #[serde(rename = "product.form")]
    ProductForm,
    /// Strength of each cannabinoid.
    #[serde(rename = "product.ingredients")]
    ProductStrength,
    /// Quantity.
    #[serde(rename = "quantity")]
    Quantity,
    /// Directions for use.
    #[serde(rename = "directions")]
    Directions,
}

impl Field {
    /// The simple-format path.
    pub fn path(self) -> &'static str {
        match self {
            Field::AuthoredOn => "authored_on",
            Field::PatientName => "patient.name",
            Field::PatientAddress => "patient.address",
            Field::PatientDob => "patient.dob",
            Field::PrescriberName => "prescriber.name",
            Field::PrescriberAddress => "prescriber.address",
            Field::PrescriberPhone => "prescriber.phone",
            Field::PrescriberSigned => "prescriber.signed",
            Field::ProductName => "product.name",
            Field::ProductForm => "product.form",
            Field::ProductStrength => "product.ingredients",
            Field::Quantity => "quantity",
            Field::Directions => "directions",
        }
    }
}

/// Identifiers a format rule can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum IdField {
    /// The prescriber's Ahpra registration number.
    #[serde(rename = "prescriber.ahpra")]
    Ahpra,
    /// The prescriber's HPI-I.
    #[serde(rename = "prescriber.hpii")]
    Hpii,
    /// The patient's IHI.
    #[serde(rename = "patient.ihi")]
    Ihi,
    /// The patient's Medicare number.
    #[serde(rename = "patient.medicare")]
    Medicare,
}

impl IdField {
    /// The simple-format path.
    pub fn path(self) -> &'static str {
        match self {
            IdField::Ahpra => "prescriber.ahpra",
            IdField::Hpii => "prescriber.hpii",
            IdField::Ihi => "patient.ihi",
            IdField::Medicare => "patient.medicare",
        }
    }
}

/// Which family a cannabinoid counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Cannabidiol.
    Cbd,
    /// Tetrahydrocannabinol.
    Thc,
    /// Any other cannabinoid: counts in the total only.
    Other,
}

/// A cannabinoid the classifier recognises.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cannabinoid {
    /// Names it goes by on labels (matched without case).
    pub names: Vec<String>,
    /// What it counts as.
    pub family: Family,
    /// Factor to the neutral form (acids decarboxylate: 0.877).
    #[serde(default = "one")]
    pub factor: f64,
}

fn one() -> f64 {
    1.0
}

/// The compiled rule tables.
#[derive(Debug, Clone, Default)]
pub struct RuleBook {
    /// Every rule, in table order (tables by path).
    pub rules: Vec<Rule>,
    /// Recognised cannabinoids by lower-case name.
    pub cannabinoids: BTreeMap<String, (Family, f64)>,
    /// First 12 hex digits of the SHA-256 over every table, prefixed `rx-`.
    pub version: String,
}

impl RuleBook {
    /// The days on which these tables can judge a prescription: from the earliest
    /// `effective_from` to the latest `effective_to` (`None` at the end: still in force) of the
    /// rules whose breach is an error. Before them only warnings could fire (identifier
    /// formats, say), and "valid" would be a wrong answer. `None` with no such rule.
    pub fn effective_range(&self) -> Option<(Day, Option<Day>)> {
        let judging = || {
            self.rules.iter().filter(|r| {
                r.code
                    .is_some_and(|c| c.severity() == crate::Severity::Error)
            })
        };
        let from = judging().map(|r| r.effective_from).min()?;
        let to = if judging().any(|r| r.effective_to.is_none()) {
            None
        } else {
            judging().filter_map(|r| r.effective_to).max()
        };
        Some((from, to))
    }

    /// Compile the `rx` tables of `library`.
    pub fn from_library(library: &Library) -> Result<RuleBook> {
        RuleBook::from_tables(
            library
                .tables(PACK)
                .map(|document| (document.uri.as_str(), document.text.as_str())),
        )
    }

    /// Compile `(name, TOML text)` tables, in the order given.
    pub fn from_tables<'a>(
        tables: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RuleBook> {
        let mut hasher = Sha256::new();
        let mut book = RuleBook::default();
        let mut ids = BTreeSet::new();
        for (name, text) in tables {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            let table: Table = toml::from_str(text).map_err(|error| RxError::Table {
                file: name.to_owned(),
                message: error.to_string().trim().replace('\n', " "),
            })?;
            for mut rule in table.rule {
                check_rule(name, &rule, &mut ids)?;
                for jurisdiction in &mut rule.jurisdictions {
                    *jurisdiction = jurisdiction.to_ascii_uppercase();
                }
                rule.file = name.to_owned();
                book.rules.push(rule);
            }
            for cannabinoid in table.cannabinoid {
                for label in &cannabinoid.names {
                    let key = label.trim().to_lowercase();
                    if book
                        .cannabinoids
                        .insert(key, (cannabinoid.family, cannabinoid.factor))
                        .is_some()
                    {
                        return Err(RxError::Table {
                            file: name.to_owned(),
                            message: format!("cannabinoid name `{label}` is listed twice"),
                        });
                    }
                }
            }
        }
        if !book
            .rules
            .iter()
            .any(|rule| matches!(rule.check, Check::Category { .. }))
        {
            return Err(RxError::Book(
                "no `category` rule: products cannot be classified".into(),
            ));
        }
        if book.cannabinoids.is_empty() {
            return Err(RxError::Book("no [[cannabinoid]] rows".into()));
        }
        book.version = format!(
            "rx-{}",
            hasher
                .finalize()
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(book)
    }
}

/// Refuse a rule of table `name` whose id is taken (recording it in `ids`), whose `code`
/// does not fit its check, whose dates are backwards, that cites no source, or whose state
/// authority condition lacks the number it needs.
fn check_rule(name: &str, rule: &Rule, ids: &mut BTreeSet<String>) -> Result<()> {
    let bad = |message: String| RxError::Table {
        file: name.to_owned(),
        message: format!("rule `{}`: {message}", rule.id),
    };
    if !ids.insert(rule.id.clone()) {
        return Err(bad("the id is used twice".into()));
    }
    if rule.check.classifies() != rule.code.is_none() {
        return Err(bad(if rule.code.is_none() {
            format!(
                "check `{}` reports findings: give it a `code`",
                rule.check.name()
            )
        } else {
            format!(
                "check `{}` classifies: it takes no `code`",
                rule.check.name()
            )
        }));
    }
    if rule.effective_to.is_some_and(|to| to < rule.effective_from) {
        return Err(bad("effective_to is before effective_from".into()));
    }
    if rule.source.trim().is_empty() {
        return Err(bad("every rule needs a `source`".into()));
    }
    if let Check::StateAuthority {
        when, age, months, ..
    } = &rule.check
    {
        let missing = match when {
            Condition::UnderAge => age.is_none().then_some("age"),
            Condition::TreatmentLongerThan => months.is_none().then_some("months"),
            Condition::Always | Condition::DrugDependent | Condition::Compounded => None,
        };
        if let Some(missing) = missing {
            return Err(bad(format!("`when = \"{when:?}\"` needs `{missing}`")));
        }
    }
    Ok(())
}

/// A rule as `rx_rules` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleInfo {
    /// Stable id.
    pub id: String,
    /// Version of the rule.
    pub version: u32,
    /// What it requires.
    pub title: String,
    /// Code a breach reports; none for classification rules.
    pub code: Option<Code>,
    /// What kind of check it is.
    pub check: String,
    /// Where it applies; empty means everywhere.
    pub jurisdictions: Vec<String>,
    /// Schedules it applies to; empty means all.
    pub schedules: Vec<Schedule>,
    /// First day in force.
    pub effective_from: Day,
    /// Last day in force.
    pub effective_to: Option<Day>,
    /// Whether it is in force on the date asked about.
    pub in_force: bool,
    /// Its source.
    pub source: String,
    /// The table (`knowledge://rx/...`), readable as an MCP resource.
    pub table: String,
}

impl RuleInfo {
    /// Describe `rule` as of `day`.
    pub fn of(rule: &Rule, day: Day) -> RuleInfo {
        RuleInfo {
            id: rule.id.clone(),
            version: rule.version,
            title: rule.title.clone(),
            code: rule.code,
            check: rule.check.name().to_owned(),
            jurisdictions: rule.jurisdictions.clone(),
            schedules: rule.schedules.clone(),
            effective_from: rule.effective_from,
            effective_to: rule.effective_to,
            in_force: rule.in_force(day),
            source: rule.source.clone(),
            table: rule.file.clone(),
        }
    }
}
