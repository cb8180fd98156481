//! Text normalisation shared by the storage files.

/// The form of a username or nickname that user search compares: NFKC-normalized (so the
/// full-width `ＡＢＣ１２３` of a CJK input method meets `abc123`, a decomposed `é` meets the
/// composed one, and `ﬁ` meets `fi`), then Unicode lower case one character at a time (so
/// `ÄNNE` and `änne` meet), with the final sigma `ς` folded into `σ` (so `ΟΔΟΣ` and `οδος`
/// meet). Stored beside each name (`users.username_key`, `users.nickname_key`) on every
/// write, so a search compares plain strings.
pub fn search_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}
