//! A call's files, for callers that share no disk with Baton. Before the decision, inline
//! `data:` content in a file argument is kept as an artifact and named by its URI (the policy
//! and the audit see URIs and digests, never bytes); the tool then gets each artifact as a
//! file in a private folder, and an output argument left out points into that folder. After
//! the call, every file the result names in an output place is kept in the store, and the
//! result lists them (`artifacts`), naming the private ones by URI only. The folder goes when
//! the call ends.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_kit::{
    ARTIFACT_URI_PREFIX, Attachment, Effect, KeptFile, Result, ToolDescriptor, ToolError,
    ToolOutput,
};
use baton_runs::{ArtifactRef, Blob, StoreApi as _, StoreError, StoreHandle};
use serde_json::Value;

/// What a call may bring and keep: inline content size and each principal's upload quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploads {
    /// Largest inline `data:` content, decoded (`[limits] inline_max_kb`).
    pub inline_max: usize,
    /// Bytes of uploads one principal may keep (`[limits] upload_quota_mb`); 0: no quota.
    pub quota: u64,
}

impl Default for Uploads {
    fn default() -> Uploads {
        Uploads {
            inline_max: 4 << 20,
            quota: 0,
        }
    }
}

/// One call's arguments, prepared.
pub(crate) struct Prepared {
    /// As the policy and the audit see them: inline content replaced by artifact URIs.
    pub given: Value,
    /// As the tool gets them — artifacts as files, left-out outputs in the private folder —
    /// when that differs from `given` (a tool without file arguments gets `given` itself).
    pub local: Option<Value>,
    /// What the policy decides on: outputs kept only in the store are not writes.
    pub descriptor: Option<ToolDescriptor>,
    /// The call's files.
    pub files: CallFiles,
}

/// The files of one call: its private folder, inputs fetched into it, where outputs go.
#[derive(Default)]
pub(crate) struct CallFiles {
    folder: Option<tempfile::TempDir>,
    /// Local path → the artifact URI it came from.
    inputs: Vec<(String, String)>,
    /// Where outputs kept only in the store are written.
    pub kept_only: Option<PathBuf>,
    /// Output places the caller named: (path, is a folder).
    named: Vec<(PathBuf, bool)>,
    /// Whether the tool writes files at all (its result gets `artifacts`).
    writes: bool,
    /// When the call was prepared: a file in a named place older than this was not written by
    /// the call, and is not kept.
    started: Option<std::time::SystemTime>,
    /// The file arguments' values as the tool got them: a result echoing an input names no
    /// output, even when the input lies in the output folder.
    read: Vec<String>,
    /// Whose quota the kept outputs count against: a few bytes in can be gigabytes out.
    owner: Option<(String, Uploads)>,
}

fn pointer_name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// Every string at `pointer`: the value itself, or each item of an array.
fn strings_at<'a>(args: &'a mut Value, pointer: &str) -> Vec<(String, &'a mut String)> {
    let name = pointer_name(pointer);
    match args.pointer_mut(pointer) {
        Some(Value::String(text)) => vec![(name, text)],
        Some(Value::Array(items)) => items
            .iter_mut()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(text) => Some((format!("{name}[{i}]"), text)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The media type a file's extension says, for outputs kept in the store.
pub fn media_type_of(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("wav") => "audio/wav",
        Some("flac") => "audio/flac",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The extension a tool expects for a file of `media_type`.
fn extension_of(media_type: &str) -> &'static str {
    match crate::media::canonical(media_type) {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "audio/wav" => "wav",
        "audio/flac" => "flac",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "application/json" | "application/fhir+json" => "json",
        _ => "bin",
    }
}

/// `data:<media type>;base64,<bytes>` decoded, within `limit` bytes.
fn decode_inline(at: &str, text: &str, limit: usize) -> Result<(Vec<u8>, String)> {
    let bad = |why: &str| ToolError::invalid_args(at, why.to_owned());
    let (header, data) = text
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
        .ok_or_else(|| bad("inline content is `data:<media type>;base64,<bytes>`"))?;
    let media = header
        .strip_suffix(";base64")
        .ok_or_else(|| bad("inline content must be base64 (`data:<media type>;base64,…`)"))?;
    let media = if media.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        media.to_ascii_lowercase()
    };
    if data.len() / 4 * 3 > limit + 2 {
        return Err(bad(&format!(
            "inline content of about {} bytes is over the {limit}-byte limit \
             (limits.inline_max_kb); upload it with POST /v1/artifacts and pass its URI",
            data.len() / 4 * 3
        )));
    }
    let bytes = BASE64
        .decode(data.trim())
        .map_err(|e| bad(&format!("inline content is not base64: {e}")))?;
    if bytes.len() > limit {
        return Err(bad(&format!(
            "inline content of {} bytes is over the {limit}-byte limit (limits.inline_max_kb)",
            bytes.len()
        )));
    }
    let media = crate::media::check_media(&media, &bytes).map_err(|why| bad(&why))?;
    Ok((bytes, media))
}

/// The digest a `baton://artifacts/<sha256>` URI names.
fn digest_of<'a>(at: &str, uri: &'a str) -> Result<&'a str> {
    let digest = uri.strip_prefix(ARTIFACT_URI_PREFIX).unwrap_or_default();
    if digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(digest)
    } else {
        Err(ToolError::invalid_args(
            at,
            format!("`{uri}` is not an artifact URI (`{ARTIFACT_URI_PREFIX}<64 hex digits>`)"),
        ))
    }
}

/// Keep `bytes` uploaded by `principal`, within its quota.
pub(crate) async fn keep_upload(
    store: &StoreHandle,
    uploads: Uploads,
    principal: &str,
    bytes: Vec<u8>,
    media_type: String,
) -> std::result::Result<ArtifactRef, StoreError> {
    store
        .put_upload(Blob(bytes), media_type, principal.to_owned(), uploads.quota)
        .await
}

impl CallFiles {
    fn folder(&mut self) -> Result<&Path> {
        if self.folder.is_none() {
            let made = tempfile::Builder::new()
                .prefix("baton-call-")
                .tempdir()
                .map_err(|e| ToolError::failed(format!("cannot make the call's folder: {e}")))?;
            self.folder = Some(made);
        }
        match &self.folder {
            Some(folder) => Ok(folder.path()),
            None => Err(ToolError::failed("the call's folder is gone")),
        }
    }

    /// Fetch artifact `uri` into the private folder; its local path.
    async fn fetch(&mut self, store: &StoreHandle, at: &str, uri: &str) -> Result<String> {
        if let Some((path, _)) = self.inputs.iter().find(|(_, u)| u == uri) {
            return Ok(path.clone());
        }
        let digest = digest_of(at, uri)?;
        let (artifact, Blob(bytes)) = match store.artifact(digest.to_owned()).await {
            Ok(found) => found,
            Err(StoreError::NotFound { .. }) => {
                return Err(ToolError::invalid_args(
                    at,
                    format!(
                        "no artifact `{digest}` in Baton's store (upload it with POST /v1/artifacts)"
                    ),
                ));
            }
            Err(other) => return Err(ToolError::failed(format!("artifact store: {other}"))),
        };
        let dir = self.folder()?.join("in");
        let path = dir.join(format!(
            "{}.{}",
            &digest[..16],
            extension_of(&artifact.media_type)
        ));
        let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &bytes));
        written.map_err(|e| ToolError::failed(format!("cannot hand the tool `{uri}`: {e}")))?;
        let local = path.display().to_string();
        self.inputs.push((local.clone(), uri.to_owned()));
        Ok(local)
    }
}

/// Prepare `args` of a call of `descriptor` by `principal`.
pub(crate) async fn prepare(
    store: &StoreHandle,
    uploads: Uploads,
    principal: &str,
    descriptor: &ToolDescriptor,
    args: Value,
) -> Result<Prepared> {
    // Most calls name no file: nothing to copy, fetch or keep.
    if descriptor.file_args.is_empty() && descriptor.output_args.is_empty() {
        return Ok(Prepared {
            given: args,
            local: None,
            descriptor: None,
            files: CallFiles::default(),
        });
    }
    let mut given = args;
    for pointer in &descriptor.file_args {
        for (at, text) in strings_at(&mut given, pointer) {
            if !text.starts_with("data:") {
                continue;
            }
            let (bytes, media) = decode_inline(&at, text, uploads.inline_max)?;
            let kept = keep_upload(store, uploads, principal, bytes, media)
                .await
                .map_err(|e| match e {
                    StoreError::Quota { message } | StoreError::TooLarge { message } => {
                        ToolError::invalid_args(&at, message)
                    }
                    other => ToolError::unavailable(format!("artifact store: {other}")),
                })?;
            *text = format!("{ARTIFACT_URI_PREFIX}{}", kept.sha256);
        }
    }
    let mut files = CallFiles {
        writes: !descriptor.output_args.is_empty(),
        // Modification times on disk are coarser than the clock on some file systems.
        started: std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(1)),
        owner: Some((principal.to_owned(), uploads)),
        ..CallFiles::default()
    };
    let mut local = given.clone();
    for pointer in &descriptor.file_args {
        for (at, text) in strings_at(&mut local, pointer) {
            if text.starts_with(ARTIFACT_URI_PREFIX) {
                *text = files.fetch(store, &at, text).await?;
            }
        }
    }
    for pointer in &descriptor.file_args {
        for (_, text) in strings_at(&mut local, pointer) {
            files.read.push(text.clone());
        }
    }
    let redirected = outputs(descriptor, &mut local, &mut files)?;
    let descriptor = (!redirected.is_empty()).then(|| {
        let mut decided = descriptor.clone();
        decided.path_args.retain(|p| !redirected.contains(p));
        if decided.path_args.is_empty() && decided.effect == Effect::Write {
            decided.effect = Effect::Read;
        }
        decided
    });
    Ok(Prepared {
        given,
        local: Some(local),
        descriptor,
        files,
    })
}

/// Point output arguments left out (or given as `baton://artifacts/`) into the private
/// folder; the pointers redirected.
fn outputs(
    descriptor: &ToolDescriptor,
    local: &mut Value,
    files: &mut CallFiles,
) -> Result<Vec<String>> {
    let mut redirected = Vec::new();
    for output in &descriptor.output_args {
        let at = pointer_name(&output.pointer);
        let to_store = match local.pointer(&output.pointer) {
            None | Some(Value::Null) => output.required,
            Some(Value::String(text)) if text == ARTIFACT_URI_PREFIX => true,
            Some(Value::String(text))
                if text.starts_with("baton:") || text.starts_with("data:") =>
            {
                return Err(ToolError::invalid_args(
                    at,
                    format!(
                        "`{text}` is not a place to write: give a path, or `{ARTIFACT_URI_PREFIX}` \
                         to keep the output in Baton's store"
                    ),
                ));
            }
            Some(Value::String(text)) => {
                files.named.push((PathBuf::from(text), output.is_folder()));
                false
            }
            Some(_) => false,
        };
        if !to_store {
            continue;
        }
        let out = files.folder()?.join("out");
        std::fs::create_dir_all(&out)
            .map_err(|e| ToolError::failed(format!("cannot make the call's folder: {e}")))?;
        let place = out.join(output.name.trim_end_matches('/'));
        let Some(object) = local.as_object_mut() else {
            return Err(ToolError::invalid_args(
                ".",
                "arguments must be a JSON object",
            ));
        };
        object.insert(at, Value::String(place.display().to_string()));
        files.kept_only = Some(out);
        redirected.push(output.pointer.clone());
    }
    Ok(redirected)
}

impl CallFiles {
    /// `text` with the private folder's paths said as the caller knows them: an input by its
    /// artifact URI, anything else there as `(private folder)`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (local, uri) in &self.inputs {
            out = out.replace(local.as_str(), uri);
        }
        if let Some(folder) = &self.folder {
            out = out.replace(&folder.path().display().to_string(), "(private folder)");
        }
        out
    }

    /// `text` as the caller should read it, when it differs: a file kept only in the store by
    /// its URI, the private folder's other paths scrubbed.
    fn said(&self, kept: &[(String, KeptFile, bool)], text: &str) -> Option<String> {
        if let Some((_, file, _)) = kept.iter().find(|(t, _, only)| *only && t == text) {
            return Some(file.uri.clone());
        }
        let scrubbed = self.scrub(text);
        (scrubbed != text).then_some(scrubbed)
    }

    /// A tool's error, its messages scrubbed of the private folder's paths.
    pub(crate) fn scrub_error(&self, error: ToolError) -> ToolError {
        if self.folder.is_none() {
            return error;
        }
        match error {
            ToolError::InvalidArgs { path, message } => ToolError::InvalidArgs {
                path,
                message: self.scrub(&message),
            },
            ToolError::NotFound { what } => ToolError::NotFound {
                what: self.scrub(&what),
            },
            ToolError::Denied { rule, reason } => ToolError::Denied {
                rule,
                reason: self.scrub(&reason),
            },
            ToolError::Failed { message } => ToolError::Failed {
                message: self.scrub(&message),
            },
            ToolError::Busy { what, waited } => ToolError::Busy {
                what: self.scrub(&what),
                waited,
            },
            other => other,
        }
    }

    /// Whether `path` names a file this call wrote to an output place: `Some(true)` when it
    /// is kept only in the store.
    fn output_kind(&self, path: &Path) -> Option<bool> {
        if self
            .kept_only
            .as_ref()
            .is_some_and(|out| path.starts_with(out))
        {
            return Some(true);
        }
        if self.read.iter().any(|input| Path::new(input) == path) {
            return None;
        }
        let named = self.named.iter().any(|(place, folder)| {
            if *folder {
                return path.starts_with(place) && path != place;
            }
            let stem = place.file_stem().map(|s| s.to_string_lossy().into_owned());
            path.parent() == place.parent()
                && stem.is_some_and(|stem| {
                    path.file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with(&stem))
                })
        });
        named.then_some(false)
    }

    /// Keep the files `output` names in output places; name private ones by URI only, and
    /// list them all in `artifacts`.
    pub(crate) async fn keep(&self, store: &StoreHandle, output: &mut ToolOutput) -> Result<()> {
        if !self.writes && self.inputs.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        collect(&output.structured, &mut |text| {
            let path = Path::new(text);
            if let Some(only) = self.output_kind(path)
                && std::fs::symlink_metadata(path).is_ok_and(|m| {
                    m.is_file()
                        && (only
                            || self
                                .started
                                .is_none_or(|at| m.modified().is_ok_and(|t| t >= at)))
                })
                && !found.iter().any(|(t, _): &(String, bool)| t == text)
            {
                found.push((text.to_owned(), only));
            }
        });
        // The private folder is the call's alone: every file in it was written by the call,
        // named in the result or not (a batch's per-photo metadata).
        if let Some(out) = &self.kept_only {
            for path in files_beneath(out) {
                let text = path.display().to_string();
                if !found.iter().any(|(t, _)| *t == text) {
                    found.push((text, true));
                }
            }
        }
        // A private JSON file (a photo's metadata) names the other outputs: keep those first,
        // then keep the JSON speaking of them by URI, as the result does.
        found.sort_by_key(|(text, only)| *only && text.ends_with(".json"));
        let mut kept: Vec<(String, KeptFile, bool)> = Vec::new();
        for (text, only) in found {
            let path = Path::new(&text);
            let mut bytes = tokio::fs::read(path).await.map_err(|e| {
                ToolError::failed(format!("cannot keep the output `{}`: {e}", display(path)))
            })?;
            let media = media_type_of(path).to_owned();
            if only
                && media == "application/json"
                && let Ok(mut value) = serde_json::from_slice::<Value>(&bytes)
            {
                rename(&mut value, &|text| self.said(&kept, text));
                bytes = serde_json::to_vec_pretty(&value).unwrap_or(bytes);
            }
            let stored = match &self.owner {
                Some((principal, uploads)) => {
                    keep_upload(store, *uploads, principal, bytes, media).await
                }
                None => store.put_artifact(Blob(bytes), media).await,
            };
            let artifact = stored.map_err(|e| {
                let message = format!("cannot keep the output `{}`: {e}", display(path));
                match e {
                    StoreError::Quota { .. } | StoreError::TooLarge { .. } => {
                        ToolError::failed(message)
                    }
                    _ => ToolError::unavailable(message),
                }
            })?;
            let file = KeptFile {
                name: path
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                path: (!only).then(|| text.clone()),
                uri: format!("{ARTIFACT_URI_PREFIX}{}", artifact.sha256),
                sha256: artifact.sha256,
                size: artifact.size,
                media_type: artifact.media_type,
            };
            kept.push((text, file, only));
        }
        rename(&mut output.structured, &|text| self.said(&kept, text));
        for (_, file, _) in &kept {
            output.attachments.push(Attachment::Link {
                uri: file.uri.clone(),
                name: file.name.clone(),
                mime_type: Some(file.media_type.clone()),
            });
        }
        if self.writes
            && let Value::Object(object) = &mut output.structured
        {
            let list: Vec<KeptFile> = kept.into_iter().map(|(_, file, _)| file).collect();
            object.insert(
                "artifacts".into(),
                serde_json::to_value(list).unwrap_or_default(),
            );
        }
        Ok(())
    }
}

/// A file's name, for messages: the private folder's path means nothing to the caller.
fn display(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Every regular file beneath `dir`, sorted; symlinks are not followed.
fn files_beneath(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

fn collect(value: &Value, found: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => found(text),
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        Value::Object(map) => map.values().for_each(|item| collect(item, found)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn rename(value: &mut Value, to: &impl Fn(&str) -> Option<String>) {
    match value {
        Value::String(text) => {
            if let Some(new) = to(text) {
                *text = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename(item, to)),
        Value::Object(map) => map.values_mut().for_each(|item| rename(item, to)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
