//! Shell words for the commands written into READMEs and launch scripts.

/// `s` as one POSIX shell word: bare when it holds only characters no shell treats specially,
/// otherwise in single quotes (a single quote inside written as `'\''`).
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
