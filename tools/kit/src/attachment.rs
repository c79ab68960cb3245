/// Content a tool returns beside its structured result, for a client to show: a spectrogram,
/// a cut-out image, a link to a written file. Transport-neutral; the server maps it to MCP
/// content blocks.
#[derive(Debug, Clone, PartialEq)]
pub enum Attachment {
    /// An image, e.g. PNG bytes.
    Image {
        /// MIME type, e.g. `image/png`.
        mime_type: String,
        /// The encoded image.
        data: Vec<u8>,
    },
    /// Audio, e.g. WAV bytes.
    Audio {
        /// MIME type, e.g. `audio/wav`.
        mime_type: String,
        /// The encoded audio.
        data: Vec<u8>,
    },
    /// A pointer to a resource the tool wrote or read, by URI.
    Link {
        /// e.g. `file:///tmp/out.wav`.
        uri: String,
        /// A short name for the link.
        name: String,
        /// MIME type, when known.
        mime_type: Option<String>,
    },
}
