//! The vision pack's ONNX settings come from `[vision]` in baton.toml, the environment
//! overriding them (and the dsp pack's separation model runs on the same runtime); a bad
//! setting is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::Home;
use pretty_assertions::assert_eq;

#[tokio::test]
async fn onnx_paths_come_from_the_config_and_are_named_when_wrong() {
    let home = Home::new(
        "[vision]\nonnx_runtime = \"/nowhere/libonnxruntime.so.1.31.1\"\nsegmentation_model = \"isnet.onnx\"\n",
    );
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\".\"]\n",
    )
    .unwrap();
    image::RgbImage::from_pixel(64, 48, image::Rgb([200, 30, 30]))
        .save(home.path().join("red.png"))
        .unwrap();
    let args = serde_json::json!({
        "path": home.path().join("red.png"),
        "out": home.path().join("cut.png"),
        "method": "onnx"
    });
    let output = home
        .baton(&[
            "tools",
            "call",
            "vision_segment",
            "--args",
            &args.to_string(),
        ])
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("BATON_SEGMENTATION_MODEL")
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "ONNX Runtime not available: `/nowhere/libonnxruntime.so.1.31.1` does not exist"
        ),
        "{stderr}"
    );

    // A setting that cannot work stops the server (exit 2) with the setting named.
    let refused = |name: &'static str, value: &'static str| {
        let mut command = home.baton(&["tools", "list"]);
        command.env(name, value);
        async move {
            let output = command.output().await.unwrap();
            assert_eq!(output.status.code(), Some(2), "{name}={value}");
            String::from_utf8_lossy(&output.stderr).into_owned()
        }
    };
    let stderr = refused("BATON_SEGMENTATION_NORMALIZE", "imagenette").await;
    assert!(
        stderr.contains("BATON_SEGMENTATION_NORMALIZE")
            && stderr.contains("\"imagenette\" is not `isnet` or `imagenet`"),
        "{stderr}"
    );
    // The dsp pack's separation model shares the runtime; its stem names become file names.
    let stderr = refused("BATON_SEPARATION_STEMS", "vocals,../drums").await;
    assert!(
        stderr.contains("separation_stems[1]") && stderr.contains("no `/`"),
        "{stderr}"
    );
}

/// A seller's batch over MCP: the report is kept in the store and read back by the client as
/// the resource the tool named, byte for byte what `batch.json` holds.
#[tokio::test]
async fn a_batch_report_is_kept_and_read_back_as_a_resource() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};
    use rmcp::transport::StreamableHttpClientTransport;

    let home = Home::new("");
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"out\"]\n",
    )
    .unwrap();
    for (name, colour) in [("red.png", [200, 30, 30]), ("blue.png", [30, 30, 200])] {
        let mut photo = image::RgbImage::from_pixel(160, 120, image::Rgb([250, 250, 250]));
        for y in 30..90 {
            for x in 50..110 {
                photo.put_pixel(x, y, image::Rgb(colour));
            }
        }
        photo.save(home.path().join(name)).unwrap();
    }
    let server = super::common::HttpServer::start(&home, &[]).await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();

    let templates = client.list_resource_templates(None).await.unwrap();
    assert!(
        templates
            .resource_templates
            .iter()
            .any(|t| t.uri_template == "baton://artifacts/{sha256}"),
        "{templates:?}"
    );

    let mut params = CallToolRequestParams::new("vision_batch");
    params.arguments = serde_json::json!({
        "paths": [home.path().join("red.png"), home.path().join("blue.png")],
        "out_dir": home.path().join("out"),
    })
    .as_object()
    .cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let output = result.structured_content.unwrap();
    assert_eq!(output["processed"], serde_json::json!(2), "{output}");
    let stored = &output["stored"];
    let uri = stored["uri"].as_str().unwrap();
    let on_disk = std::fs::read_to_string(home.path().join("out/batch.json")).unwrap();
    assert_eq!(stored["size"], serde_json::json!(on_disk.len()));
    assert_eq!(
        uri,
        format!("baton://artifacts/{}", stored["sha256"].as_str().unwrap())
    );

    let read = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    match &read.contents[..] {
        [
            ResourceContents::TextResourceContents {
                text, mime_type, ..
            },
        ] => {
            assert_eq!(text, &on_disk);
            assert_eq!(mime_type.as_deref(), Some("application/json"));
        }
        other => panic!("{other:?}"),
    }

    let missing = format!("baton://artifacts/{}", "0".repeat(64));
    let error = client
        .read_resource(ReadResourceRequestParams::new(missing))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no artifact"), "{error}");
    let error = client
        .read_resource(ReadResourceRequestParams::new(
            "baton://artifacts/../../etc/passwd",
        ))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("64 lowercase hex digits"),
        "{error}"
    );
    client.cancel().await.unwrap();
}
