//! Finding and rewriting image references in Kubernetes manifests, Compose files and Dockerfiles.
//!
//! The scanners read the raw text line by line instead of parsing it into a tree, so a rewrite
//! can keep every byte outside a reference unchanged: formatting, comments, quoting and line
//! endings. They recognize the common forms (an `image:` key with its value on the same line, a
//! `FROM` instruction) and report the forms they cannot pin safely as [`Skipped`] places instead
//! of guessing. This module works on text only and does not contact a registry or check trust
//! data.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;

use crate::reference::{Digest, Reference};

/// The syntax of a file that names images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A Dockerfile or Containerfile, where `FROM` instructions name images.
    Dockerfile,
    /// A YAML file, such as a Kubernetes manifest or a Compose file, where `image:` keys name images.
    Yaml,
}

/// An image reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte range of the reference in the scanned text, without surrounding quotes.
    pub range: Range<usize>,
    /// The reference exactly as written. It always parses with [`Reference::parse`].
    pub text: String,
    /// 1-based line number where the reference starts.
    pub line: usize,
}

impl Found {
    /// Returns whether the reference already carries a digest (`name@sha256:…`).
    pub fn is_pinned(&self) -> bool {
        self.text.contains('@')
    }
}

/// A place that names an image but cannot be pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number.
    pub line: usize,
    /// The value as written on that line, or the trimmed line when the value starts on a later
    /// line. A Dockerfile reference split by a line continuation is given joined.
    pub text: String,
    /// Reason the place cannot be pinned, written for the user.
    pub reason: String,
}

/// The result of scanning one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// References that can be pinned, in file order.
    pub images: Vec<Found>,
    /// Places that name an image but cannot be pinned, in file order.
    pub skipped: Vec<Skipped>,
}

/// Error for a replacement list that does not fit the text passed to [`rewrite`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("invalid replacement range {range:?} for a text of {len} bytes: the range must lie inside the text on character boundaries. Pass ranges from a scan of the same text")]
    InvalidRange { range: Range<usize>, len: usize },

    #[error("replacement ranges {first:?} and {second:?} overlap. Pass each reference once")]
    Overlapping { first: Range<usize>, second: Range<usize> },
}

/// Chooses the kind from the file name and, when the name does not tell, from the content.
///
/// `Dockerfile`, `Containerfile`, `Dockerfile.*`, `Containerfile.*`, `*.dockerfile` and
/// `*.containerfile` (in any letter case) are Dockerfiles, and `*.yaml` and `*.yml` are YAML.
/// Any other file is a Dockerfile when a line starts with a `FROM` instruction, and YAML otherwise.
pub fn detect_kind(path: &Path, text: &str) -> FileKind {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_ascii_lowercase();

    let dockerfile_name = name == "dockerfile"
        || name == "containerfile"
        || name.starts_with("dockerfile.")
        || name.starts_with("containerfile.")
        || name.ends_with(".dockerfile")
        || name.ends_with(".containerfile");
    if dockerfile_name {
        return FileKind::Dockerfile;
    }
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return FileKind::Yaml;
    }

    let has_from_instruction = lines(text).any(|line| {
        let mut words = line.content.split_whitespace();
        words.next().is_some_and(|word| word.eq_ignore_ascii_case("from")) && words.next().is_some()
    });
    if has_from_instruction {
        FileKind::Dockerfile
    } else {
        FileKind::Yaml
    }
}

/// Finds the image references in `text`.
///
/// In YAML these are the values of `image:` keys, and in a Dockerfile the images of `FROM`
/// instructions. Forms that cannot be pinned go to [`Scan::skipped`] with a reason. Build stage
/// names, `scratch` and empty values name no image and appear in neither list.
pub fn scan(kind: FileKind, text: &str) -> Scan {
    match kind {
        FileKind::Dockerfile => scan_dockerfile(text),
        FileKind::Yaml => scan_yaml(text),
    }
}

/// Replaces each range of `text` with its new text and keeps every other byte unchanged.
///
/// The replacements may come in any order, but their ranges must not overlap and must lie on
/// character boundaries of `text`, as the ranges from [`scan`] of the same text do.
pub fn rewrite(text: &str, replacements: &[(Range<usize>, String)]) -> Result<String, RewriteError> {
    let mut sorted: Vec<&(Range<usize>, String)> = replacements.iter().collect();
    sorted.sort_by_key(|(range, _)| range.start);

    let mut output = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut previous: Option<&Range<usize>> = None;
    for (range, new_text) in sorted {
        let valid = range.start <= range.end
            && range.end <= text.len()
            && text.is_char_boundary(range.start)
            && text.is_char_boundary(range.end);
        if !valid {
            return Err(RewriteError::InvalidRange { range: range.clone(), len: text.len() });
        }
        if let Some(previous) = previous {
            if range.start < previous.end {
                return Err(RewriteError::Overlapping { first: previous.clone(), second: range.clone() });
            }
        }

        output.push_str(&text[copied_up_to..range.start]);
        output.push_str(new_text);
        copied_up_to = range.end;
        previous = Some(range);
    }
    output.push_str(&text[copied_up_to..]);
    Ok(output)
}

/// Builds the pinned form of a reference as written.
///
/// The name and tag stay exactly as the user wrote them, and the digest is appended or replaces
/// the one already there: `nginx:1.13.9` becomes `nginx:1.13.9@sha256:…`, and
/// `nginx:1.13.9@sha256:OLD` becomes `nginx:1.13.9@sha256:NEW`.
pub fn pinned_text(original: &str, digest: &Digest) -> String {
    let name_and_tag = original.split_once('@').map_or(original, |(before, _)| before);
    format!("{name_and_tag}@{digest}")
}

/// One line of the text, without its line ending.
struct Line<'a> {
    /// 1-based line number.
    number: usize,
    /// Byte offset of the line's first character in the whole text.
    start: usize,
    /// The line without `\n` or `\r\n`.
    content: &'a str,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut next_start = 0;
    text.split_inclusive('\n').enumerate().map(move |(index, raw)| {
        let start = next_start;
        next_start += raw.len();
        let content = raw.strip_suffix('\n').unwrap_or(raw);
        let content = content.strip_suffix('\r').unwrap_or(content);
        Line { number: index + 1, start, content }
    })
}

impl Scan {
    /// Files a candidate reference under `images` or `skipped`.
    fn add_candidate(&mut self, text: &str, range: Range<usize>, line: usize) {
        let value = &text[range.clone()];

        let reason = if value.contains('$') {
            "the reference contains a variable ($NAME or ${NAME}), so the image is known only when the file is used. Pin the value the variable is set to".to_owned()
        } else if value.contains("{{") {
            "the reference contains a template expression ({{ … }}). Pin the value the template fills in".to_owned()
        } else {
            match Reference::parse(value) {
                Ok(_) => {
                    self.images.push(Found { range, text: value.to_owned(), line });
                    return;
                }
                Err(err) => format!("not a valid image reference: {err}"),
            }
        };
        self.skip(line, value, reason);
    }

    fn skip(&mut self, line: usize, text: &str, reason: impl Into<String>) {
        self.skipped.push(Skipped { line, text: text.to_owned(), reason: reason.into() });
    }
}

fn scan_yaml(text: &str) -> Scan {
    let lines: Vec<Line<'_>> = lines(text).collect();
    let mut scan = Scan::default();

    // NOTE: An `image:` key in a flow mapping is reported only when the key sits on the same line
    // as the mapping's `{`. Keys on the later lines of a flow mapping are not read.

    // While a block scalar (`key: |` or `key: >`) is open, lines indented deeper than this column
    // are its content, not keys, even when they read `image: …`.
    let mut block_scalar_parent: Option<usize> = None;

    for (index, line) in lines.iter().enumerate() {
        let indent = indentation(line.content);
        let body = &line.content[indent..];

        if let Some(parent) = block_scalar_parent {
            if body.is_empty() || indent > parent {
                continue;
            }
            block_scalar_parent = None;
        }
        if body.is_empty() || body.starts_with('#') {
            continue;
        }

        let node_column = skip_sequence_markers(line.content, indent);
        let node = &line.content[node_column..];

        if let Some(value_offset) = image_value_offset(node) {
            scan_image_value(&mut scan, text, &lines, index, node_column, node_column + value_offset);
        } else if has_flow_image_key(node) {
            scan.skip(
                line.number,
                strip_comment(node).trim_end(),
                "the image is in a flow mapping ({…}). Write it as a block mapping to pin it",
            );
        }

        if let Some(has_key) = block_scalar_header(node) {
            // A block scalar under a key ends at the first line not indented past the key. A
            // scalar that is itself a sequence entry (`- |`) ends at the line's own indentation.
            block_scalar_parent = Some(if has_key { node_column } else { indent });
        }
    }
    scan
}

/// Scans the value of the `image:` key on `lines[index]`. `key_column` is where the key starts
/// and `value_column` is just after its colon.
fn scan_image_value(
    scan: &mut Scan,
    text: &str,
    lines: &[Line<'_>],
    index: usize,
    key_column: usize,
    value_column: usize,
) {
    let line = &lines[index];
    let after_colon = &line.content[value_column..];
    let value_column = value_column + (after_colon.len() - after_colon.trim_start_matches([' ', '\t']).len());
    let value = &line.content[value_column..];
    let value_without_comment = strip_comment(value).trim_end();

    let Some(first) = value.chars().next() else {
        scan_value_on_later_lines(scan, lines, index, key_column);
        return;
    };
    let reason = match first {
        '#' => {
            scan_value_on_later_lines(scan, lines, index, key_column);
            return;
        }
        '|' | '>' => "the value is a block scalar (| or >). Write the reference on the same line as `image:` to pin it",
        '&' => "the value has an anchor (&name) that aliases elsewhere in the file share. Pin it by hand",
        '*' => "the value is an alias (*name) of a value defined elsewhere in the file. Pin that value",
        '{' | '[' => "the value is a flow collection, not a single image reference",
        '!' => "the value has a YAML tag (!tag). Pin it by hand",
        '"' | '\'' => {
            scan_quoted_value(scan, text, line, value_column);
            return;
        }
        _ => {
            let start = line.start + value_column;
            let range = start..start + value_without_comment.len();
            if continues_on_next_line(lines, index, key_column) {
                scan.skip(
                    line.number,
                    value_without_comment,
                    "the plain value continues on the next line. Write the reference on one line to pin it",
                );
            } else {
                scan.add_candidate(text, range, line.number);
            }
            return;
        }
    };
    scan.skip(line.number, value_without_comment, reason);
}

/// Scans a single- or double-quoted value that starts at `value_column` of `line`.
fn scan_quoted_value(scan: &mut Scan, text: &str, line: &Line<'_>, value_column: usize) {
    let value = &line.content[value_column..];
    let quote = if value.starts_with('"') { '"' } else { '\'' };
    let inner = &value[1..];

    let Some(close) = inner.find(quote) else {
        scan.skip(
            line.number,
            value,
            "the quoted value continues on the next line. Write the reference on one line to pin it",
        );
        return;
    };
    let content = &inner[..close];
    let after = inner[close + 1..].trim_start_matches([' ', '\t']);

    if quote == '"' && content.contains('\\') {
        scan.skip(
            line.number,
            content,
            "the double-quoted value contains an escape sequence. Write the reference without escapes to pin it",
        );
        return;
    }
    if quote == '\'' && inner[close + 1..].starts_with('\'') {
        scan.skip(
            line.number,
            strip_comment(value).trim_end(),
            "the single-quoted value contains an escaped quote ('') and is not an image reference",
        );
        return;
    }
    if !(after.is_empty() || after.starts_with('#')) {
        scan.skip(
            line.number,
            strip_comment(value).trim_end(),
            "the quoted value is followed by text other than a comment, so the line is not valid YAML",
        );
        return;
    }
    if content.is_empty() {
        return;
    }

    let start = line.start + value_column + 1;
    scan.add_candidate(text, start..start + content.len(), line.number);
}

/// Handles an `image:` key with nothing after it on its line. The value is then either null, a
/// nested mapping (such as a Helm chart's `repository` and `tag`) or a scalar on the next lines.
fn scan_value_on_later_lines(scan: &mut Scan, lines: &[Line<'_>], index: usize, key_column: usize) {
    let Some(next) = next_content_line(lines, index) else {
        return;
    };
    let next_indent = indentation(next.content);
    if next_indent <= key_column {
        return;
    }

    let line = &lines[index];
    let key_line = line.content.trim();
    let next_node = &next.content[skip_sequence_markers(next.content, next_indent)..];
    if has_mapping_key(next_node) {
        scan.skip(
            line.number,
            key_line,
            "the value is a nested mapping (for example separate repository and tag keys), not a single image reference",
        );
    } else {
        scan.skip(
            line.number,
            key_line,
            "the value starts on the next line. Write the reference on the same line as `image:` to pin it",
        );
    }
}

/// Returns whether a plain value continues on the following lines: YAML folds a later line into
/// a plain scalar when it is indented past the key and is not a comment.
fn continues_on_next_line(lines: &[Line<'_>], index: usize, key_column: usize) -> bool {
    let Some(next) = lines[index + 1..].iter().find(|line| !line.content.trim().is_empty()) else {
        return false;
    };
    let next_indent = indentation(next.content);
    next_indent > key_column && !next.content[next_indent..].starts_with('#')
}

/// Returns the next line after `lines[index]` that is neither blank nor a comment.
fn next_content_line<'l, 'a>(lines: &'l [Line<'a>], index: usize) -> Option<&'l Line<'a>> {
    lines[index + 1..].iter().find(|line| {
        let body = line.content.trim_start();
        !body.is_empty() && !body.starts_with('#')
    })
}

/// Counts the leading spaces and tabs. YAML indents with spaces only, but a tab here still
/// separates, so it is counted rather than read as content.
fn indentation(content: &str) -> usize {
    content.len() - content.trim_start_matches([' ', '\t']).len()
}

/// Returns the column after any sequence entry markers (`- `, `- - `) that start at `column`.
fn skip_sequence_markers(content: &str, column: usize) -> usize {
    let bytes = content.as_bytes();
    let mut column = column;
    while bytes.get(column) == Some(&b'-') && matches!(bytes.get(column + 1), Some(b' ' | b'\t')) {
        column += 1;
        while matches!(bytes.get(column), Some(b' ' | b'\t')) {
            column += 1;
        }
    }
    column
}

/// Returns the offset just after the colon when `node` starts with the key `image`, written plain
/// or quoted. Keys that merely contain the word, such as `baseimage` or `imagePullPolicy`, do not
/// match.
fn image_value_offset(node: &str) -> Option<usize> {
    let after_key = ["image", "\"image\"", "'image'"].iter().find_map(|key| node.strip_prefix(key))?;
    let after_spaces = after_key.trim_start_matches([' ', '\t']);
    let after_colon = after_spaces.strip_prefix(':')?;
    if !(after_colon.is_empty() || after_colon.starts_with([' ', '\t'])) {
        return None;
    }
    Some(node.len() - after_colon.len())
}

/// Returns whether `node` contains an `image` key inside a flow mapping, as in
/// `{name: web, image: nginx}`.
fn has_flow_image_key(node: &str) -> bool {
    let node = strip_comment(node);
    let Some(brace) = node.find('{') else {
        return false;
    };
    node[brace + 1..].split([',', '{']).any(|entry| {
        let entry = entry.trim_start_matches([' ', '\t']);
        image_value_offset(entry).is_some()
    })
}

/// Returns whether `node` starts with a plain mapping key (`key:` followed by a space or the end
/// of the line).
fn has_mapping_key(node: &str) -> bool {
    let node = strip_comment(node);
    node.find(':').is_some_and(|colon| {
        let after = &node[colon + 1..];
        colon > 0 && (after.is_empty() || after.starts_with([' ', '\t']))
    })
}

/// Checks whether `node` ends in a block scalar header (`|`, `>-`, `|2+` …), possibly after an
/// anchor or tag. Returns `Some(true)` when a key comes before it, `Some(false)` when the header
/// is the whole node (a sequence entry `- |`), and `None` when the node opens no block scalar.
fn block_scalar_header(node: &str) -> Option<bool> {
    let node = strip_comment(node).trim_end();
    let mut tokens = node.rsplit([' ', '\t']).filter(|token| !token.is_empty());

    let header = tokens.next()?;
    let mut header_chars = header.chars();
    let indicators_valid = matches!(header_chars.next(), Some('|' | '>'))
        && header.len() <= 3
        && header_chars.all(|c| c == '+' || c == '-' || ('1'..='9').contains(&c));
    if !indicators_valid {
        return None;
    }

    let mut previous = tokens.next();
    while previous.is_some_and(|token| token.starts_with(['&', '!'])) {
        previous = tokens.next();
    }
    match previous {
        None => Some(false),
        Some(token) if token.ends_with(':') => Some(true),
        Some(_) => None,
    }
}

/// Cuts a trailing YAML comment: a `#` at the start or after a space or tab.
fn strip_comment(text: &str) -> &str {
    let bytes = text.as_bytes();
    let comment_start = (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')));
    match comment_start {
        Some(i) => &text[..i],
        None => text,
    }
}

/// A character of a Dockerfile instruction after its continuation lines are joined, with where it
/// came from in the text.
#[derive(Clone, Copy)]
struct SourceChar {
    offset: usize,
    line: usize,
    value: char,
}

/// A whitespace-separated word of a joined Dockerfile instruction.
struct Word {
    text: String,
    range: Range<usize>,
    line: usize,
    /// False when a line continuation splits the word, so it has no single range in the text.
    contiguous: bool,
}

/// The state of a Dockerfile scan between lines.
struct DockerfileScanner {
    scan: Scan,
    /// The escape character, which also continues lines: `\` unless an `escape` parser directive
    /// sets it to a backtick.
    escape: char,
    /// Lowercased names of the build stages declared so far. Docker matches stage names without
    /// regard to case.
    stages: Vec<String>,
    /// Characters of the instruction being read, across continuation lines.
    instruction: Vec<SourceChar>,
    /// Heredoc terminators still expected, in order, each with whether leading tabs are stripped
    /// (`<<-EOF`).
    heredocs: VecDeque<(String, bool)>,
}

fn scan_dockerfile(text: &str) -> Scan {
    let mut scanner = DockerfileScanner {
        scan: Scan::default(),
        escape: '\\',
        stages: Vec::new(),
        instruction: Vec::new(),
        heredocs: VecDeque::new(),
    };
    let mut reading_directives = true;

    for line in lines(text) {
        if let Some((terminator, strip_tabs)) = scanner.heredocs.front() {
            let candidate = if *strip_tabs { line.content.trim_start_matches('\t') } else { line.content };
            if candidate == terminator {
                scanner.heredocs.pop_front();
            }
            continue;
        }

        // Parser directives such as `# escape=`` are read only before the first other line.
        if reading_directives {
            if let Some((name, value)) = parser_directive(line.content) {
                if name.eq_ignore_ascii_case("escape") && (value == "`" || value == "\\") {
                    scanner.escape = if value == "`" { '`' } else { '\\' };
                }
                continue;
            }
            reading_directives = false;
        }

        // Docker drops comment lines and blank lines, also in the middle of a continued instruction.
        let body = line.content.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }

        let trimmed = line.content.trim_end_matches([' ', '\t']);
        let (part, continues) = match trimmed.strip_suffix(scanner.escape) {
            Some(part) => (part, true),
            None => (line.content, false),
        };
        scanner.instruction.extend(part.char_indices().map(|(index, value)| SourceChar {
            offset: line.start + index,
            line: line.number,
            value,
        }));
        if !continues {
            scanner.finish_instruction(text);
        }
    }

    // A file may end in the middle of a continued instruction.
    if !scanner.instruction.is_empty() {
        scanner.finish_instruction(text);
    }
    scanner.scan
}

impl DockerfileScanner {
    fn finish_instruction(&mut self, text: &str) {
        let words = split_words(&self.instruction);
        self.instruction.clear();
        let Some(keyword) = words.first() else {
            return;
        };

        if keyword.text.eq_ignore_ascii_case("from") {
            self.scan_from(text, &words[1..]);
        } else if ["run", "copy", "add"].iter().any(|name| keyword.text.eq_ignore_ascii_case(name)) {
            self.heredocs.extend(words[1..].iter().filter_map(|word| heredoc_terminator(&word.text)));
        }
    }

    /// Scans the arguments of `FROM [--flag=value …] IMAGE [AS NAME]`.
    fn scan_from(&mut self, text: &str, arguments: &[Word]) {
        let mut rest = arguments.iter().skip_while(|word| word.text.starts_with("--"));
        let Some(image) = rest.next() else {
            return;
        };
        let stage_name = match (rest.next(), rest.next()) {
            (Some(keyword), Some(name)) if keyword.text.eq_ignore_ascii_case("as") => {
                Some(name.text.to_ascii_lowercase())
            }
            _ => None,
        };

        let lowercase = image.text.to_ascii_lowercase();
        if lowercase == "scratch" || self.stages.contains(&lowercase) {
            // Neither names an image in a registry. The stage check runs before this stage's own
            // name is added, so `FROM alpine AS alpine` still pins the image.
        } else if !image.contiguous {
            let reason = "a line continuation splits the reference. Write it on one line to pin it";
            self.scan.skip(image.line, &image.text, reason);
        } else {
            self.scan.add_candidate(text, image.range.clone(), image.line);
        }

        if let Some(name) = stage_name {
            self.stages.push(name);
        }
    }
}

/// Splits a joined instruction into words at whitespace.
fn split_words(chars: &[SourceChar]) -> Vec<Word> {
    let mut words = Vec::new();
    let mut current: Option<Word> = None;
    for c in chars {
        if c.value.is_whitespace() {
            words.extend(current.take());
            continue;
        }
        match current.as_mut() {
            Some(word) => {
                word.contiguous &= word.range.end == c.offset;
                word.range.end = c.offset + c.value.len_utf8();
                word.text.push(c.value);
            }
            None => {
                current = Some(Word {
                    text: c.value.to_string(),
                    range: c.offset..c.offset + c.value.len_utf8(),
                    line: c.line,
                    contiguous: true,
                });
            }
        }
    }
    words.extend(current);
    words
}

/// Parses a parser directive line, `# name=value`, into its name and value.
fn parser_directive(content: &str) -> Option<(&str, &str)> {
    let (name, value) = content.strip_prefix('#')?.split_once('=')?;
    let name = name.trim();
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid_name.then(|| (name, value.trim()))
}

/// Returns the terminator of a heredoc that `word` opens (`<<EOF`, `<<-EOF`, `<<"EOF"`) and
/// whether leading tabs are stripped before comparing lines with it.
fn heredoc_terminator(word: &str) -> Option<(String, bool)> {
    let rest = word.strip_prefix("<<")?;
    let (rest, strip_tabs) = match rest.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let rest = rest.trim_start_matches(['"', '\'']);
    let terminator: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!terminator.is_empty()).then_some((terminator, strip_tabs))
}

#[cfg(test)]
mod tests;
