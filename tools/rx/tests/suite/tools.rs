#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common;

use std::sync::Arc;

use baton_kit::{Registry, ToolContext};
use baton_knowledge::{Library, Shelf};
use baton_rx::Rules;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn registry() -> Registry {
    let shelf = Arc::new(Shelf::fixed(
        Library::load(&common::knowledge_root()).unwrap(),
    ));
    let mut registry = Registry::new();
    baton_rx::register(&mut registry, "rx", Arc::new(Rules::new(shelf))).unwrap();
    registry
}

async fn call(registry: &Registry, name: &str, args: Value) -> Result<Value, String> {
    let tool = registry.get(name).unwrap();
    let bound = tool.clone().bind(&args).map_err(|e| e.to_string())?;
    bound
        .run(ToolContext::new(CancellationToken::new()))
        .await
        .map(|out| out.structured)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn classify_reads_percent_weight_for_weight_as_mg_per_g() {
    let registry = registry();
    let out = call(
        &registry,
        "rx_classify_product",
        json!({
            "as_of": "2026-11-22",
            "product": {
                "name": "Flower", "form": "dried_herb",
                "ingredients": [
                    {"name": "THC", "amount": 22, "unit": "%"},
                    {"name": "CBD", "amount": 1, "unit": "%", "per": "g"}
                ]
            }
        }),
    )
    .await
    .unwrap();
    let mut out = out;
    out["rules_version"] = json!("[version]");
    for key in ["cbd_pct", "thc_pct"] {
        let rounded = (out[key].as_f64().unwrap() * 1e6).round() / 1e6;
        out[key] = json!(rounded);
    }
    insta::assert_json_snapshot!("classify_herb", out);
}

#[tokio::test]
async fn classify_refuses_a_product_without_strengths_naming_the_field() {
    let registry = registry();
    let error = call(
        &registry,
        "rx_classify_product",
        json!({ "product": { "ingredients": [{"name": "CBD", "unit": "mg", "per": "mL"}] } }),
    )
    .await
    .unwrap_err();
    assert!(error.contains("product.ingredients[0].amount"), "{error}");
}

#[tokio::test]
async fn rules_lists_a_jurisdiction_with_the_federal_rules_and_what_is_in_force() {
    let registry = registry();
    let out = call(
        &registry,
        "rx_rules",
        json!({ "jurisdiction": "qld", "as_of": "2021-06-01" }),
    )
    .await
    .unwrap();
    let rules = out["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&"FED-04") && ids.contains(&"QLD-02"),
        "{ids:?}"
    );
    assert!(!ids.iter().any(|id| id.starts_with("WA-")), "{ids:?}");
    let qscript = rules.iter().find(|r| r["id"] == "QLD-02").unwrap();
    assert_eq!(qscript["in_force"], json!(false));
    assert_eq!(qscript["table"], json!("knowledge://rx/states.toml"));
    let by_code = call(&registry, "rx_rules", json!({ "code": "E-AGE" }))
        .await
        .unwrap();
    let ids: Vec<&str> = by_code["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["WA-01"]);
}

#[tokio::test]
async fn a_batch_counts_codes_and_keeps_input_order() {
    let registry = registry();
    let valid = common::valid_simple();
    let mut expired = valid.clone();
    expired["as_of"] = json!("2027-06-01");
    let out = call(
        &registry,
        "rx_validate_batch",
        json!({ "prescriptions": [valid, "not json", expired] }),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            out["total"].clone(),
            out["valid"].clone(),
            out["invalid"].clone()
        ),
        (json!(3), json!(1), json!(2))
    );
    assert_eq!(out["reports"][1]["findings"][0]["code"], json!("E-INPUT"));
    assert_eq!(out["by_code"]["E-INPUT"], json!(1));
    assert_eq!(out["by_code"]["E-RX-EXPIRED"], json!(1));
}

fn artg_cbd(directions: Option<&str>, dob: Option<&str>) -> Value {
    let mut args = json!({
        "as_of": "2026-11-22",
        "product": {
            "name": "Registered CBD 100 oral solution", "artg": true, "form": "oil",
            "route": "oral",
            "ingredients": [{"name": "CBD", "amount": 100, "unit": "mg", "per": "mL"}]
        }
    });
    if let Some(directions) = directions {
        args["directions"] = json!(directions);
    }
    if let Some(dob) = dob {
        args["patient_dob"] = json!(dob);
    }
    args
}

/// The S3 entry holds only within its conditions: the daily dose the directions give, the
/// patient's age; what cannot be judged is said, not assumed.
#[tokio::test]
async fn classify_judges_the_s3_conditions_of_the_use_it_is_given() {
    let registry = registry();
    let classify = |args: Value| {
        let registry = &registry;
        async move {
            let mut out = call(registry, "rx_classify_product", args).await.unwrap();
            out["rules_version"] = json!("[version]");
            out
        }
    };
    let within = classify(artg_cbd(
        Some("0.5 mL by mouth twice daily"),
        Some("1980-01-01"),
    ))
    .await;
    insta::assert_json_snapshot!("classify_s3_within", within);

    let over = classify(artg_cbd(Some("2 mL twice daily"), Some("1980-01-01"))).await;
    assert_eq!(over["schedule"], json!("S4"));
    assert_eq!(
        over["outside_s3"],
        json!(
            "the directions give up to 400 mg of CBD a day (4 mL at 100 mg CBD per mL); \
             Schedule 3 allows at most 150 mg (CLS-08)"
        )
    );
    let child = classify(artg_cbd(Some("0.5 mL daily"), Some("2010-06-01"))).await;
    assert_eq!(child["schedule"], json!("S4"));
    assert!(
        child["outside_s3"]
            .as_str()
            .unwrap()
            .contains("patient is 16")
    );
    let turns_18_today = classify(artg_cbd(Some("0.5 mL daily"), Some("2008-11-22"))).await;
    assert_eq!(turns_18_today["schedule"], json!("S3"));

    let unknown = classify(artg_cbd(None, None)).await;
    assert_eq!(unknown["schedule"], json!("S3"));
    let unchecked = unknown["s3_unchecked"].as_array().unwrap();
    assert_eq!(unchecked.len(), 5, "{unchecked:?}");
    assert!(unchecked[0].as_str().unwrap().contains("no date of birth"));
    assert!(unchecked[1].as_str().unwrap().contains("no directions"));

    let error = call(
        &registry,
        "rx_classify_product",
        artg_cbd(None, Some("2027-01-01")),
    )
    .await
    .unwrap_err();
    assert!(error.contains("patient_dob"), "{error}");
}
