/// One document of a pack: Markdown prose, or a TOML rule table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Media type: `text/markdown` or `application/toml`.
    pub mime: &'static str,
    /// `knowledge://<pack>/<path>`.
    pub uri: String,
    /// The pack (top-level folder) it belongs to.
    pub pack: String,
    /// Path relative to the pack folder, `/`-separated.
    pub path: String,
    /// The first level-1 heading, else the file stem.
    pub title: String,
    /// The whole text.
    pub text: String,
    /// The document split at its headings.
    pub sections: Vec<Section>,
}

/// A run of a document under one heading (the text before the first heading is a section
/// headed by the document title).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The heading text, without `#`s.
    pub heading: String,
    /// GitHub-style anchor of the heading, to link into the document.
    pub anchor: String,
    /// 1-based line of the heading (or 1 for the leading section).
    pub line: usize,
    /// The section's text, heading excluded.
    pub text: String,
}

impl Document {
    /// Parse `text` as the document `pack`/`path`.
    pub fn parse(pack: &str, path: &str, text: String) -> Document {
        let stem = path
            .rsplit('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".md")
            .to_owned();
        let mut sections = Vec::new();
        let mut title = None;
        let mut current = Section {
            heading: String::new(),
            anchor: String::new(),
            line: 1,
            text: String::new(),
        };
        let mut in_fence = false;
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                in_fence = !in_fence;
            }
            let heading = (!in_fence).then(|| heading_of(line)).flatten();
            match heading {
                Some((level, heading)) => {
                    if level == 1 && title.is_none() {
                        title = Some(heading.to_owned());
                    }
                    push_section(&mut sections, std::mem::take(&mut current));
                    current = Section {
                        heading: heading.to_owned(),
                        anchor: anchor_of(heading),
                        line: index + 1,
                        text: String::new(),
                    };
                }
                None => {
                    current.text.push_str(line);
                    current.text.push('\n');
                }
            }
        }
        push_section(&mut sections, current);
        let title = title.unwrap_or(stem);
        for section in &mut sections {
            if section.heading.is_empty() {
                section.heading.clone_from(&title);
            }
        }
        Document {
            mime: MARKDOWN,
            uri: format!("knowledge://{pack}/{path}"),
            pack: pack.to_owned(),
            path: path.to_owned(),
            title,
            text,
            sections,
        }
    }

    /// A TOML rule table `pack`/`path`: one section (the table is read whole by the pack that
    /// owns it), titled by its first `#` comment line, else the file stem.
    pub fn table(pack: &str, path: &str, text: String) -> Document {
        let title = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix('#'))
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .unwrap_or_else(|| {
                let name = path.rsplit('/').next().unwrap_or(path);
                name.trim_end_matches(".toml").to_owned()
            });
        Document {
            mime: TOML,
            uri: format!("knowledge://{pack}/{path}"),
            pack: pack.to_owned(),
            path: path.to_owned(),
            sections: vec![Section {
                heading: title.clone(),
                anchor: String::new(),
                line: 1,
                text: text.clone(),
            }],
            title,
            text,
        }
    }

    /// Whether this is a TOML rule table.
    pub fn is_table(&self) -> bool {
        self.mime == TOML
    }
}

/// Media type of Markdown documents.
pub const MARKDOWN: &str = "text/markdown";
/// Media type of TOML rule tables.
pub const TOML: &str = "application/toml";

fn push_section(sections: &mut Vec<Section>, section: Section) {
    let empty = section.text.trim().is_empty();
    // A heading with no body still matters (it names what follows); a leading section with
    // neither heading nor text is nothing.
    if !(empty && section.heading.is_empty()) {
        sections.push(section);
    }
}

/// `(level, text)` when `line` is an ATX heading.
fn heading_of(line: &str) -> Option<(usize, &str)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim();
    (!text.is_empty()).then_some((level, text))
}

fn anchor_of(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c == ' ' || c == '-' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}
