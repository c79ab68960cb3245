//! The engine: reads the rules in force on the check date and applies them to one
//! prescription. Every number, place and code comes from the tables; this file only knows what
//! each kind of check means.

use std::borrow::Cow;
use std::collections::BTreeSet;

use jiff::{Span, ToSpan, Unit};

use crate::classify::{self, Shares, Strength};
use crate::input::InputError;
use crate::model::{
    Approval, AuthorityKind, Day, Prescription, Quantity, Schedule, StateAuthority, filled,
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
    age: Option<i64>,
    expiry: Option<Day>,
    /// The approval that fits best, with the approval rules it breaks: (rule index, finding).
    approval: Option<(&'a Approval, Vec<(usize, Finding)>)>,
    /// Authorities found for each kind set a state rule asked for.
    used_authorities: Vec<&'a StateAuthority>,
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
    // A day before the tables take effect (or after the last rule ends) has no rule to check:
    // "valid" there would be a plausible wrong answer.
    if let Some((from, to)) = book.effective_range()
        && (as_of < from || to.is_some_and(|to| as_of > to))
    {
        let range = match to {
            Some(to) => format!("{from} to {to}"),
            None => format!("{from} onwards"),
        };
        return Err(InputError::new(
            "as_of",
            format!(
                "{as_of} is outside the days the rule tables cover ({range}, tables {}); no \
                 rule can be checked on it",
                book.version
            ),
        ));
    }
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
    let schedule = match (&strength, category, rx.product.as_ref()) {
        (Strength::Known(shares), Some(category), Some(product)) => {
            classify::schedule(book, category, shares, product, as_of)
        }
        _ => None,
    };
    let age = rx
        .patient
        .as_ref()
        .and_then(|p| p.dob)
        .and_then(|dob| years_between(dob, as_of));
    let mut ctx = Context {
        rx,
        as_of,
        jurisdiction: rx
            .jurisdiction
            .as_deref()
            .map(|j| j.trim().to_ascii_uppercase())
            .filter(|j| !j.is_empty()),
        strength,
        category,
        schedule,
        age,
        expiry: None,
        approval: None,
        used_authorities: Vec::new(),
    };
    let mut in_force: Vec<(usize, &Rule)> = Vec::with_capacity(book.rules.len());
    in_force.extend(
        book.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| applies(rule, &ctx)),
    );
    ctx.expiry = expiry(&in_force, &ctx);
    ctx.approval = best_approval(&in_force, &ctx);

    let mut findings: Vec<(usize, Finding)> = Vec::new();
    let mut reported_authorities: Vec<&[AuthorityKind]> = Vec::new();
    for &(index, rule) in &in_force {
        let Some(code) = rule.code else { continue };
        let mut found = Vec::new();
        let mut emit = |path: &str, message: String| found.push(rule.finding(code, path, message));
        match &rule.check {
            Check::Category { .. } | Check::Schedule { .. } | Check::S3Limits { .. } => {}
            Check::ApprovalRequired { .. }
            | Check::ApprovalValid {}
            | Check::ApprovalCategory {}
            | Check::ApprovalDosageForm {}
            | Check::ApprovalHolder {}
            | Check::PrescriberPathway { .. } => {
                if let Some((_, breaches)) = &ctx.approval {
                    found.extend(
                        breaches
                            .iter()
                            .filter(|(at, _)| *at == index)
                            .map(|(_, f)| f.clone()),
                    );
                } else if let Check::ApprovalRequired { pathways } = &rule.check
                    && needs_approval(&ctx)
                {
                    emit(
                        "approvals",
                        format!(
                            "{}: this unregistered product needs a TGA approval ({}), and none \
                             is given",
                            rule.title,
                            names(pathways)
                        ),
                    );
                }
            }
            Check::StateAuthority {
                authorities,
                when,
                age,
                months,
                unless_palliative,
                unless_age_at_least,
                require_number,
            } => {
                if reported_authorities.contains(&authorities.as_slice()) {
                    continue;
                }
                let Some(reason) = needs_authority(&ctx, *when, *age, *months) else {
                    continue;
                };
                let patient = ctx.rx.patient.as_ref();
                if *unless_palliative && patient.is_some_and(|p| p.palliative) {
                    continue;
                }
                if unless_age_at_least
                    .is_some_and(|min| ctx.age.is_some_and(|a| a >= i64::from(min)))
                {
                    continue;
                }
                match find_authority(&ctx, authorities, *require_number) {
                    Ok(authority) => ctx.used_authorities.push(authority),
                    Err(problem) => {
                        reported_authorities.push(authorities.as_slice());
                        emit(
                            "state_authorities",
                            format!("{}: {reason}; {problem}", rule.title),
                        );
                    }
                }
            }
            // Limits are checked once every authority has been matched, below.
            Check::QuantityLimit {} => {}
            check => simple_check(check, rule, &ctx, &mut emit),
        }
        findings.extend(found.into_iter().map(|f| (index, f)));
    }
    for &(index, rule) in &in_force {
        let (Check::QuantityLimit {}, Some(code)) = (&rule.check, rule.code) else {
            continue;
        };
        simple_check(
            &rule.check,
            rule,
            &ctx,
            &mut |path: &str, message: String| {
                findings.push((index, rule.finding(code, path, message)));
            },
        );
    }
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

fn years_between(from: Day, to: Day) -> Option<i64> {
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

fn names<T: serde::Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| {
            serde_json::to_value(item)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn label<T: serde::Serialize>(item: &T) -> String {
    names(std::slice::from_ref(item))
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

/// The approval that fits best (fewest breaches, first on a tie) with its breaches. `None`
/// when the product needs no approval or none is given.
fn best_approval<'a>(
    in_force: &[(usize, &Rule)],
    ctx: &Context<'a>,
) -> Option<(&'a Approval, Vec<(usize, Finding)>)> {
    if !needs_approval(ctx) {
        return None;
    }
    let rx = ctx.rx;
    let product = rx.product.as_ref()?;
    let prescriber = rx.prescriber.as_ref();
    let mut best: Option<(&Approval, Vec<(usize, Finding)>)> = None;
    for (position, approval) in rx.approvals.iter().enumerate() {
        let path = format!("approvals[{position}]");
        let mut breaches = Vec::new();
        for &(index, rule) in in_force {
            let Some(code) = rule.code else { continue };
            let problem: Option<(String, String)> = match &rule.check {
                Check::ApprovalRequired { pathways } => match approval.pathway {
                    None => Some((
                        format!("{path}.pathway"),
                        "the approval names no pathway".into(),
                    )),
                    Some(pathway) if !pathways.contains(&pathway) => Some((
                        format!("{path}.pathway"),
                        format!(
                            "{} cannot authorise an unregistered cannabis product; use {}",
                            label(&pathway),
                            names(pathways)
                        ),
                    )),
                    Some(_) if !filled(approval.number.as_deref()) => Some((
                        format!("{path}.number"),
                        "the approval number is missing".into(),
                    )),
                    Some(_) => None,
                },
                Check::ApprovalValid {} => valid_on(approval.valid_from, approval.valid_to, ctx)
                    .err()
                    .map(|why| (format!("{path}.valid_to"), format!("the approval {why}"))),
                Check::ApprovalCategory {} => match (approval.category, ctx.category) {
                    (Some(approved), Some(actual)) if approved == actual => None,
                    (_, None) => None,
                    (approved, Some(actual)) => Some((
                        format!("{path}.category"),
                        format!(
                            "the product is category {actual}; the approval covers {}",
                            approved.map_or("no category".to_owned(), |c| format!("category {c}"))
                        ),
                    )),
                },
                Check::ApprovalDosageForm {} => match (approval.dosage_form, product.form) {
                    (Some(approved), Some(actual)) if approved == actual => None,
                    (_, None) => None,
                    (approved, Some(actual)) => Some((
                        format!("{path}.dosage_form"),
                        format!(
                            "the product is {}; the approval covers {}",
                            label(&actual),
                            approved.map_or("no dosage form".to_owned(), |f| label(&f))
                        ),
                    )),
                },
                Check::ApprovalHolder {} => {
                    let holder = approval.prescriber_ahpra.as_deref().map(str::trim);
                    let mine = prescriber.and_then(|p| p.ahpra.as_deref()).map(str::trim);
                    match (holder, mine) {
                        (Some(holder), Some(mine))
                            if holder.eq_ignore_ascii_case(mine) && !mine.is_empty() =>
                        {
                            None
                        }
                        (holder, mine) => Some((
                            format!("{path}.prescriber_ahpra"),
                            format!(
                                "the approval belongs to {}, the prescriber is {}",
                                holder.unwrap_or("nobody named"),
                                mine.unwrap_or("not identified by Ahpra number")
                            ),
                        )),
                    }
                }
                Check::PrescriberPathway { kind, not_allowed } => {
                    let is_kind = prescriber.and_then(|p| p.kind) == Some(*kind);
                    match approval.pathway {
                        Some(pathway) if is_kind && not_allowed.contains(&pathway) => Some((
                            format!("{path}.pathway"),
                            format!(
                                "a {} may not prescribe under {}",
                                label(kind).replace('_', " "),
                                label(&pathway)
                            ),
                        )),
                        _ => None,
                    }
                }
                _ => None,
            };
            if let Some((at, message)) = problem {
                breaches.push((
                    index,
                    rule.finding(code, at, format!("{}: {message}", rule.title)),
                ));
            }
        }
        let better = best
            .as_ref()
            .is_none_or(|(_, fewest)| breaches.len() < fewest.len());
        if better {
            best = Some((approval, breaches));
        }
    }
    best
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

fn simple_check(
    check: &Check,
    rule: &Rule,
    ctx: &Context<'_>,
    emit: &mut impl FnMut(&str, String),
) {
    let rx = ctx.rx;
    let product = rx.product.as_ref();
    let patient = rx.patient.as_ref();
    let prescriber = rx.prescriber.as_ref();
    let title = &rule.title;
    match check {
        Check::Category { .. }
        | Check::Schedule { .. }
        | Check::S3Limits { .. }
        | Check::ApprovalRequired { .. }
        | Check::ApprovalValid {}
        | Check::ApprovalCategory {}
        | Check::ApprovalDosageForm {}
        | Check::ApprovalHolder {}
        | Check::PrescriberPathway { .. }
        | Check::StateAuthority { .. } => {}
        Check::DeclaredCategory {} => {
            if let (Some(declared), Some(actual)) =
                (product.and_then(|p| p.declared_category), ctx.category)
                && declared != actual
            {
                let shares = match &ctx.strength {
                    Strength::Known(Shares {
                        cbd_pct, thc_pct, ..
                    }) => {
                        format!(" (CBD {cbd_pct:.1} %, THC {thc_pct:.1} % of cannabinoids)")
                    }
                    Strength::Missing { .. } => String::new(),
                };
                emit(
                    "product.declared_category",
                    format!(
                        "{title}: declared category {declared}, but the strengths make it category {actual}{shares}"
                    ),
                );
            }
        }
        Check::DeclaredSchedule {} => {
            if let (Some(declared), Some(actual)) =
                (product.and_then(|p| p.declared_schedule), ctx.schedule)
                && declared != actual
            {
                emit(
                    "product.declared_schedule",
                    format!(
                        "{title}: declared {}, but the product is {}",
                        label(&declared),
                        label(&actual)
                    ),
                );
            }
        }
        Check::KnownJurisdiction { known } => match &ctx.jurisdiction {
            None => emit(
                "jurisdiction",
                format!(
                    "{title}: no jurisdiction is given; use one of {}",
                    known.join(", ")
                ),
            ),
            Some(j) if !known.iter().any(|k| k.eq_ignore_ascii_case(j)) => emit(
                "jurisdiction",
                format!(
                    "{title}: `{j}` is not an Australian state or territory; use one of {}",
                    known.join(", ")
                ),
            ),
            Some(_) => {}
        },
        Check::PrescriberKindStated {} => {
            if prescriber.and_then(|p| p.kind).is_none() {
                emit(
                    "prescriber.kind",
                    format!("{title}: the prescriber's kind is not stated"),
                );
            }
        }
        Check::InhalationApproval { forms, routes } => {
            let inhaled = product.is_some_and(|p| {
                p.form.is_some_and(|f| forms.contains(&f))
                    || p.route.is_some_and(|r| routes.contains(&r))
            });
            let approved = rx
                .approvals
                .iter()
                .any(|a| a.dosage_form.is_some_and(|f| forms.contains(&f)));
            if inhaled && !approved {
                emit(
                    "product.route",
                    format!(
                        "{title}: an inhaled product needs an approval for an inhalation form ({})",
                        names(forms)
                    ),
                );
            }
        }
        Check::ForbiddenRoute { routes } => {
            if let Some(route) = product.and_then(|p| p.route)
                && routes.contains(&route)
            {
                emit(
                    "product.route",
                    format!("{title}: the {} route is not allowed", label(&route)),
                );
            }
        }
        Check::RouteFitsForm { allowed } => {
            if let Some(p) = product
                && let (Some(form), Some(route)) = (p.form, p.route)
                && let Some(routes) = allowed.get(&form)
                && !routes.contains(&route)
            {
                emit(
                    "product.route",
                    format!(
                        "{title}: {} is not taken by the {} route (use {})",
                        label(&form),
                        label(&route),
                        names(routes)
                    ),
                );
            }
        }
        Check::RequiredContent {
            fields,
            generic_words,
        } => {
            for field in fields {
                let missing: Option<String> = match field {
                    Field::AuthoredOn => rx
                        .authored_on
                        .is_none()
                        .then(|| "the date it was written is missing".into()),
                    Field::PatientName => (!filled(patient.and_then(|p| p.name.as_deref())))
                        .then(|| "the patient's name is missing".into()),
                    Field::PatientAddress => (!patient
                        .and_then(|p| p.address.as_ref())
                        .is_some_and(|a| a.is_complete()))
                    .then(|| {
                        "the patient's address (line, state, postcode) is missing or incomplete"
                            .into()
                    }),
                    Field::PatientDob => patient
                        .and_then(|p| p.dob)
                        .is_none()
                        .then(|| "the patient's date of birth is missing".into()),
                    Field::PrescriberName => (!filled(prescriber.and_then(|p| p.name.as_deref())))
                        .then(|| "the prescriber's name is missing".into()),
                    Field::PrescriberAddress => (!prescriber
                        .and_then(|p| p.address.as_ref())
                        .is_some_and(|a| a.is_complete()))
                    .then(|| "the prescriber's practice address is missing or incomplete".into()),
                    Field::PrescriberPhone => {
                        (!filled(prescriber.and_then(|p| p.phone.as_deref())))
                            .then(|| "the prescriber's phone number is missing".into())
                    }
                    Field::PrescriberSigned => (prescriber.and_then(|p| p.signed) != Some(true))
                        .then(|| "the prescription is not signed".into()),
                    Field::ProductName => match product.and_then(|p| p.name.as_deref()) {
                        Some(name) if filled(Some(name)) && !generic_name(name, generic_words) => {
                            None
                        }
                        Some(name) if filled(Some(name)) => {
                            Some(format!("`{name}` names a kind of product, not a product"))
                        }
                        _ => Some("the product's name is missing".into()),
                    },
                    Field::ProductForm => product
                        .and_then(|p| p.form)
                        .is_none()
                        .then(|| "the dosage form is missing".into()),
                    Field::ProductStrength => match &ctx.strength {
                        Strength::Known(_) => None,
                        Strength::Missing { path, message } => {
                            emit(
                                path,
                                format!("{title}: the strength is incomplete: {message}"),
                            );
                            None
                        }
                    },
                    Field::Quantity => match &rx.quantity {
                        Some(q) if q.value.is_some() => None,
                        _ => Some("the quantity is missing".into()),
                    },
                    Field::Directions => (!filled(rx.directions.as_deref()))
                        .then(|| "the directions for use are missing".into()),
                };
                if let Some(message) = missing {
                    emit(field.path(), format!("{title}: {message}"));
                }
            }
        }
        Check::DatesInOrder {} => {
            if let Some(authored) = rx.authored_on
                && authored > ctx.as_of
            {
                emit(
                    "authored_on",
                    format!(
                        "{title}: written {authored}, after the check date {}",
                        ctx.as_of
                    ),
                );
            }
            if let Some(dob) = patient.and_then(|p| p.dob)
                && dob > rx.authored_on.unwrap_or(ctx.as_of)
            {
                emit(
                    "patient.dob",
                    format!(
                        "{title}: the patient's date of birth {dob} is after the prescription date"
                    ),
                );
            }
        }
        Check::RepeatInterval {} => {
            if rx.repeats > 0 && rx.repeat_interval_days.is_none_or(|d| d == 0) {
                emit(
                    "repeat_interval_days",
                    format!(
                        "{title}: {} repeats are ordered with no interval between supplies",
                        rx.repeats
                    ),
                );
            }
        }
        Check::RepeatsWithinValidity {} => {
            if let (Some(authored), Some(expiry), Some(interval)) =
                (rx.authored_on, ctx.expiry, rx.repeat_interval_days)
                && rx.repeats > 0
                && let Some(last) = add_days(authored, i64::from(rx.repeats) * i64::from(interval))
                && last > expiry
            {
                emit(
                    "repeats",
                    format!(
                        "{title}: the last of {} repeats every {interval} days is due {last}, after the prescription expires on {expiry}",
                        rx.repeats
                    ),
                );
            }
        }
        Check::Validity { months } => {
            if let Some(expiry) = ctx.expiry
                && ctx.as_of > expiry
            {
                emit(
                    "authored_on",
                    format!(
                        "{title}: valid {months} months from {}, it expired on {expiry}",
                        rx.authored_on.map_or(String::new(), |d| d.to_string())
                    ),
                );
            }
        }
        Check::SelfPrescribing {} => {
            if rx.self_prescribed {
                emit(
                    "self_prescribed",
                    format!("{title}: the prescriber may not prescribe this for themselves"),
                );
            }
        }
        Check::RegistrationConditions {} => {
            if prescriber.is_some_and(|p| p.registration_conditions) {
                emit(
                    "prescriber.registration_conditions",
                    format!("{title}: the prescriber's registration carries conditions"),
                );
            }
        }
        Check::QuantityUnit { units } => {
            let Some(quantity) = &rx.quantity else { return };
            let Some(value) = quantity.value else { return };
            if value <= 0.0 {
                emit(
                    "quantity.value",
                    format!("{title}: {value} is not a quantity to supply"),
                );
                return;
            }
            let unit = quantity.unit.as_deref().map(classify::basis);
            if let Some(form) = product.and_then(|p| p.form)
                && let Some(allowed) = units.get(&form)
                && !unit.as_ref().is_some_and(|u| allowed.contains(u))
            {
                emit(
                    "quantity.unit",
                    format!(
                        "{title}: {} is supplied in {}, not {}",
                        label(&form),
                        allowed.join(" or "),
                        unit.as_deref().unwrap_or("no unit")
                    ),
                );
            }
        }
        Check::QuantityLimit {} => {
            let Some(quantity) = &rx.quantity else { return };
            let Some(value) = quantity.value else { return };
            let total = value * f64::from(rx.repeats + 1);
            let unit = quantity.unit.as_deref();
            if let Some((approval, _)) = &ctx.approval
                && let Some(limit) = &approval.max_quantity
                && let Err(why) = quantity_within(total, limit, unit)
            {
                emit("quantity", format!("{title}: approval: {why}"));
            }
            for authority in &ctx.used_authorities {
                if let Some(limit) = &authority.max_quantity
                    && let Err(why) = quantity_within(total, limit, unit)
                {
                    emit("quantity", format!("{title}: state authority: {why}"));
                }
            }
        }
        Check::PrescriberPractisesHere {} => {
            let state = prescriber
                .and_then(|p| p.address.as_ref())
                .and_then(|a| a.state.as_deref())
                .map(|s| s.trim().to_ascii_uppercase());
            if let (Some(state), Some(here)) = (state, &ctx.jurisdiction)
                && !state.is_empty()
                && &state != here
            {
                emit(
                    "prescriber.address.state",
                    format!("{title}: the prescriber practises in {state}, not {here}"),
                );
            }
        }
        Check::Rtpm {} => {
            if rx.rtpm_checked != Some(true) {
                emit(
                    "rtpm_checked",
                    format!("{title}: the monitoring system check is not recorded"),
                );
            }
        }
        Check::Identifier {
            field,
            letters,
            digits,
            prefix,
            luhn,
            medicare_check,
            or_digits,
        } => {
            let value = match field {
                IdField::Ahpra => prescriber.and_then(|p| p.ahpra.as_deref()),
                IdField::Hpii => prescriber.and_then(|p| p.hpii.as_deref()),
                IdField::Ihi => patient.and_then(|p| p.ihi.as_deref()),
                IdField::Medicare => patient.and_then(|p| p.medicare.as_deref()),
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
                *letters,
                *digits,
                *or_digits,
                prefix.as_deref(),
                *luhn,
                *medicare_check,
            ) {
                emit(field.path(), format!("{title}: `{value}` {why}"));
            }
        }
    }
}
