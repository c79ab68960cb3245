//! The dsp pack through the real binary: `dsp_latency` counts allocations with the allocator
//! `baton` runs on, `dsp_spectrum` hands its spectrogram to an MCP client as an image, and
//! compressed masters are measured like their WAVs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::{Home, HttpServer};
use pretty_assertions::assert_eq;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::json;

#[tokio::test]
async fn latency_and_spectrum_over_mcp() {
    let home = Home::new("");
    let audio = home.path().join("audio");
    std::fs::create_dir_all(&audio).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"audio\"]\n",
    )
    .unwrap();
    let tone: Vec<f32> = (0..24_000)
        .map(|i| 0.5 * (std::f32::consts::TAU * 1000.0 * i as f32 / 48_000.0).sin())
        .collect();
    baton_dsp::write_wav(
        &audio.join("tone.wav"),
        &baton_dsp::Audio {
            sample_rate: 48_000,
            channels: vec![tone],
        },
    )
    .unwrap();
    let server = HttpServer::start(&home, &[]).await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();

    let mut params = CallToolRequestParams::new("dsp_latency");
    params.arguments = json!({
        "sample_rate": 96000,
        "block_size": 64,
        "seconds": 1,
        "chain": [{"type": "highpass", "freq_hz": 40}, {"type": "peaking", "freq_hz": 3000, "q": 2, "gain_db": -3}]
    })
    .as_object()
    .cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let report = result.structured_content.unwrap();
    assert_eq!(report["allocations"], json!(0), "{report}");
    assert_eq!(report["blocks"], json!(1500));

    let png = audio.join("tone.png");
    let mut params = CallToolRequestParams::new("dsp_spectrum");
    params.arguments = json!({
        "path": audio.join("tone.wav"),
        "max_peaks": 1,
        "spectrogram": png
    })
    .as_object()
    .cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let spectrum = result.structured_content.clone().unwrap();
    let peak = spectrum["peaks"][0]["hz"].as_f64().unwrap();
    assert!((peak - 1000.0).abs() < 1.0, "{spectrum}");
    let images: Vec<_> = result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Image(image) => Some(image.mime_type.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(images, vec!["image/png".to_owned()]);
    assert!(png.exists());

    // A producer's FLAC and MP3 copies: the FLAC measures exactly as its WAV, the MP3 as long
    // and as loud but for what the encoder lost (0.23 LU here; fixtures from
    // `fixtures/dsp/make.py`).
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dsp/audio");
    if !baton_test_support::generated("latency_and_spectrum_over_mcp", &fixtures) {
        return;
    }
    let mut analyses = Vec::new();
    for suffix in ["wav", "flac", "mp3"] {
        let path = fixtures.join(format!("music-48k-mono-16.{suffix}"));
        let mut params = CallToolRequestParams::new("dsp_analyze");
        params.arguments = json!({ "path": path }).as_object().cloned();
        let result = client.call_tool(params).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{suffix}: {result:?}");
        analyses.push(result.structured_content.unwrap());
    }
    assert_eq!(analyses[1], analyses[0]);
    assert_eq!(analyses[2]["frames"], analyses[0]["frames"]);
    let lufs = |analysis: &serde_json::Value| analysis["integrated_lufs"].as_f64().unwrap();
    assert!(
        (lufs(&analyses[2]) - lufs(&analyses[0])).abs() < 0.5,
        "{analyses:?}"
    );
    client.cancel().await.unwrap();
}
