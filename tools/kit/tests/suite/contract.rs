#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use baton_kit::{
    Effect, Progress, ProgressSink, Registry, RegistryError, Tool, ToolContext, ToolError,
    ToolErrorKind,
};
use pretty_assertions::assert_eq;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Arguments of the test tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SumArgs {
    /// Numbers to add.
    items: Vec<Item>,
    /// A label echoed back.
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Item {
    /// The value.
    value: i64,
}

/// The sum.
#[derive(Debug, Serialize, JsonSchema)]
struct SumOutput {
    /// Sum of the values.
    total: i64,
    /// The label, if one was given.
    label: Option<String>,
}

struct Sum;

impl Tool for Sum {
    type Args = SumArgs;
    type Output = SumOutput;
    const NAME: &'static str = "test_sum";
    const DESCRIPTION: &'static str = "Add numbers, reporting progress per item.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: SumArgs, ctx: ToolContext) -> baton_kit::Result<SumOutput> {
        let mut total = 0;
        let count = args.items.len() as f64;
        for (index, item) in args.items.iter().enumerate() {
            ctx.check_cancelled()?;
            total += item.value;
            ctx.progress(index as f64 + 1.0, Some(count), format!("item {index}"));
        }
        Ok(SumOutput {
            total,
            label: args.label,
        })
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register("test", Sum).unwrap();
    registry
}

fn bind_error(args: serde_json::Value) -> ToolError {
    let tool = registry().get("test_sum").unwrap().clone();
    tool.bind(&args).unwrap_err()
}

#[test]
fn descriptor_carries_schemas_and_effect() {
    let registry = registry();
    let descriptor = registry.get("test_sum").unwrap().descriptor().clone();
    assert_eq!(descriptor.pack, "test");
    assert_eq!(descriptor.effect, Effect::Read);
    insta::assert_json_snapshot!("sum_input_schema", *descriptor.input_schema);
    insta::assert_json_snapshot!("sum_output_schema", *descriptor.output_schema.unwrap());
}

#[test]
fn invalid_args_name_the_path() {
    let cases = [
        (json!({}), ".", "missing field `items`"),
        (
            json!({ "items": 3 }),
            "items",
            "invalid type: integer `3`, expected a sequence",
        ),
        (
            json!({ "items": [{ "value": 1 }, { "value": "two" }] }),
            "items[1].value",
            "invalid type: string \"two\", expected i64",
        ),
        (
            json!({ "items": [], "colour": "red" }),
            "colour",
            "unknown field `colour`, expected `items` or `label`",
        ),
        (json!([1, 2]), ".", "arguments must be a JSON object"),
    ];
    for (args, path, message) in cases {
        let error = bind_error(args.clone());
        assert_eq!(error.kind(), ToolErrorKind::InvalidArgs, "{args}");
        match error {
            ToolError::InvalidArgs {
                path: p,
                message: m,
            } => {
                assert_eq!((p.as_str(), m.as_str()), (path, message), "{args}");
            }
            other => panic!("{args}: {other:?}"),
        }
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<Progress>>);

impl ProgressSink for Collect {
    fn report(&self, update: Progress) {
        self.0.lock().unwrap().push(update);
    }
}

#[tokio::test]
async fn bound_call_runs_with_progress() {
    let tool = registry().get("test_sum").unwrap().clone();
    let bound = tool
        .bind(&json!({ "items": [{ "value": 2 }, { "value": 40 }], "label": "x" }))
        .unwrap();
    let sink = Arc::new(Collect::default());
    let ctx = ToolContext::new(CancellationToken::new()).with_progress(sink.clone());
    let output = bound.run(ctx).await.unwrap();
    assert_eq!(output.structured, json!({ "total": 42, "label": "x" }));
    let progress: Vec<(f64, Option<f64>)> = sink
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.progress, p.total))
        .collect();
    assert_eq!(progress, vec![(1.0, Some(2.0)), (2.0, Some(2.0))]);
}

#[tokio::test]
async fn null_args_mean_no_args_and_cancellation_is_an_error() {
    let tool = registry().get("test_sum").unwrap().clone();
    // `null` is an empty object, which lacks `items`.
    assert!(matches!(
        tool.clone().bind(&serde_json::Value::Null),
        Err(ToolError::InvalidArgs { .. })
    ));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let bound = tool.bind(&json!({ "items": [{ "value": 1 }] })).unwrap();
    let error = bound.run(ToolContext::new(cancel)).await.unwrap_err();
    assert_eq!(error.kind(), ToolErrorKind::Cancelled);
}

struct Scalar;

impl Tool for Scalar {
    type Args = SumArgs;
    type Output = u32;
    const NAME: &'static str = "test_scalar";
    const DESCRIPTION: &'static str = "Returns a bare number, which MCP does not allow.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, _args: SumArgs, _ctx: ToolContext) -> baton_kit::Result<u32> {
        Ok(1)
    }
}

#[test]
fn registry_refuses_bad_tools() {
    let mut registry = registry();
    assert!(
        matches!(registry.register("test", Sum), Err(RegistryError::Duplicate(name)) if name == "test_sum")
    );
    assert!(matches!(
        registry.register("test", Scalar),
        Err(RegistryError::SchemaNotObject {
            which: "output",
            ..
        })
    ));
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.packs(), vec![("test".to_owned(), 1)]);
}

#[test]
fn effects_map_to_hints() {
    let hints: Vec<(&str, bool, bool, bool)> = Effect::ALL
        .iter()
        .map(|e| {
            (
                e.as_str(),
                e.is_read_only(),
                e.is_destructive(),
                e.is_open_world(),
            )
        })
        .collect();
    assert_eq!(
        hints,
        vec![
            ("read", true, false, false),
            ("write", false, true, false),
            ("exec", false, true, false),
            ("network", false, false, true),
        ]
    );
}

mod confined {
    use std::path::Path;

    use baton_kit::{ConfineError, Sandbox, SandboxMode};

    fn workspace(root: &Path, protected: Vec<std::path::PathBuf>) -> Sandbox {
        Sandbox {
            mode: SandboxMode::WorkspaceWrite,
            writable_roots: vec![root.to_owned()],
            network: false,
            env: Vec::new(),
            protected,
        }
    }

    fn write(sandbox: &Sandbox, path: &Path) -> Result<(), ConfineError> {
        sandbox.write_file(path, |file| std::io::Write::write_all(file, b"out"))
    }

    /// The attacks on a tool's output path: a symlinked output file, a symlinked output folder
    /// (and a folder on the way), `..`, `.git`, Baton's own files, a path in no root. Each is
    /// refused and nothing outside changes; a plain path inside the root is written.
    #[test]
    fn outputs_stay_beneath_their_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let r = root.path();
        let victim = outside.path().join("victim.wav");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, r.join("out.wav")).unwrap();
        std::os::unix::fs::symlink(outside.path(), r.join("stems")).unwrap();
        std::fs::create_dir_all(r.join(".git")).unwrap();
        std::fs::create_dir_all(r.join(".baton")).unwrap();
        let sandbox = workspace(r, vec![r.join(".baton")]);

        // A symlink at the output file is replaced, never followed.
        write(&sandbox, &r.join("out.wav")).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(r.join("out.wav")).unwrap(), "out");
        assert!(!r.join("out.wav").is_symlink());

        // A symlinked folder, as the output folder or on the way to a file, is refused.
        for attempt in [r.join("stems/a.wav"), r.join("stems/deeper/b.png")] {
            let error = write(&sandbox, &attempt).unwrap_err();
            assert!(matches!(error, ConfineError::Symlink { .. }), "{error}");
        }
        let error = sandbox.create_dir(&r.join("stems")).unwrap_err();
        assert!(matches!(error, ConfineError::Symlink { .. }), "{error}");
        let error = sandbox.create_dir(&r.join("stems/new")).unwrap_err();
        assert!(matches!(error, ConfineError::Symlink { .. }), "{error}");

        for (path, expected) in [
            (r.join("../escape.wav"), "outside the writable roots"),
            (r.join(".git/config"), "`.git` is read-only"),
            (r.join(".baton/store"), "Baton's own configuration"),
            (outside.path().join("x.wav"), "outside the writable roots"),
        ] {
            let error = write(&sandbox, &path).unwrap_err().to_string();
            assert!(error.contains(expected), "{}: {error}", path.display());
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read_dir(r.join(".git")).unwrap().count(), 0);

        // A new output folder with its parents, and files in it.
        let dir = sandbox.create_dir(&r.join("a/b")).unwrap();
        dir.write(Path::new("c.png"), b"png").unwrap();
        assert_eq!(std::fs::read(r.join("a/b/c.png")).unwrap(), b"png");

        let read_only = Sandbox {
            mode: SandboxMode::ReadOnly,
            ..workspace(r, Vec::new())
        };
        let error = write(&read_only, &r.join("x")).unwrap_err().to_string();
        assert!(error.contains("read-only"), "{error}");
    }

    /// Under `danger-full-access` paths resolve as the OS resolves them: a symlinked folder on
    /// the way is followed (the user may write anywhere they can).
    #[test]
    fn full_access_follows_symlinks_as_the_os_does() {
        let real = tempfile::tempdir().unwrap();
        let links = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(real.path(), links.path().join("to-real")).unwrap();
        let full = Sandbox {
            mode: SandboxMode::DangerFullAccess,
            ..Sandbox::unconfined()
        };
        write(&full, &links.path().join("to-real/out.wav")).unwrap();
        assert_eq!(std::fs::read(real.path().join("out.wav")).unwrap(), b"out");
    }
}
