//! Keyword router: puts a conversation in the queue whose keywords appear in the
//! customer's message. Keyword lists are config (`rules`), one line per queue, in any
//! language; the defaults cover Russian and English for support, billing and sales.
//!
//! Matching lower-cases the text, folds `ё` to `е`, splits it into words and compares
//! each keyword as a word prefix, so one Russian stem covers its inflections.

use seam_sdk::prelude::*;

/// One queue and the keywords that send a message there.
#[derive(Debug, PartialEq)]
pub struct Rule {
    /// Queue id.
    pub queue: String,
    /// Lower-cased keyword stems or phrases.
    pub keywords: Vec<String>,
}

/// Lower-cases and folds `ё` so `Проблёма` and `проблема` compare equal.
pub fn normalize(text: &str) -> String {
    text.to_lowercase().replace('ё', "е")
}

/// Parses `queue: kw, kw` lines; blank lines and `#` comments are skipped.
pub fn parse_rules(spec: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for (n, line) in spec.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (queue, words) = line
            .split_once(':')
            .ok_or_else(|| format!("rules line {}: expected `queue: keyword, ...`", n + 1))?;
        let queue = queue.trim();
        if queue.is_empty() {
            return Err(format!("rules line {}: empty queue name", n + 1));
        }
        let keywords: Vec<String> =
            words.split(',').map(|w| normalize(w.trim())).filter(|w| !w.is_empty()).collect();
        rules.push(Rule { queue: queue.to_owned(), keywords });
    }
    Ok(rules)
}

/// The first rule with a keyword in `text`, and that keyword.
pub fn first_match<'a>(rules: &'a [Rule], text: &str) -> Option<(&'a Rule, &'a str)> {
    let text = normalize(text);
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    rules.iter().find_map(|rule| {
        rule.keywords
            .iter()
            .find(|kw| {
                if kw.contains(' ') {
                    text.contains(kw.as_str())
                } else {
                    words.iter().any(|w| w.starts_with(kw.as_str()))
                }
            })
            .map(|kw| (rule, kw.as_str()))
    })
}

struct KeywordRouter;

impl Router for KeywordRouter {
    fn route(context: RouteContext) -> Result<Decision, String> {
        let rules = parse_rules(&config::get("rules").unwrap_or_default())?;
        let fallback = config::get("default-queue").unwrap_or_else(|| "general".to_owned());
        let text = context.text().unwrap_or_default();
        Ok(match first_match(&rules, text) {
            Some((rule, keyword)) => {
                let mut d = Decision::to_queue(&rule.queue, &format!("keyword `{keyword}`"));
                d.tags.push(format!("keyword:{keyword}"));
                d
            }
            None => Decision::to_queue(&fallback, "no keyword matched"),
        })
    }
}

seam_sdk::export_router!(KeywordRouter);

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "support: проблем, не работает, problem\nbilling: счет, invoice\n";

    #[test]
    fn russian_inflections_and_yo_match_the_stem() {
        let rules = parse_rules(RULES).unwrap();
        for text in ["У меня ПРОБЛЕМА с заказом", "две проблемы", "Проблёмы!"]
        {
            assert_eq!(first_match(&rules, text).map(|(r, _)| r.queue.as_str()), Some("support"), "{text}");
        }
        assert_eq!(first_match(&rules, "Где мой счёт?").map(|(r, _)| r.queue.as_str()), Some("billing"));
    }

    #[test]
    fn phrases_and_english() {
        let rules = parse_rules(RULES).unwrap();
        assert_eq!(first_match(&rules, "приложение не работает").unwrap().1, "не работает");
        assert_eq!(first_match(&rules, "Problems with my invoice").unwrap().0.queue, "support");
        assert!(first_match(&rules, "hello there").is_none());
        // A keyword must start a word: "problem" is not found inside "noproblem".
        assert!(first_match(&rules, "noproblem").is_none());
    }

    #[test]
    fn bad_rules_name_the_line() {
        assert_eq!(
            parse_rules("ok: a\nbroken line").unwrap_err(),
            "rules line 2: expected `queue: keyword, ...`"
        );
    }
}
