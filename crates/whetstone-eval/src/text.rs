//! The string primitives of Python that the reference metrics are built on, so that tokens agree exactly.

/// Python's `str.isspace`: Unicode White_Space plus the four ASCII separators U+001C..U+001F, which Rust's
/// `char::is_whitespace` leaves out.
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.split()` with no argument.
pub fn py_split(text: &str) -> Vec<&str> {
    text.split(is_py_space).filter(|t| !t.is_empty()).collect()
}

/// Python's `str.rstrip()` with no argument.
pub fn py_rstrip(text: &str) -> &str {
    text.trim_end_matches(is_py_space)
}

/// Python's `str.lower()`: full Unicode lower-casing, final sigma included, as Rust's `to_lowercase` does.
pub fn py_lower(text: &str) -> String {
    text.to_lowercase()
}
