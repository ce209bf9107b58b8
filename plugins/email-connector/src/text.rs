//! Text of an email: HTML turned into plain text, quoted history told apart from the new
//! reply, and long texts cut.

/// Tags whose content is not text (skipped with everything inside).
const HIDDEN_TAGS: &[&str] = &["head", "style", "script", "title", "template", "noscript"];

/// Tags that start and end a block of their own (a line break before and after).
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "main",
    "nav",
    "ol",
    "section",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "ul",
];

/// Tags that make a paragraph (an empty line before and after).
const PARAGRAPH_TAGS: &[&str] = &["p", "h1", "h2", "h3", "h4", "h5", "h6", "pre"];

/// Builds text lines from HTML, each with the blockquote depth it was written at.
#[derive(Default)]
struct Writer {
    lines: Vec<(usize, String)>,
    line: String,
    depth: usize,
    pending_space: bool,
    preformatted: bool,
}

impl Writer {
    fn text(&mut self, text: &str) {
        for ch in text.chars() {
            if self.preformatted {
                if ch == '\n' {
                    self.line_break();
                } else if ch != '\r' {
                    self.line.push(ch);
                }
            } else if ch.is_whitespace() {
                self.pending_space = true;
            } else {
                if self.pending_space && !self.line.is_empty() {
                    self.line.push(' ');
                }
                self.pending_space = false;
                self.line.push(ch);
            }
        }
    }

    /// `<br>`: ends the line, even an empty one.
    fn line_break(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.lines.push((self.depth, line.trim_end().to_owned()));
        self.pending_space = false;
    }

    /// A block boundary: ends the current line if it has text.
    fn block(&mut self) {
        if !self.line.trim().is_empty() {
            self.line_break();
        } else {
            self.line.clear();
            self.pending_space = false;
        }
    }

    /// A paragraph boundary: ends the line and leaves one empty line.
    fn paragraph(&mut self) {
        self.block();
        match self.lines.last_mut() {
            Some((_, l)) if !l.is_empty() => self.lines.push((self.depth, String::new())),
            // Already an empty line: it belongs to the outermost quote level around it.
            Some((depth, _)) => *depth = (*depth).min(self.depth),
            None => {}
        }
    }

    fn finish(mut self) -> String {
        self.block();
        let mut out: Vec<String> = Vec::new();
        for (depth, line) in self.lines {
            let rendered = format!("{}{line}", "> ".repeat(depth)).trim_end().to_owned();
            let blank = line.is_empty();
            // At most one empty line in a row.
            if blank && out.last().is_none_or(|l: &String| l.trim_start_matches('>').trim().is_empty()) {
                continue;
            }
            out.push(rendered);
        }
        while out.last().is_some_and(|l| l.trim_start_matches('>').trim().is_empty()) {
            out.pop();
        }
        out.join("\n")
    }
}

/// The name of the tag in `tag` (the text between `<` and `>`), lower-case, and whether it
/// is a closing tag.
fn tag_name(tag: &str) -> (String, bool) {
    let closing = tag.starts_with('/');
    let name: String = tag
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (name, closing)
}

/// The end of the tag starting at `start` (the index of `<`): the index of its `>`, quotes
/// in attribute values respected.
fn tag_end(html: &str, start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, ch) in html[start + 1..].char_indices() {
        match (quote, ch) {
            (None, '"' | '\'') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(start + 1 + i),
            _ => {}
        }
    }
    None
}

/// Decodes the HTML entity at the start of `rest` (which begins with `&`), if there is one:
/// the decoded text and the length of the entity.
fn entity(rest: &str) -> Option<(String, usize)> {
    let end = rest.char_indices().take(40).find(|(_, c)| *c == ';').map(|(i, _)| i)?;
    let inner = &rest[1..end];
    if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '#') {
        return None;
    }
    let token = &rest[..=end];
    let mut decoded = String::new();
    mail_parser::decoders::html::add_html_token(&mut decoded, token.as_bytes(), false);
    // An unknown entity comes back as it was: leave it as text.
    (decoded != token).then_some((decoded, token.len()))
}

/// Plain text of an HTML document: scripts, styles and the head dropped, block elements on
/// lines of their own, paragraphs separated by an empty line, list items as `- ` lines,
/// `<blockquote>` content prefixed with `> ` per level (so quoted history is recognisable),
/// entities decoded and white space collapsed (except in `<pre>`).
pub fn html_to_text(html: &str) -> String {
    let mut w = Writer::default();
    let mut hidden: Option<String> = None;
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        if rest.starts_with('<')
            && rest[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!')
        {
            let Some(end) = tag_end(html, i) else { break };
            let (name, closing) = tag_name(&html[i + 1..end]);
            i = end + 1;
            if let Some(open) = &hidden {
                if closing && *open == name {
                    hidden = None;
                }
                continue;
            }
            match name.as_str() {
                n if HIDDEN_TAGS.contains(&n) && !closing => hidden = Some(name),
                "br" => w.line_break(),
                "blockquote" if closing => {
                    w.block();
                    w.depth = w.depth.saturating_sub(1);
                    w.paragraph();
                }
                "blockquote" => {
                    w.paragraph();
                    w.depth += 1;
                }
                "li" => {
                    w.block();
                    if !closing {
                        w.text("- ");
                    }
                }
                "td" | "th" if !closing => w.pending_space = true,
                n if PARAGRAPH_TAGS.contains(&n) => {
                    w.paragraph();
                    if n == "pre" {
                        w.preformatted = !closing;
                    }
                }
                n if BLOCK_TAGS.contains(&n) => w.block(),
                _ => {}
            }
            continue;
        }
        let ch = rest.chars().next().unwrap_or_default();
        if hidden.is_some() {
            i += rest[ch.len_utf8()..].find('<').map_or(rest.len(), |n| n + ch.len_utf8());
            continue;
        }
        if ch == '&'
            && let Some((decoded, len)) = entity(rest)
        {
            w.text(&decoded);
            i += len;
            continue;
        }
        let next = rest[ch.len_utf8()..].find(['<', '&']).map_or(rest.len(), |n| n + ch.len_utf8());
        w.text(&rest[..next]);
        i += next;
    }
    w.finish()
}

/// Verbs of an attribution line ("On <date>, <name> wrote:", "... написал(а):", "Am <date>
/// schrieb <name>:") in the languages seen most, compared lower-case.
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "написал",
    "пишет",
    "schrieb",
    "écrit",
    "escribió",
    "scritto",
    "schreef",
    "skrev",
    "escreveu",
    "napisał",
];

/// Words an attribution wrapped over several lines starts with.
const ATTRIBUTION_STARTS: &[&str] = &["On ", "Le ", "Am ", "El ", "Il ", "Op ", "Em ", "W dniu "];

/// Markers of an Outlook-style original message below a reply (compared lower-case, between
/// dashes).
const ORIGINAL_MESSAGE_MARKERS: &[&str] = &[
    "original message",
    "исходное сообщение",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
];

/// Markers of a forwarded message (compared lower-case): what follows is the forwarded
/// content, which is kept.
const FORWARD_MARKERS: &[&str] = &[
    "forwarded message",
    "begin forwarded message",
    "пересылаемое сообщение",
    "переадресованное сообщение",
    "weitergeleitete nachricht",
    "message transféré",
    "mensaje reenviado",
];

/// Header names that open an Outlook-style quoted header block (`From:` then `Sent:`).
const OUTLOOK_FROM: &[&str] = &["from:", "от:", "von:", "de:"];
const OUTLOOK_SENT: &[&str] =
    &["sent:", "date:", "отправлено:", "gesendet:", "envoyé :", "envoyé:", "enviado:"];

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_signature_delimiter(line: &str) -> bool {
    line.trim_end() == "--"
}

/// Whether `line` ends an attribution: it ends with `:` and has one of
/// [`ATTRIBUTION_VERBS`], or it is a localized Gmail attribution ending with the quoted
/// author's address (`... <a@b.c>:`).
fn ends_attribution(line: &str) -> bool {
    let line = line.trim().to_lowercase();
    line.ends_with(':')
        && (ATTRIBUTION_VERBS.iter().any(|v| line.contains(v))
            || (line.ends_with(">:") && line.contains('@')))
}

/// If line `j` ends an attribution, the index of its first line: `j`, or up to two lines
/// above when the attribution was wrapped and starts with one of [`ATTRIBUTION_STARTS`].
fn attribution_start(lines: &[&str], j: usize) -> Option<usize> {
    let line = lines[j];
    if is_quoted(line) || !ends_attribution(line) {
        return None;
    }
    if ATTRIBUTION_STARTS.iter().any(|s| line.trim_start().starts_with(s)) {
        return Some(j);
    }
    for k in (j.saturating_sub(2)..j).rev() {
        if is_blank(lines[k]) || is_quoted(lines[k]) {
            break;
        }
        if ATTRIBUTION_STARTS.iter().any(|s| lines[k].trim_start().starts_with(s)) {
            return Some(k);
        }
    }
    Some(j)
}

/// Whether line `i` opens an Outlook-style original message: a `-----Original
/// Message-----` line (or its translations), or a `From:` line followed by `Sent:` / `Date:`
/// within two lines (after an optional `____` rule).
fn opens_original_message(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim().to_lowercase();
    if line.starts_with("---") && ORIGINAL_MESSAGE_MARKERS.iter().any(|m| line.contains(m)) {
        return true;
    }
    let from_at = |k: usize| {
        lines.get(k).is_some_and(|l| {
            let l = l.trim_start().to_lowercase();
            OUTLOOK_FROM.iter().any(|p| l.starts_with(p))
        })
    };
    let sent_near = |k: usize| {
        (k + 1..k + 3).any(|n| {
            lines.get(n).is_some_and(|l| {
                let l = l.trim_start().to_lowercase();
                OUTLOOK_SENT.iter().any(|p| l.starts_with(p))
            })
        })
    };
    if line.len() >= 10 && line.chars().all(|c| c == '_') {
        return from_at(i + 1) && sent_near(i + 1);
    }
    from_at(i) && sent_near(i)
}

/// Whether everything in `rest` (the lines after an attribution) is quoted history: quoted
/// (`>`) or blank lines, possibly followed by a signature (from a `--` line on).
fn only_quotes_follow(rest: &[&str]) -> bool {
    for line in rest {
        if is_signature_delimiter(line) {
            return true;
        }
        if !is_blank(line) && !is_quoted(line) {
            return false;
        }
    }
    true
}

/// Where the quoted history at the end of `lines` starts, if there is any.
fn quote_start(lines: &[&str]) -> Option<usize> {
    for i in 0..lines.len() {
        if is_quoted(lines[i]) {
            continue;
        }
        let lower = lines[i].trim().to_lowercase();
        if FORWARD_MARKERS.iter().any(|m| lower.contains(m))
            && (lower.starts_with("--") || lower.ends_with(':'))
        {
            // A forward: the rest is content the sender passes on.
            return None;
        }
        if opens_original_message(lines, i) {
            return Some(i);
        }
        if let Some(start) = attribution_start(lines, i)
            && only_quotes_follow(&lines[i + 1..])
        {
            return Some(start);
        }
    }
    // No attribution: quoted lines at the very end (after the reply, bottom-posted quotes
    // being kept as they hold the reply's context).
    let mut end = lines.len();
    while end > 0 && (is_blank(lines[end - 1]) || is_quoted(lines[end - 1])) {
        end -= 1;
    }
    if !lines[end..].iter().any(|l| is_quoted(l)) {
        return None;
    }
    if end > 0
        && let Some(start) = attribution_start(lines, end - 1)
    {
        end = start;
    }
    Some(end)
}

/// `text` without the quoted history at its end, or `None` when there is none to strip (or
/// when nothing but the quote would be left: a message that is all quote is kept whole).
///
/// What counts as quoted history:
/// - an attribution line ("On Mon, 1 Jan 2024, Anna <anna@example.com> wrote:", possibly
///   wrapped over up to three lines, or its Russian, German, French... forms such as
///   "... написал(а):" and "Am ... schrieb Max:", or a localized Gmail one ending with
///   `<address>:`) followed only by
///   `>`-quoted lines, blank lines and a signature: cut from the attribution on;
/// - an Outlook-style original message ("-----Original Message-----", "From: ... Sent:
///   ..."): cut from there on;
/// - otherwise `>`-quoted lines at the very end, with an attribution right above them.
///
/// Quotes followed by more of the sender's own text (interleaved answers) are kept, and so
/// is everything from a forwarded message's marker ("---------- Forwarded message
/// ---------", "Begin forwarded message:") on.
pub fn strip_quoted(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let cut = quote_start(&lines)?;
    let kept = lines[..cut].join("\n").trim_end().to_owned();
    (!kept.trim().is_empty()).then_some(kept)
}

/// `text` with `\r\n` and lone `\r` turned into `\n`, trailing white space of lines and
/// leading and trailing empty lines removed; `None` when nothing is left.
pub fn normalize(text: &str) -> Option<String> {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.lines().map(str::trim_end).collect();
    let joined = lines.join("\n");
    let trimmed = joined.trim_matches('\n');
    (!trimmed.trim().is_empty()).then(|| trimmed.to_owned())
}

/// `text` cut to at most `max_bytes` bytes (on a character boundary), and whether it was cut.
pub fn truncate(text: String, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_owned(), true)
}
