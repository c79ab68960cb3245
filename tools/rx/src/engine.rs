//! The engine: reads the rules in force on the check date and applies them to one
//! prescription. Every number, place and code comes from the tables; this file only knows what
//! each kind of check means.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{Span, ToSpan, Unit};

use crate::classify::{self, Shares, Strength};
use crate::input::InputError;
use crate::model::{
    Approval, AuthorityKind, Day, Form, Pathway, Patient, Prescriber, PrescriberKind, Prescription,
    Product, Quantity, Route, Schedule, StateAuthority, filled, label, names,
};
use crate::report::{Code, Finding, Report};
use crate::rules::{Check, Condition, Field, IdField, Rule, RuleBook};

/// Source given for input errors.
const INPUT_SOURCE: &str = "Baton prescription formats (docs/rx-format.md)";
/// Repeats beyond this are not a prescription but a typo.
const MAX_REPEATS: u32 = 100;

/// The report for input that could not be read.
pub fn input_report(book: &RuleBook, error: &InputError) -> Report {
    Report {
        valid: false,
        schedule: None,
        category: None,
        rules_version: book.version.clone(),
        findings: vec![Finding {
            code: Code::Input,
            severity: Code::Input.severity(),
            rule: "INPUT".into(),
            message: error.message.clone(),
            path: error.path.clone(),
            source: INPUT_SOURCE.into(),
        }],
    }
}

/// What is worked out once per prescription, before the rules run.
struct Context<'a> {
    rx: &'a Prescription,
    as_of: Day,
    jurisdiction: Option<String>,
    strength: Strength,
    category: Option<u8>,
    schedule: Option<Schedule>,
    /// Why a product that can be S3 is S4 in this prescription's use.
    outside_s3: Option<String>,
    age: Option<i64>,
    expiry: Option<Day>,
    /// The approval the approval rules judge: the one that breaks fewest of them.
    approval: Option<Chosen<'a>>,
}

impl<'a> Context<'a> {
    fn product(&self) -> Option<&'a Product> {
        self.rx.product.as_ref()
    }

    fn patient(&self) -> Option<&'a Patient> {
        self.rx.patient.as_ref()
    }

    fn prescriber(&self) -> Option<&'a Prescriber> {
        self.rx.prescriber.as_ref()
    }
}

/// An approval on the prescription with its position there, which its findings name.
#[derive(Clone, Copy)]
struct Chosen<'a> {
    position: usize,
    approval: &'a Approval,
}

impl Chosen<'_> {
    fn path(&self, field: &str) -> String {
        format!("approvals[{}].{field}", self.position)
    }
}

/// What the state-authority rules settle as they run: the authorities they matched (the
/// quantity limits read them) and the kinds already reported missing (each set is reported
/// once, however many rules ask for it).
#[derive(Default)]
struct Authorities<'a, 'b> {
    used: Vec<&'a StateAuthority>,
    reported: Vec<&'b [AuthorityKind]>,
}

/// Where one rule's findings go; every message starts with the rule's title.
struct Out<'o> {
    title: &'o str,
    emit: &'o mut dyn FnMut(&str, String),
}

impl Out<'_> {
    fn find(&mut self, path: &str, message: impl std::fmt::Display) {
        (self.emit)(path, format!("{}: {message}", self.title));
    }
}

/// When a kind of check runs, relative to the others.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Judges an approval: also run on every approval given, to choose the one that fits best.
    Approval,
    /// Reads what the other checks settled (the authorities matched), so runs after them.
    Late,
    /// Runs once, in table order.
    Main,
}

fn stage(check: &Check) -> Stage {
    match check {
        Check::ApprovalRequired { .. }
        | Check::ApprovalValid {}
        | Check::ApprovalCategory {}
        | Check::ApprovalDosageForm {}
        | Check::ApprovalHolder {}
        | Check::PrescriberPathway { .. } => Stage::Approval,
        Check::QuantityLimit {} => Stage::Late,
        Check::Category { .. }
        | Check::Schedule { .. }
        | Check::S3Limits { .. }
        | Check::DeclaredCategory {}
        | Check::DeclaredSchedule {}
        | Check::KnownJurisdiction { .. }
        | Check::PrescriberKindStated {}
        | Check::InhalationApproval { .. }
        | Check::ForbiddenRoute { .. }
        | Check::RouteFitsForm { .. }
        | Check::RequiredContent { .. }
        | Check::DatesInOrder {}
        | Check::RepeatInterval {}
        | Check::RepeatsWithinValidity {}
        | Check::Validity { .. }
        | Check::SelfPrescribing {}
        | Check::RegistrationConditions {}
        | Check::QuantityUnit { .. }
        | Check::StateAuthority { .. }
        | Check::PrescriberPractisesHere {}
        | Check::Rtpm {}
        | Check::Identifier { .. } => Stage::Main,
    }
}

/// Check `rx` against the rules in force on its `as_of` (or `today`).
pub fn validate(book: &RuleBook, rx: &Prescription, today: Day) -> Report {
    match check(book, rx, today) {
        Ok(report) => report,
        Err(error) => input_report(book, &error),
    }
}

fn check(book: &RuleBook, rx: &Prescription, today: Day) -> Result<Report, InputError> {
    sanity(rx)?;
    let as_of = rx.as_of.unwrap_or(today);
    covered(book, as_of)?;
    let mut ctx = context(book, rx, as_of)?;
    let mut in_force: Vec<(usize, &Rule)> = Vec::with_capacity(book.rules.len());
    in_force.extend(
        book.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| applies(rule, &ctx)),
    );
    ctx.expiry = expiry(&in_force, &ctx);
    ctx.approval = best_approval(&in_force, &mut ctx);
    let mut findings = rule_findings(&in_force, &ctx);
    findings.sort_by_key(|(index, _)| *index);

    // A more specific diagnosis replaces the general one it explains.
    let superseded: BTreeSet<Code> = findings
        .iter()
        .flat_map(|(index, _)| book.rules[*index].supersedes.iter().copied())
        .collect();
    let findings: Vec<Finding> = findings
        .into_iter()
        .filter(|(index, finding)| {
            !superseded.contains(&finding.code) || !book.rules[*index].supersedes.is_empty()
        })
        .map(|(_, finding)| finding)
        .collect();
    Ok(Report {
        valid: findings
            .iter()
            .all(|f| f.code.severity() != crate::Severity::Error),
        schedule: ctx.schedule,
        category: ctx.category,
        rules_version: book.version.clone(),
        findings,
    })
}

/// A day before the tables take effect (or after the last rule ends) has no rule to check:
/// "valid" there would be a plausible wrong answer.
fn covered(book: &RuleBook, as_of: Day) -> Result<(), InputError> {
    let Some((from, to)) = book.effective_range() else {
        return Ok(());
    };
    if as_of >= from && to.is_none_or(|to| as_of <= to) {
        return Ok(());
    }
    let range = match to {
        Some(to) => format!("{from} to {to}"),
        None => format!("{from} onwards"),
    };
    Err(InputError::new(
        "as_of",
        format!(
            "{as_of} is outside the days the rule tables cover ({range}, tables {}); no rule \
             can be checked on it",
            book.version
        ),
    ))
}

/// The product's strength, category and schedule, the patient's age and the jurisdiction.
fn context<'a>(
    book: &RuleBook,
    rx: &'a Prescription,
    as_of: Day,
) -> Result<Context<'a>, InputError> {
    let strength = match &rx.product {
        Some(product) => classify::strength(book, product)?,
        None => Strength::Missing {
            path: "product".into(),
            message: "no product".into(),
        },
    };
    let category = match &strength {
        Strength::Known(shares) => classify::category(book, shares, as_of).map(|(c, _)| c),
        Strength::Missing { .. } => None,
    };
    let age = rx
        .patient
        .as_ref()
        .and_then(|p| p.dob)
        .and_then(|dob| years_between(dob, as_of));
    let scheduled = match (&strength, category, rx.product.as_ref()) {
        (Strength::Known(shares), Some(category), Some(product)) => {
            let use_ = classify::Use {
                product,
                directions: rx.directions.as_deref(),
                age,
            };
            classify::schedule(book, category, shares, use_, as_of)
        }
        _ => classify::Scheduled::default(),
    };
    Ok(Context {
        rx,
        as_of,
        jurisdiction: rx
            .jurisdiction
            .as_deref()
            .map(|j| j.trim().to_ascii_uppercase())
            .filter(|j| !j.is_empty()),
        strength,
        category,
        schedule: scheduled.schedule,
        outside_s3: scheduled.outside_s3,
        age,
        expiry: None,
        approval: None,
    })
}

/// Every finding of the rules in force, with the index of the rule that made it.
fn rule_findings(in_force: &[(usize, &Rule)], ctx: &Context<'_>) -> Vec<(usize, Finding)> {
    let mut findings = Vec::new();
    let mut authorities = Authorities::default();
    for late in [false, true] {
        for &(index, rule) in in_force {
            let Some(code) = rule.code else { continue };
            if (stage(&rule.check) == Stage::Late) != late {
                continue;
            }
            let mut emit = |path: &str, message: String| {
                findings.push((index, rule.finding(code, path, message)));
            };
            let mut out = Out {
                title: &rule.title,
                emit: &mut emit,
            };
            evaluate(&rule.check, ctx, &mut authorities, &mut out);
        }
    }
    findings
}

/// The approval that fits best (fewest breaches of the approval rules, first on a tie).
/// `None` when the product needs no approval or none is given.
fn best_approval<'a>(in_force: &[(usize, &Rule)], ctx: &mut Context<'a>) -> Option<Chosen<'a>> {
    if !needs_approval(ctx) {
        return None;
    }
    let mut best: Option<(Chosen<'a>, usize)> = None;
    for (position, approval) in ctx.rx.approvals.iter().enumerate() {
        let candidate = Chosen { position, approval };
        ctx.approval = Some(candidate);
        let mut breaches = 0;
        for &(_, rule) in in_force {
            if rule.code.is_none() || stage(&rule.check) != Stage::Approval {
                continue;
            }
            let mut out = Out {
                title: &rule.title,
                emit: &mut |_: &str, _: String| breaches += 1,
            };
            evaluate(&rule.check, ctx, &mut Authorities::default(), &mut out);
        }
        if best.is_none_or(|(_, fewest)| breaches < fewest) {
            best = Some((candidate, breaches));
        }
    }
    ctx.approval = None;
    best.map(|(chosen, _)| chosen)
}

/// What one rule finds. Each kind of check means what its function says, and only that.
fn evaluate<'a, 'b>(
    check: &'b Check,
    ctx: &Context<'a>,
    authorities: &mut Authorities<'a, 'b>,
    out: &mut Out<'_>,
) {
    match check {
        // Classifying rules report nothing (the book refuses them a code); classify.rs
        // applies them, and the context carries the category and schedule they give.
        Check::Category { .. } | Check::Schedule { .. } | Check::S3Limits { .. } => {}
        Check::DeclaredCategory {} => declared_category(ctx, out),
        Check::DeclaredSchedule {} => declared_schedule(ctx, out),
        Check::KnownJurisdiction { known } => known_jurisdiction(known, ctx, out),
        Check::ApprovalRequired { pathways } => approval_required(pathways, ctx, out),
        Check::ApprovalValid {} => approval_valid(ctx, out),
        Check::ApprovalCategory {} => approval_category(ctx, out),
        Check::ApprovalDosageForm {} => approval_dosage_form(ctx, out),
        Check::ApprovalHolder {} => approval_holder(ctx, out),
        Check::PrescriberPathway { kind, not_allowed } => {
            prescriber_pathway(*kind, not_allowed, ctx, out);
        }
        Check::PrescriberKindStated {} => prescriber_kind_stated(ctx, out),
        Check::InhalationApproval { forms, routes } => {
            inhalation_approval(forms, routes, ctx, out);
        }
        Check::ForbiddenRoute { routes } => forbidden_route(routes, ctx, out),
        Check::RouteFitsForm { allowed } => route_fits_form(allowed, ctx, out),
        Check::RequiredContent {
            fields,
            generic_words,
        } => required_content(fields, generic_words, ctx, out),
        Check::DatesInOrder {} => dates_in_order(ctx, out),
        Check::RepeatInterval {} => repeat_interval(ctx, out),
        Check::RepeatsWithinValidity {} => repeats_within_validity(ctx, out),
        Check::Validity { months } => validity(*months, ctx, out),
        Check::SelfPrescribing {} => self_prescribing(ctx, out),
        Check::RegistrationConditions {} => registration_conditions(ctx, out),
        Check::QuantityUnit { units } => quantity_unit(units, ctx, out),
        Check::QuantityLimit {} => quantity_limit(ctx, authorities, out),
        Check::StateAuthority {
            authorities: kinds,
            when,
            age,
            months,
            unless_palliative,
            unless_age_at_least,
            require_number,
        } => {
            let wanted = Wanted {
                kinds,
                when: *when,
                age: *age,
                months: *months,
                unless_palliative: *unless_palliative,
                unless_age_at_least: *unless_age_at_least,
                require_number: *require_number,
            };
            state_authority(&wanted, ctx, authorities, out);
        }
        Check::PrescriberPractisesHere {} => prescriber_practises_here(ctx, out),
        Check::Rtpm {} => rtpm(ctx, out),
        Check::Identifier {
            field,
            letters,
            digits,
            prefix,
            luhn,
            medicare_check,
            or_digits,
        } => {
            let format = IdFormat {
                letters: *letters,
                digits: *digits,
                or_digits: *or_digits,
                prefix: prefix.as_deref(),
                luhn: *luhn,
                medicare_check: *medicare_check,
            };
            identifier(*field, &format, ctx, out);
        }
    }
}

/// Input a rule cannot sensibly look at: refused as `E-INPUT`.
fn sanity(rx: &Prescription) -> Result<(), InputError> {
    if let Some(product) = &rx.product
        && let Some(category) = product.declared_category
        && !(1..=5).contains(&category)
    {
        return Err(InputError::new(
            "product.declared_category",
            format!("{category} is not a TGA category (1–5)"),
        ));
    }
    for (index, approval) in rx.approvals.iter().enumerate() {
        if let Some(category) = approval.category
            && !(1..=5).contains(&category)
        {
            return Err(InputError::new(
                format!("approvals[{index}].category"),
                format!("{category} is not a TGA category (1–5)"),
            ));
        }
    }
    if rx.repeats > MAX_REPEATS {
        return Err(InputError::new(
            "repeats",
            format!(
                "{} repeats is not a prescription (at most {MAX_REPEATS})",
                rx.repeats
            ),
        ));
    }
    if let Some(quantity) = &rx.quantity
        && let Some(value) = quantity.value
        && value > 1e6
    {
        return Err(InputError::new(
            "quantity.value",
            format!("{value} is not a quantity anyone dispenses"),
        ));
    }
    Ok(())
}

fn applies(rule: &Rule, ctx: &Context<'_>) -> bool {
    rule.in_force(ctx.as_of)
        && (rule.jurisdictions.is_empty()
            || ctx
                .jurisdiction
                .as_ref()
                .is_some_and(|j| rule.jurisdictions.contains(j)))
        && (rule.schedules.is_empty() || ctx.schedule.is_some_and(|s| rule.schedules.contains(&s)))
}

/// Whole years from `from` to `to` (an age).
pub(crate) fn years_between(from: Day, to: Day) -> Option<i64> {
    let span = from.0.until((Unit::Year, to.0)).ok()?;
    Some(i64::from(span.get_years()))
}

fn add_months(day: Day, months: u32) -> Option<Day> {
    day.0
        .checked_add(Span::new().months(i64::from(months)))
        .ok()
        .map(Day)
}

fn add_days(day: Day, days: i64) -> Option<Day> {
    day.0.checked_add(days.days()).ok().map(Day)
}

/// Last day the prescription may be dispensed: the first `validity` rule in force for its
/// schedule, shortened by a validity period written on it.
fn expiry(in_force: &[(usize, &Rule)], ctx: &Context<'_>) -> Option<Day> {
    let authored = ctx.rx.authored_on?;
    let legal = in_force.iter().find_map(|(_, rule)| match rule.check {
        Check::Validity { months } => add_months(authored, months),
        _ => None,
    });
    match (legal, ctx.rx.valid_until) {
        (Some(legal), Some(written)) => Some(legal.min(written)),
        (legal, written) => legal.or(written),
    }
}

fn needs_approval(ctx: &Context<'_>) -> bool {
    ctx.rx.product.as_ref().is_some_and(|p| !p.artg)
}

/// Valid on both the prescription and the check date.
fn valid_on(from: Option<Day>, to: Option<Day>, ctx: &Context<'_>) -> Result<(), String> {
    let (Some(from), Some(to)) = (from, to) else {
        return Err("is not valid: its validity dates (valid_from, valid_to) are not given".into());
    };
    for (what, day) in [
        ("prescription date", ctx.rx.authored_on),
        ("check date", Some(ctx.as_of)),
    ] {
        let Some(day) = day else { continue };
        if day < from {
            return Err(format!(
                "is not yet valid on the {what} {day} (valid from {from})"
            ));
        }
        if day > to {
            return Err(format!("expired on {to}, before the {what} {day}"));
        }
    }
    Ok(())
}

fn quantity_within(total: f64, limit: &Quantity, unit: Option<&str>) -> Result<(), String> {
    let Some(max) = limit.value else {
        return Ok(());
    };
    let limit_unit = limit.unit.as_deref().map(classify::basis);
    let unit = unit.map(classify::basis);
    if limit_unit != unit {
        return Err(format!(
            "the limit is in {} but the quantity in {}",
            limit_unit.as_deref().unwrap_or("no unit"),
            unit.as_deref().unwrap_or("no unit")
        ));
    }
    if total > max + 1e-9 {
        return Err(format!(
            "{total} {} in all (repeats included) is more than the {max} allowed",
            unit.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}

fn generic_name(name: &str, generic_words: &[String]) -> bool {
    let mut words = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_none()
        || words.all(|w| {
            w.chars().all(|c| c.is_ascii_digit())
                || generic_words.iter().any(|g| g.eq_ignore_ascii_case(w))
        })
}

// The checks, one function per kind.

fn declared_category(ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(declared) = ctx.product().and_then(|p| p.declared_category) else {
        return;
    };
    let Some(actual) = ctx.category else { return };
    if declared == actual {
        return;
    }
    let shares = match &ctx.strength {
        Strength::Known(Shares {
            cbd_pct, thc_pct, ..
        }) => format!(" (CBD {cbd_pct:.1} %, THC {thc_pct:.1} % of cannabinoids)"),
        Strength::Missing { .. } => String::new(),
    };
    out.find(
        "product.declared_category",
        format_args!(
            "declared category {declared}, but the strengths make it category {actual}{shares}"
        ),
    );
}

fn declared_schedule(ctx: &Context<'_>, out: &mut Out<'_>) {
    if let (Some(declared), Some(actual)) = (
        ctx.product().and_then(|p| p.declared_schedule),
        ctx.schedule,
    ) && declared != actual
    {
        let why = ctx
            .outside_s3
            .as_deref()
            .map(|reason| format!(" as prescribed: {reason}"))
            .unwrap_or_default();
        out.find(
            "product.declared_schedule",
            format_args!(
                "declared {}, but the product is {}{why}",
                label(&declared),
                label(&actual)
            ),
        );
    }
}

fn known_jurisdiction(known: &[String], ctx: &Context<'_>, out: &mut Out<'_>) {
    match &ctx.jurisdiction {
        None => out.find(
            "jurisdiction",
            format_args!("no jurisdiction is given; use one of {}", known.join(", ")),
        ),
        Some(j) if !known.iter().any(|k| k.eq_ignore_ascii_case(j)) => out.find(
            "jurisdiction",
            format_args!(
                "`{j}` is not an Australian state or territory; use one of {}",
                known.join(", ")
            ),
        ),
        Some(_) => {}
    }
}

/// An unregistered product needs an approval; the chosen one must name an allowed pathway
/// and carry a number.
fn approval_required(pathways: &[Pathway], ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(chosen) = ctx.approval else {
        if needs_approval(ctx) {
            out.find(
                "approvals",
                format_args!(
                    "this unregistered product needs a TGA approval ({}), and none is given",
                    names(pathways)
                ),
            );
        }
        return;
    };
    let approval = chosen.approval;
    match approval.pathway {
        None => out.find(&chosen.path("pathway"), "the approval names no pathway"),
        Some(pathway) if !pathways.contains(&pathway) => out.find(
            &chosen.path("pathway"),
            format_args!(
                "{} cannot authorise an unregistered cannabis product; use {}",
                label(&pathway),
                names(pathways)
            ),
        ),
        Some(_) if !filled(approval.number.as_deref()) => {
            out.find(&chosen.path("number"), "the approval number is missing")
        }
        Some(_) => {}
    }
}

fn approval_valid(ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(chosen) = ctx.approval else { return };
    if let Err(why) = valid_on(chosen.approval.valid_from, chosen.approval.valid_to, ctx) {
        out.find(&chosen.path("valid_to"), format_args!("the approval {why}"));
    }
}

fn approval_category(ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(chosen) = ctx.approval else { return };
    match (chosen.approval.category, ctx.category) {
        (Some(approved), Some(actual)) if approved == actual => {}
        (_, None) => {}
        (approved, Some(actual)) => out.find(
            &chosen.path("category"),
            format_args!(
                "the product is category {actual}; the approval covers {}",
                approved.map_or("no category".to_owned(), |c| format!("category {c}"))
            ),
        ),
    }
}

fn approval_dosage_form(ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(chosen) = ctx.approval else { return };
    let Some(product) = ctx.product() else { return };
    match (chosen.approval.dosage_form, product.form) {
        (Some(approved), Some(actual)) if approved == actual => {}
        (_, None) => {}
        (approved, Some(actual)) => out.find(
            &chosen.path("dosage_form"),
            format_args!(
                "the product is {}; the approval covers {}",
                label(&actual),
                approved.map_or("no dosage form".to_owned(), |f| label(&f))
            ),
        ),
    }
}

fn approval_holder(ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(chosen) = ctx.approval else { return };
    let holder = chosen.approval.prescriber_ahpra.as_deref().map(str::trim);
    let mine = ctx
        .prescriber()
        .and_then(|p| p.ahpra.as_deref())
        .map(str::trim);
    match (holder, mine) {
        (Some(holder), Some(mine)) if holder.eq_ignore_ascii_case(mine) && !mine.is_empty() => {}
        (holder, mine) => out.find(
            &chosen.path("prescriber_ahpra"),
            format_args!(
                "the approval belongs to {}, the prescriber is {}",
                holder.unwrap_or("nobody named"),
                mine.unwrap_or("not identified by Ahpra number")
            ),
        ),
    }
}

fn prescriber_pathway(
    kind: PrescriberKind,
    not_allowed: &[Pathway],
    ctx: &Context<'_>,
    out: &mut Out<'_>,
) {
    let Some(chosen) = ctx.approval else { return };
    let is_kind = ctx.prescriber().and_then(|p| p.kind) == Some(kind);
    if let Some(pathway) = chosen.approval.pathway
        && is_kind
        && not_allowed.contains(&pathway)
    {
        out.find(
            &chosen.path("pathway"),
            format_args!(
                "a {} may not prescribe under {}",
                label(&kind).replace('_', " "),
                label(&pathway)
            ),
        );
    }
}

fn prescriber_kind_stated(ctx: &Context<'_>, out: &mut Out<'_>) {
    if ctx.prescriber().and_then(|p| p.kind).is_none() {
        out.find("prescriber.kind", "the prescriber's kind is not stated");
    }
}

fn inhalation_approval(forms: &[Form], routes: &[Route], ctx: &Context<'_>, out: &mut Out<'_>) {
    let inhaled = ctx.product().is_some_and(|p| {
        p.form.is_some_and(|f| forms.contains(&f)) || p.route.is_some_and(|r| routes.contains(&r))
    });
    // With an approval chosen, a form it does not cover is E-DOSAGE-FORM-MISMATCH (FED-07),
    // the root fault; this rule speaks only when no approval covers any inhalation form.
    let approved = ctx
        .rx
        .approvals
        .iter()
        .any(|a| a.dosage_form.is_some_and(|f| forms.contains(&f)));
    if inhaled && !approved && ctx.approval.is_none() {
        out.find(
            "product.route",
            format_args!(
                "an inhaled product needs an approval for an inhalation form ({})",
                names(forms)
            ),
        );
    }
}

fn forbidden_route(routes: &[Route], ctx: &Context<'_>, out: &mut Out<'_>) {
    if let Some(route) = ctx.product().and_then(|p| p.route)
        && routes.contains(&route)
    {
        out.find(
            "product.route",
            format_args!("the {} route is not allowed", label(&route)),
        );
    }
}

fn route_fits_form(allowed: &BTreeMap<Form, Vec<Route>>, ctx: &Context<'_>, out: &mut Out<'_>) {
    if let Some(p) = ctx.product()
        && let (Some(form), Some(route)) = (p.form, p.route)
        && let Some(routes) = allowed.get(&form)
        && !routes.contains(&route)
    {
        out.find(
            "product.route",
            format_args!(
                "{} is not taken by the {} route (use {})",
                label(&form),
                label(&route),
                names(routes)
            ),
        );
    }
}

fn required_content(
    fields: &[Field],
    generic_words: &[String],
    ctx: &Context<'_>,
    out: &mut Out<'_>,
) {
    for &field in fields {
        if let Some((path, message)) = missing_content(field, generic_words, ctx) {
            out.find(path, message);
        }
    }
}

/// Where and how `field` is missing or unusable, if it is.
fn missing_content<'c>(
    field: Field,
    generic_words: &[String],
    ctx: &'c Context<'_>,
) -> Option<(&'c str, Cow<'static, str>)> {
    let rx = ctx.rx;
    let patient = ctx.patient();
    let prescriber = ctx.prescriber();
    let product = ctx.product();
    let missing = |gone: bool, message: &'static str| gone.then_some(Cow::Borrowed(message));
    let message = match field {
        Field::AuthoredOn => missing(
            rx.authored_on.is_none(),
            "the date it was written is missing",
        ),
        Field::PatientName => missing(
            !filled(patient.and_then(|p| p.name.as_deref())),
            "the patient's name is missing",
        ),
        Field::PatientAddress => missing(
            !patient
                .and_then(|p| p.address.as_ref())
                .is_some_and(|a| a.is_complete()),
            "the patient's address (line, state, postcode) is missing or incomplete",
        ),
        Field::PatientDob => missing(
            patient.and_then(|p| p.dob).is_none(),
            "the patient's date of birth is missing",
        ),
        Field::PrescriberName => missing(
            !filled(prescriber.and_then(|p| p.name.as_deref())),
            "the prescriber's name is missing",
        ),
        Field::PrescriberAddress => missing(
            !prescriber
                .and_then(|p| p.address.as_ref())
                .is_some_and(|a| a.is_complete()),
            "the prescriber's practice address is missing or incomplete",
        ),
        Field::PrescriberPhone => missing(
            !filled(prescriber.and_then(|p| p.phone.as_deref())),
            "the prescriber's phone number is missing",
        ),
        Field::PrescriberSigned => missing(
            prescriber.and_then(|p| p.signed) != Some(true),
            "the prescription is not signed",
        ),
        Field::ProductName => match product.and_then(|p| p.name.as_deref()) {
            Some(name) if filled(Some(name)) && !generic_name(name, generic_words) => None,
            Some(name) if filled(Some(name)) => Some(Cow::Owned(format!(
                "`{name}` names a kind of product, not a product"
            ))),
            _ => Some(Cow::Borrowed("the product's name is missing")),
        },
        Field::ProductForm => missing(
            product.and_then(|p| p.form).is_none(),
            "the dosage form is missing",
        ),
        // An incomplete strength is reported where the strength reader found it wanting.
        Field::ProductStrength => {
            return match &ctx.strength {
                Strength::Known(_) => None,
                Strength::Missing { path, message } => Some((
                    path.as_str(),
                    Cow::Owned(format!("the strength is incomplete: {message}")),
                )),
            };
        }
        Field::Quantity => missing(
            rx.quantity.as_ref().is_none_or(|q| q.value.is_none()),
            "the quantity is missing",
        ),
        Field::Directions => missing(
            !filled(rx.directions.as_deref()),
            "the directions for use are missing",
        ),
    };
    message.map(|message| (field.path(), message))
}

fn dates_in_order(ctx: &Context<'_>, out: &mut Out<'_>) {
    let rx = ctx.rx;
    if let Some(authored) = rx.authored_on
        && authored > ctx.as_of
    {
        out.find(
            "authored_on",
            format_args!("written {authored}, after the check date {}", ctx.as_of),
        );
    }
    if let Some(dob) = ctx.patient().and_then(|p| p.dob)
        && dob > rx.authored_on.unwrap_or(ctx.as_of)
    {
        out.find(
            "patient.dob",
            format_args!("the patient's date of birth {dob} is after the prescription date"),
        );
    }
}

fn repeat_interval(ctx: &Context<'_>, out: &mut Out<'_>) {
    let rx = ctx.rx;
    if rx.repeats > 0 && rx.repeat_interval_days.is_none_or(|d| d == 0) {
        out.find(
            "repeat_interval_days",
            format_args!(
                "{} repeats are ordered with no interval between supplies",
                rx.repeats
            ),
        );
    }
}

fn repeats_within_validity(ctx: &Context<'_>, out: &mut Out<'_>) {
    let rx = ctx.rx;
    if let (Some(authored), Some(expiry), Some(interval)) =
        (rx.authored_on, ctx.expiry, rx.repeat_interval_days)
        && rx.repeats > 0
        && let Some(last) = add_days(authored, i64::from(rx.repeats) * i64::from(interval))
        && last > expiry
    {
        out.find(
            "repeats",
            format_args!(
                "the last of {} repeats every {interval} days is due {last}, after the \
                 prescription expires on {expiry}",
                rx.repeats
            ),
        );
    }
}

fn validity(months: u32, ctx: &Context<'_>, out: &mut Out<'_>) {
    if let Some(expiry) = ctx.expiry
        && ctx.as_of > expiry
    {
        out.find(
            "authored_on",
            format_args!(
                "valid {months} months from {}, it expired on {expiry}",
                ctx.rx.authored_on.map_or(String::new(), |d| d.to_string())
            ),
        );
    }
}

fn self_prescribing(ctx: &Context<'_>, out: &mut Out<'_>) {
    if ctx.rx.self_prescribed {
        out.find(
            "self_prescribed",
            "the prescriber may not prescribe this for themselves",
        );
    }
}

fn registration_conditions(ctx: &Context<'_>, out: &mut Out<'_>) {
    if ctx.prescriber().is_some_and(|p| p.registration_conditions) {
        out.find(
            "prescriber.registration_conditions",
            "the prescriber's registration carries conditions",
        );
    }
}

fn quantity_unit(units: &BTreeMap<Form, Vec<String>>, ctx: &Context<'_>, out: &mut Out<'_>) {
    let Some(quantity) = &ctx.rx.quantity else {
        return;
    };
    let Some(value) = quantity.value else { return };
    if value <= 0.0 {
        out.find(
            "quantity.value",
            format_args!("{value} is not a quantity to supply"),
        );
        return;
    }
    let unit = quantity.unit.as_deref().map(classify::basis);
    if let Some(form) = ctx.product().and_then(|p| p.form)
        && let Some(allowed) = units.get(&form)
        && !unit.as_ref().is_some_and(|u| allowed.contains(u))
    {
        out.find(
            "quantity.unit",
            format_args!(
                "{} is supplied in {}, not {}",
                label(&form),
                allowed.join(" or "),
                unit.as_deref().unwrap_or("no unit")
            ),
        );
    }
}

/// The whole supply (repeats included) within the chosen approval's limit and those of the
/// state authorities the state rules matched.
fn quantity_limit(ctx: &Context<'_>, authorities: &Authorities<'_, '_>, out: &mut Out<'_>) {
    let Some(quantity) = &ctx.rx.quantity else {
        return;
    };
    let Some(value) = quantity.value else { return };
    let total = value * f64::from(ctx.rx.repeats + 1);
    let unit = quantity.unit.as_deref();
    if let Some(chosen) = ctx.approval
        && let Some(limit) = &chosen.approval.max_quantity
        && let Err(why) = quantity_within(total, limit, unit)
    {
        out.find("quantity", format_args!("approval: {why}"));
    }
    for authority in &authorities.used {
        if let Some(limit) = &authority.max_quantity
            && let Err(why) = quantity_within(total, limit, unit)
        {
            out.find("quantity", format_args!("state authority: {why}"));
        }
    }
}

/// A `state_authority` rule's parameters.
struct Wanted<'b> {
    kinds: &'b [AuthorityKind],
    when: Condition,
    age: Option<u32>,
    months: Option<u32>,
    unless_palliative: bool,
    unless_age_at_least: Option<u32>,
    require_number: bool,
}

/// When the rule's condition holds and no exemption applies, an authority of one of its
/// kinds must be given; the one found is recorded for the quantity limits.
fn state_authority<'a, 'b>(
    wanted: &Wanted<'b>,
    ctx: &Context<'a>,
    authorities: &mut Authorities<'a, 'b>,
    out: &mut Out<'_>,
) {
    if authorities.reported.contains(&wanted.kinds) {
        return;
    }
    let Some(reason) = needs_authority(ctx, wanted.when, wanted.age, wanted.months) else {
        return;
    };
    if wanted.unless_palliative && ctx.patient().is_some_and(|p| p.palliative) {
        return;
    }
    if wanted
        .unless_age_at_least
        .is_some_and(|min| ctx.age.is_some_and(|a| a >= i64::from(min)))
    {
        return;
    }
    match find_authority(ctx, wanted.kinds, wanted.require_number) {
        Ok(authority) => authorities.used.push(authority),
        Err(problem) => {
            authorities.reported.push(wanted.kinds);
            out.find("state_authorities", format_args!("{reason}; {problem}"));
        }
    }
}

/// Why an authority is needed, when it is.
fn needs_authority(
    ctx: &Context<'_>,
    when: Condition,
    age: Option<u32>,
    months: Option<u32>,
) -> Option<String> {
    let patient = ctx.rx.patient.as_ref();
    match when {
        Condition::Always => Some("required for every S8 prescription here".into()),
        Condition::DrugDependent => patient
            .is_some_and(|p| p.drug_dependent)
            .then(|| "the patient is drug-dependent".into()),
        Condition::Compounded => ctx
            .rx
            .product
            .as_ref()
            .is_some_and(|p| p.compounded)
            .then(|| "the product is compounded".into()),
        Condition::UnderAge => {
            let limit = i64::from(age?);
            ctx.age
                .filter(|&years| years < limit)
                .map(|years| format!("the patient is {years}, under {limit}"))
        }
        Condition::TreatmentLongerThan => {
            let months = months?;
            let started = ctx.rx.treatment_started.or(ctx.rx.authored_on)?;
            let limit = add_months(started, months)?;
            (ctx.as_of > limit).then(|| {
                format!(
                    "treatment began {started}, more than {months} months before {}",
                    ctx.as_of
                )
            })
        }
    }
}

/// An authority of one of `kinds` for this jurisdiction that is valid (and numbered when
/// required); else why none is.
fn find_authority<'a>(
    ctx: &Context<'a>,
    kinds: &[AuthorityKind],
    require_number: bool,
) -> Result<&'a StateAuthority, String> {
    let wanted = names(kinds);
    let here = ctx.jurisdiction.as_deref().unwrap_or("");
    let mut problem = None;
    for authority in &ctx.rx.state_authorities {
        let jurisdiction_ok = authority
            .jurisdiction
            .as_deref()
            .is_some_and(|j| j.trim().eq_ignore_ascii_case(here));
        let kind_ok = authority.kind.is_some_and(|k| kinds.contains(&k));
        if !(jurisdiction_ok && kind_ok) {
            continue;
        }
        if let Err(why) = valid_on(authority.valid_from, authority.valid_to, ctx) {
            problem.get_or_insert(format!("the {wanted} authority {why}"));
            continue;
        }
        if require_number && !filled(authority.number.as_deref()) {
            problem.get_or_insert(format!("the {wanted} authority's number is missing"));
            continue;
        }
        return Ok(authority);
    }
    Err(problem.unwrap_or_else(|| format!("no {here} {wanted} authority is given")))
}

fn prescriber_practises_here(ctx: &Context<'_>, out: &mut Out<'_>) {
    let state = ctx
        .prescriber()
        .and_then(|p| p.address.as_ref())
        .and_then(|a| a.state.as_deref())
        .map(|s| s.trim().to_ascii_uppercase());
    if let (Some(state), Some(here)) = (state, &ctx.jurisdiction)
        && !state.is_empty()
        && &state != here
    {
        out.find(
            "prescriber.address.state",
            format_args!("the prescriber practises in {state}, not {here}"),
        );
    }
}

fn rtpm(ctx: &Context<'_>, out: &mut Out<'_>) {
    if ctx.rx.rtpm_checked != Some(true) {
        out.find(
            "rtpm_checked",
            "the monitoring system check is not recorded",
        );
    }
}

/// An `identifier` rule's format.
struct IdFormat<'b> {
    letters: usize,
    digits: usize,
    or_digits: Option<usize>,
    prefix: Option<&'b str>,
    luhn: bool,
    medicare_check: bool,
}

fn identifier(field: IdField, format: &IdFormat<'_>, ctx: &Context<'_>, out: &mut Out<'_>) {
    let value = match field {
        IdField::Ahpra => ctx.prescriber().and_then(|p| p.ahpra.as_deref()),
        IdField::Hpii => ctx.prescriber().and_then(|p| p.hpii.as_deref()),
        IdField::Ihi => ctx.patient().and_then(|p| p.ihi.as_deref()),
        IdField::Medicare => ctx.patient().and_then(|p| p.medicare.as_deref()),
    };
    let Some(value) = value.filter(|v| filled(Some(v))) else {
        return;
    };
    // Spaces people type inside numbers do not count; most values have none.
    let compact: Cow<'_, str> = if value.contains(char::is_whitespace) {
        Cow::Owned(value.chars().filter(|c| !c.is_whitespace()).collect())
    } else {
        Cow::Borrowed(value)
    };
    if let Err(why) = crate::ident::check(
        &compact,
        format.letters,
        format.digits,
        format.or_digits,
        format.prefix,
        format.luhn,
        format.medicare_check,
    ) {
        out.find(field.path(), format_args!("`{value}` {why}"));
    }
}
