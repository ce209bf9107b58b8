//! Keyword router: puts a conversation in the queue whose keywords appear in the
//! customer's message. Keyword lists are config (`rules`), one line per queue, in any
//! language; the defaults cover Russian and English for support, billing and sales.
//!
//! Matching lower-cases the text, folds `ё` to `е`, splits it into words and compares
//! each keyword as a word prefix, so one Russian stem covers its inflections.

use seam_sdk::prelude::*;

/// Lower-cases and folds `ё` so `Проблёма` and `проблема` compare equal.
pub fn normalize(text: &str) -> String {
    text.to_lowercase().replace('ё', "е")
}

/// Parsed rules: each queue with its keywords, normalized, in the order written.
pub struct Rules(Vec<(String, Vec<String>)>);

impl Rules {
    /// Normalizes `rules` and parses it: every non-blank, non-`#` line must be
    /// `queue: keyword, ...`; an error names the first line that is not.
    pub fn parse(rules: &str) -> Result<Rules, String> {
        let mut parsed = Vec::new();
        for (n, line) in normalize(rules).lines().map(str::trim).enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((queue, keywords)) = line.split_once(':') else {
                return Err(format!("rules line {}: expected `queue: keyword, ...`", n + 1));
            };
            let queue = queue.trim();
            if queue.is_empty() {
                return Err(format!("rules line {}: empty queue name", n + 1));
            }
            let keywords = keywords.split(',').map(str::trim).filter(|k| !k.is_empty());
            parsed.push((queue.to_owned(), keywords.map(str::to_owned).collect()));
        }
        Ok(Rules(parsed))
    }

    /// The queue of the first rule with a keyword in `text`, and that keyword.
    ///
    /// A keyword matches a word that starts with it, or, if it has a space, the phrase
    /// anywhere. The text is normalized once; keywords are compared as slices.
    pub fn first_match(&self, text: &str) -> Option<(&str, &str)> {
        let text = normalize(text);
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
        for (queue, keywords) in &self.0 {
            for keyword in keywords {
                let hit = if keyword.contains(' ') {
                    text.contains(keyword.as_str())
                } else {
                    words.iter().any(|w| w.starts_with(keyword.as_str()))
                };
                if hit {
                    return Some((queue, keyword));
                }
            }
        }
        None
    }
}

/// The rules from config, parsed by the first call on this instance. Config is fixed for an
/// instance's life (a plugin version is loaded per config, and a swap starts fresh
/// instances), and the manifest lets an instance serve many calls, so later calls skip
/// reading and normalizing the rules (most of the router's work per message). Only config
/// is kept here, never anything from a customer.
fn rules() -> &'static Result<Rules, String> {
    static RULES: std::sync::OnceLock<Result<Rules, String>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| Rules::parse(&config::get("rules").unwrap_or_default()))
}

struct KeywordRouter;

impl Router for KeywordRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        let rules = rules().as_ref().map_err(Clone::clone)?;
        let text = context.text().unwrap_or_default();
        let mut decision = context.start();
        match rules.first_match(text) {
            Some((queue, keyword)) => {
                if decision.queue.as_deref() != Some(queue) {
                    decision.queue = Some(queue.to_owned());
                    decision.agent = None;
                }
                decision.tag(&format!("keyword:{keyword}"));
                decision.because(&format!("keyword `{keyword}`"));
            }
            // A conversation already placed (by an earlier keyword) stays where it is.
            None if decision.queue.is_some() => {
                decision.because("no keyword matched; kept the current queue")
            }
            None => {
                decision.queue = Some(config::get("default-queue").unwrap_or_else(|| "general".to_owned()));
                decision.because("no keyword matched");
            }
        }
        Ok(decision)
    }
}

seam_sdk::export_router!(KeywordRouter);

#[cfg(test)]
mod tests {
    use super::*;

    /// The queue of the first rule in `rules` with a keyword in `text`, and that keyword.
    fn first_match(rules: &str, text: &str) -> Result<Option<(String, String)>, String> {
        let rules = Rules::parse(rules)?;
        Ok(rules.first_match(text).map(|(q, k)| (q.to_owned(), k.to_owned())))
    }

    const RULES: &str = "support: проблем, не работает, problem\nbilling: счет, invoice\n";

    fn queue(text: &str) -> Option<String> {
        first_match(RULES, text).unwrap().map(|(q, _)| q)
    }

    #[test]
    fn russian_inflections_and_yo_match_the_stem() {
        for text in ["У меня ПРОБЛЕМА с заказом", "две проблемы", "Проблёмы!"]
        {
            assert_eq!(queue(text).as_deref(), Some("support"), "{text}");
        }
        assert_eq!(queue("Где мой счёт?").as_deref(), Some("billing"));
    }

    #[test]
    fn phrases_and_english() {
        assert_eq!(first_match(RULES, "приложение не работает").unwrap().unwrap().1, "не работает");
        assert_eq!(queue("Problems with my invoice").as_deref(), Some("support"), "first rule wins");
        assert_eq!(queue("hello there"), None);
        // A keyword must start a word: "problem" is not found inside "noproblem".
        assert_eq!(queue("noproblem"), None);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let rules = "# a comment: with colon\n\nsales: buy\n";
        assert_eq!(first_match(rules, "I want to buy").unwrap().unwrap().0, "sales");
    }

    #[test]
    fn bad_rules_name_the_line() {
        assert_eq!(
            first_match("ok: a\nbroken line", "x").unwrap_err(),
            "rules line 2: expected `queue: keyword, ...`"
        );
        assert_eq!(first_match(" : a", "x").unwrap_err(), "rules line 1: empty queue name");
    }
}
