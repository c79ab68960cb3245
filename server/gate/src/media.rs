//! What bytes handed to Baton are: the media type their sender declares, checked against the
//! bytes themselves and against the types Baton's tools read — for uploads and inline content
//! alike, so nothing is kept (and later served) under a type it is not.

/// The media types Baton's tools read (canonical spellings).
pub const ACCEPTED: [&str; 10] = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/wav",
    "audio/flac",
    "audio/mpeg",
    "audio/ogg",
    "application/json",
    "application/fhir+json",
    "application/octet-stream",
];

/// The canonical spelling of a media type's aliases (`audio/x-wav` → `audio/wav`).
pub(crate) fn canonical(media: &str) -> &str {
    match media {
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/x-flac" => "audio/flac",
        "audio/mp3" => "audio/mpeg",
        "application/ogg" => "audio/ogg",
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "text/json" => "application/json",
        other => other,
    }
}

/// What the bytes are, when their first bytes say so.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        Some("audio/wav")
    } else if starts(b"fLaC") {
        Some("audio/flac")
    } else if starts(b"OggS") {
        Some("audio/ogg")
    } else if starts(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        Some("audio/mpeg")
    } else if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
    {
        Some("application/json")
    } else {
        None
    }
}

/// `text` as a media type (parameters dropped, lowercase).
pub fn parse_media_type(text: &str) -> Result<String, String> {
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, sub)) if token(kind) && token(sub) => Ok(essence),
        _ => Err(format!(
            "Content-Type `{text}` is not a media type like `image/jpeg`"
        )),
    }
}

/// The media type to keep `bytes` under, given what the sender declared: one Baton's tools
/// read, and not contradicted by the bytes. `application/octet-stream` takes what the bytes
/// say, when they say.
pub fn check_media(declared: &str, bytes: &[u8]) -> Result<String, String> {
    let media = canonical(declared);
    if !ACCEPTED.contains(&media) {
        return Err(format!(
            "`{declared}` is not a type Baton's tools read; send one of {}",
            ACCEPTED.join(", ")
        ));
    }
    let sniffed = sniff(bytes);
    match sniffed {
        _ if media == "application/octet-stream" => {
            Ok(sniffed.unwrap_or("application/octet-stream").to_owned())
        }
        Some(actual)
            if actual != media && !(actual == "application/json" && media.ends_with("json")) =>
        {
            Err(format!(
                "the upload says `{declared}` but its bytes are `{actual}`"
            ))
        }
        _ => Ok(media.to_owned()),
    }
}
