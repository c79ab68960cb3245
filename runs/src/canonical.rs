use serde_json::Value;
use sha2::{Digest, Sha256};

/// Keys whose values are secrets: redacted before anything is hashed, stored or shown.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "private_key",
    "cookie",
];

/// `value` with every object member whose key names a secret replaced by `"[REDACTED]"`.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    if is_secret(key) {
                        (key.clone(), Value::String("[REDACTED]".into()))
                    } else {
                        (key.clone(), redact(value))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => value.clone(),
    }
}

/// Canonical JSON: object keys sorted (by UTF-8 bytes), no insignificant whitespace. Equal
/// values give equal bytes whatever order their keys arrived in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out, false);
    out
}

fn is_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|word| lower.contains(word))
}

fn write(value: &Value, out: &mut String, redacting: bool) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if redacting && is_secret(key) {
                    out.push_str("\"[REDACTED]\"");
                } else {
                    write(value, out, redacting);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(item, out, redacting);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push_str(&value.to_string());
        }
    }
}

/// SHA-256 (hex) of the canonical JSON of the redacted arguments: what audit records and
/// approvals store instead of the arguments themselves.
pub fn args_digest(args: &Value) -> String {
    // Redacting while writing: the same bytes as `canonical_json(&redact(args))`, no copy.
    let mut out = String::new();
    write(args, &mut out, true);
    hex(&Sha256::digest(out.as_bytes()))
}

/// SHA-256 (hex) of the canonical JSON of the arguments, secrets included: what an approval
/// binds, so a value a reviewer saw as `[REDACTED]` cannot be swapped after approval. Kept
/// only on the approval; audit records keep the redacted [`args_digest`].
pub fn call_digest(args: &Value) -> String {
    hex(&Sha256::digest(canonical_json(args).as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}
