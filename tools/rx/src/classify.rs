//! Product classification: cannabinoid shares → TGA category → schedule.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dose::{self, DailyDose};
use crate::input::InputError;
use crate::model::{Day, Ingredient, Product, Schedule, filled, label, names};
use crate::rules::{Check, Family, Rule, RuleBook};

/// Anything above this many mg of cannabinoid per mL, per g or per dose unit is not a
/// strength but a typo (pure cannabinoid is about 1,000 mg/g).
const MAX_MG_PER_BASIS: f64 = 1000.0;

/// Cannabinoid content, normalised to mg per one basis unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Shares {
    /// mg of CBD (acids converted) per `per`.
    pub cbd_mg: f64,
    /// mg of THC (acids converted) per `per`.
    pub thc_mg: f64,
    /// mg of all cannabinoids per `per`.
    pub total_mg: f64,
    /// The basis: mL, g, capsule…
    pub per: String,
    /// CBD share of total cannabinoids, percent.
    pub cbd_pct: f64,
    /// THC share of total cannabinoids, percent.
    pub thc_pct: f64,
}

/// What the strengths say.
#[derive(Debug, Clone, PartialEq)]
pub enum Strength {
    /// Cannabinoid content worked out.
    Known(Shares),
    /// A required part of a strength is missing (`path` names it).
    Missing {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
}

fn unit_to_mg(unit: &str) -> Option<f64> {
    match unit {
        "mg" => Some(1.0),
        "g" => Some(1000.0),
        "mcg" | "ug" | "µg" => Some(0.001),
        _ => None,
    }
}

/// The basis a strength is per, normalised (`ml` → `mL`, UCUM `{capsule}` → `capsule`,
/// `capsules` → `capsule`).
pub(crate) fn basis(per: &str) -> String {
    let per = per.trim().trim_start_matches('{').trim_end_matches('}');
    let lower = per.to_ascii_lowercase();
    match lower.as_str() {
        "ml" | "mls" => "mL".into(),
        // "capsules", "cartridges": the plural of a basis is that basis.
        other => match other.strip_suffix('s') {
            Some(single) if BASES.contains(&single) => single.to_owned(),
            _ => lower,
        },
    }
}

const BASES: &[&str] = &[
    "mL",
    "g",
    "capsule",
    "tablet",
    "wafer",
    "spray",
    "actuation",
    "cartridge",
    "each",
];

/// Work out the cannabinoid content of `product`. Absurd or unreadable strengths are input
/// errors; missing parts are [`Strength::Missing`].
pub fn strength(book: &RuleBook, product: &Product) -> Result<Strength, InputError> {
    let mut cbd = 0.0;
    let mut thc = 0.0;
    let mut total = 0.0;
    let mut common: Option<String> = None;
    let mut any = false;
    for (index, ingredient) in product.ingredients.iter().enumerate() {
        let at = |field: &str| format!("product.ingredients[{index}].{field}");
        let Some(&(family, factor)) = book
            .cannabinoids
            .get(&ingredient.name.trim().to_lowercase())
        else {
            // Carriers and terpenes (MCT oil, limonene) carry no cannabinoid.
            continue;
        };
        any = true;
        let (mg, per) = match per_basis(ingredient, &at)? {
            Reading::Known { mg, per } => (mg, per),
            Reading::Missing(missing) => return Ok(missing),
        };
        match &common {
            Some(first) if *first != per => {
                return Err(InputError::new(
                    at("per"),
                    format!(
                        "strengths are per `{first}` and per `{per}`: give all per the same basis"
                    ),
                ));
            }
            Some(_) => {}
            None => common = Some(per),
        }
        let mg = mg * factor;
        total += mg;
        match family {
            Family::Cbd => cbd += mg,
            Family::Thc => thc += mg,
            Family::Other => {}
        }
    }
    if !any || total <= 0.0 {
        return Ok(Strength::Missing {
            path: "product.ingredients".into(),
            message: if any {
                "every cannabinoid strength is zero".into()
            } else {
                "no cannabinoid with a strength (CBD, THC…) is listed".into()
            },
        });
    }
    Ok(Strength::Known(Shares {
        cbd_mg: cbd,
        thc_mg: thc,
        total_mg: total,
        per: common.unwrap_or_default(),
        cbd_pct: cbd * 100.0 / total,
        thc_pct: thc * 100.0 / total,
    }))
}

/// One cannabinoid's strength as read.
enum Reading {
    /// mg (before acid conversion) per one `per`.
    Known { mg: f64, per: String },
    /// A part of it is missing: the product's strength is [`Strength::Missing`].
    Missing(Strength),
}

/// Read one cannabinoid's strength as mg per basis; `at` names its fields.
fn per_basis(ingredient: &Ingredient, at: &dyn Fn(&str) -> String) -> Result<Reading, InputError> {
    let missing = |field: &str, message: String| {
        Ok(Reading::Missing(Strength::Missing {
            path: at(field),
            message,
        }))
    };
    let Some(amount) = ingredient.amount else {
        return missing("amount", format!("{} has no amount", ingredient.name));
    };
    if !amount.is_finite() || amount < 0.0 {
        return Err(InputError::new(
            at("amount"),
            format!("{amount} is not a strength: amounts are zero or more"),
        ));
    }
    let Some(unit) = ingredient.unit.as_deref().filter(|u| filled(Some(u))) else {
        return missing("unit", format!("{} has no unit", ingredient.name));
    };
    let unit = unit.trim();
    let (mg, per) = if unit == "%" {
        percent(amount, ingredient, at)?
    } else {
        let Some(scale) = unit_to_mg(unit) else {
            return Err(InputError::new(
                at("unit"),
                format!("unknown unit `{unit}`; use mg, g, mcg or %"),
            ));
        };
        let Some(per) = ingredient.per.as_deref().filter(|p| filled(Some(p))) else {
            return missing(
                "per",
                format!(
                    "{} {amount} {unit} per what (mL, g, capsule…)?",
                    ingredient.name
                ),
            );
        };
        let per = basis(per);
        if !BASES.contains(&per.as_str()) {
            return Err(InputError::new(
                at("per"),
                format!("unknown basis `{per}`; use one of {}", BASES.join(", ")),
            ));
        }
        (amount * scale, per)
    };
    if mg > MAX_MG_PER_BASIS {
        return Err(InputError::new(
            at("amount"),
            format!(
                "{amount} {unit} per {per} is not a possible strength (more than \
                 {MAX_MG_PER_BASIS} mg per {per})"
            ),
        ));
    }
    Ok(Reading::Known { mg, per })
}

/// A % strength: w/w, so per g, and no more than the whole product.
fn percent(
    amount: f64,
    ingredient: &Ingredient,
    at: &dyn Fn(&str) -> String,
) -> Result<(f64, String), InputError> {
    let per = ingredient
        .per
        .as_deref()
        .map_or_else(|| "g".to_owned(), basis);
    if per != "g" {
        return Err(InputError::new(
            at("per"),
            format!("a % strength is w/w, per g; got per `{per}`"),
        ));
    }
    if amount > 100.0 {
        return Err(InputError::new(
            at("amount"),
            format!("{amount} % is more than the whole product"),
        ));
    }
    // % w/w: 1 % is 10 mg per g.
    Ok((amount * 10.0, per))
}

/// Whether `part` is at least `pct` percent of `total`, exactly at the boundary (the shares
/// are compared as products, so 98 mg of 100 is 98 % and not 97.999…).
fn at_least(part: f64, total: f64, pct: f64) -> bool {
    part * 100.0 >= pct * total - total * 1e-12
}

/// The category the first matching `category` rule in force gives.
pub fn category<'a>(book: &'a RuleBook, shares: &Shares, day: Day) -> Option<(u8, &'a str)> {
    book.rules
        .iter()
        .filter(|rule| rule.in_force(day))
        .find_map(|rule| match &rule.check {
            Check::Category {
                category,
                cbd_min_pct,
                thc_above_pct,
            } => {
                let cbd_ok =
                    cbd_min_pct.is_none_or(|pct| at_least(shares.cbd_mg, shares.total_mg, pct));
                let thc_ok = thc_above_pct.is_none_or(|pct| {
                    shares.thc_mg * 100.0 > pct * shares.total_mg + shares.total_mg * 1e-12
                });
                (cbd_ok && thc_ok).then_some((*category, rule.id.as_str()))
            }
            _ => None,
        })
}

/// The use a schedule is judged for: the product, and where known the prescription's
/// directions and the patient's age on the check date.
#[derive(Debug, Clone, Copy)]
pub struct Use<'a> {
    /// The product.
    pub product: &'a Product,
    /// Directions for use, whose largest daily dose Schedule 3 limits.
    pub directions: Option<&'a str>,
    /// The patient's age in whole years.
    pub age: Option<i64>,
}

/// A product's schedule in one use, and how the Schedule 3 conditions stood.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scheduled {
    /// The schedule (none when no rule in force covers the category).
    pub schedule: Option<Schedule>,
    /// Why a product that can be S3 is not S3 in this use (a condition known to fail).
    pub outside_s3: Option<String>,
    /// Conditions of the S3 entry that were not judged: those no prescription shows, and
    /// those this one gives no facts for. Empty unless the schedule is S3.
    pub s3_unchecked: Vec<String>,
}

/// The schedule of a product of `category` in `use_`: S3 where an `s3_limits` rule admits the
/// product and no condition of the use is known to fail, else the `schedule` rule for the
/// category. A use condition that cannot be judged leaves a declared S3 or S4 standing.
pub fn schedule(
    book: &RuleBook,
    category: u8,
    shares: &Shares,
    use_: Use<'_>,
    day: Day,
) -> Scheduled {
    let in_force = || book.rules.iter().filter(|rule| rule.in_force(day));
    let by_category = in_force().find_map(|rule| match &rule.check {
        Check::Schedule {
            categories,
            schedule,
        } if categories.contains(&category) => Some(*schedule),
        _ => None,
    });
    let s3 = in_force().find(|rule| match &rule.check {
        Check::S3Limits {
            categories,
            thc_max_pct,
            others_max_pct,
            forms,
            ..
        } => {
            let share =
                |mg: f64, pct: f64| mg * 100.0 <= pct * shares.total_mg + shares.total_mg * 1e-12;
            use_.product.artg
                && categories.contains(&category)
                && share(shares.thc_mg, *thc_max_pct)
                && share(shares.total_mg - shares.cbd_mg, *others_max_pct)
                && use_.product.form.is_some_and(|form| forms.contains(&form))
        }
        _ => false,
    });
    let Some(rule) = s3 else {
        return Scheduled {
            schedule: by_category,
            ..Scheduled::default()
        };
    };
    let judged = s3_use(rule, shares, use_);
    if let Some(reason) = judged.outside {
        return Scheduled {
            schedule: by_category,
            outside_s3: Some(format!("{reason} ({})", rule.id)),
            s3_unchecked: Vec::new(),
        };
    }
    let schedule = match use_.product.declared_schedule {
        Some(declared @ (Schedule::S3 | Schedule::S4)) if !judged.unknown.is_empty() => declared,
        Some(Schedule::S3 | Schedule::S4 | Schedule::S8) | None => Schedule::S3,
    };
    let s3_unchecked = match schedule {
        Schedule::S3 => {
            let mut all = judged.unknown;
            if let Check::S3Limits { unchecked, .. } = &rule.check {
                all.extend(unchecked.iter().cloned());
            }
            all
        }
        Schedule::S4 | Schedule::S8 => Vec::new(),
    };
    Scheduled {
        schedule: Some(schedule),
        outside_s3: None,
        s3_unchecked,
    }
}

/// How the use conditions of an S3 rule stand.
struct Judged {
    /// The first condition known to fail.
    outside: Option<String>,
    /// Conditions without the facts to judge them.
    unknown: Vec<String>,
}

fn s3_use(rule: &Rule, shares: &Shares, use_: Use<'_>) -> Judged {
    let Check::S3Limits {
        routes,
        max_daily_mg,
        min_age,
        ..
    } = &rule.check
    else {
        return Judged {
            outside: None,
            unknown: Vec::new(),
        };
    };
    let mut unknown = Vec::new();
    if let Some(route) = use_.product.route
        && !routes.contains(&route)
    {
        return outside(format!(
            "the route is {}; Schedule 3 is only for {} use",
            label(&route),
            names(routes)
        ));
    }
    match use_.age {
        Some(age) if age < i64::from(*min_age) => {
            return outside(format!(
                "the patient is {age}; Schedule 3 is only for persons aged {min_age} and over"
            ));
        }
        Some(_) => {}
        None => unknown.push(format!("age {min_age} or over: no date of birth given")),
    }
    let daily = match use_.directions.map(dose::max_daily) {
        None => Err("no directions given".to_owned()),
        Some(DailyDose::Unknown(reason)) => Err(reason.to_owned()),
        Some(DailyDose::Known { amount, unit }) if unit == "mg" => Ok((amount, String::new())),
        Some(DailyDose::Known { amount, unit }) if unit == shares.per => Ok((
            amount * shares.cbd_mg,
            format!(" ({amount} {unit} at {} mg CBD per {unit})", shares.cbd_mg),
        )),
        Some(DailyDose::Known { unit, .. }) => Err(format!(
            "the directions measure in {unit} but the strength is per {}",
            shares.per
        )),
    };
    match daily {
        Ok((mg, how)) if mg > max_daily_mg + 1e-9 => {
            return outside(format!(
                "the directions give up to {mg} mg of CBD a day{how}; Schedule 3 allows at \
                 most {max_daily_mg} mg"
            ));
        }
        Ok(_) => {}
        Err(reason) => unknown.push(format!("at most {max_daily_mg} mg of CBD a day: {reason}")),
    }
    Judged {
        outside: None,
        unknown,
    }
}

fn outside(reason: String) -> Judged {
    Judged {
        outside: Some(reason),
        unknown: Vec::new(),
    }
}
