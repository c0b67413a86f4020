//! Personal data in text: e-mail addresses, phone numbers, credit-card numbers (Luhn-checked), US social
//! security numbers, IP addresses and street addresses.
//!
//! Patterns are ASCII-only regular expressions (so the regex engine stays on its fast automaton); a set of all
//! of them is run first and only the kinds it reports are then located. Overlapping matches keep the more
//! specific kind (a card number is not also reported as a phone number).

use std::fmt;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    CreditCard,
    Ssn,
    Ip,
    Phone,
    Address,
}

impl PiiKind {
    /// In priority order: earlier kinds win overlaps.
    pub const ALL: [PiiKind; 6] =
        [PiiKind::Email, PiiKind::CreditCard, PiiKind::Ssn, PiiKind::Ip, PiiKind::Phone, PiiKind::Address];

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Ssn => "ssn",
            PiiKind::Ip => "ip",
            PiiKind::Phone => "phone",
            PiiKind::Address => "address",
        }
    }

    /// What a redacted finding is replaced with.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::CreditCard => "[CREDIT_CARD]",
            PiiKind::Ssn => "[SSN]",
            PiiKind::Ip => "[IP]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Address => "[ADDRESS]",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STREET: &str = "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|\
                      Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq";

static PATTERNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    vec![
        // e-mail
        r"(?-u)\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b".to_string(),
        // credit card: 13-19 digits with optional single spaces or dashes between them; Luhn-checked after
        r"(?-u)\b[0-9](?:[ -]?[0-9]){12,18}\b".to_string(),
        // US SSN, dashed
        r"(?-u)\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b".to_string(),
        // IPv4 (octets checked after) and full-form IPv6
        r"(?-u)\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b|\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b".to_string(),
        // phone: North American with separators, or international with a leading +
        r"(?-u)(?:\+1[ .-]?)?(?:\([0-9]{3}\) ?|\b[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}\b|\+[0-9]{1,3}(?:[ .-][0-9]{1,4}){2,5}\b"
            .to_string(),
        // street address: number, one to four capitalised words, street type
        format!(r"(?-u)\b[0-9]{{1,6}} (?:[A-Z][A-Za-z]+\.? ){{1,4}}(?:{STREET})\b\.?"),
    ]
});

static SET: LazyLock<RegexSet> = LazyLock::new(|| RegexSet::new(PATTERNS.iter()).expect("PII patterns compile"));
static REGEXES: LazyLock<Vec<Regex>> =
    LazyLock::new(|| PATTERNS.iter().map(|p| Regex::new(p).expect("PII pattern compiles")).collect());

/// One piece of personal data in a text, as a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiMatch {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = (*d - b'0') as u32;
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn valid(kind: PiiKind, s: &str) -> bool {
    match kind {
        PiiKind::CreditCard => {
            let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).collect();
            (13..=19).contains(&digits.len()) && luhn(&digits) && digits.iter().any(|&d| d != digits[0])
        }
        PiiKind::Ssn => {
            let (area, rest) = s.split_at(3);
            let group = &rest[1..3];
            let serial = &rest[4..];
            area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
        }
        PiiKind::Ip if s.contains('.') => s.split('.').all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255)),
        PiiKind::Phone => {
            let n = s.bytes().filter(u8::is_ascii_digit).count();
            (10..=15).contains(&n)
        }
        _ => true,
    }
}

/// Every finding in `text`, in order, without overlaps.
pub fn scan(text: &str) -> Vec<PiiMatch> {
    let hits = SET.matches(text);
    if !hits.matched_any() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for i in hits.iter() {
        let kind = PiiKind::ALL[i];
        for m in REGEXES[i].find_iter(text) {
            if valid(kind, m.as_str()) {
                found.push(PiiMatch { kind, start: m.start(), end: m.end() });
            }
        }
    }
    found.sort_by_key(|m| (m.start, m.kind, std::cmp::Reverse(m.end)));
    let mut out: Vec<PiiMatch> = Vec::with_capacity(found.len());
    for m in found {
        match out.last_mut() {
            Some(last) if m.start < last.end => {
                // Overlap: the higher-priority kind keeps the span.
                if m.kind < last.kind {
                    *last = m;
                }
            }
            _ => out.push(m),
        }
    }
    out
}

/// `text` with the given matches (sorted, non-overlapping) replaced by their placeholders.
pub fn redact(text: &str, matches: &[PiiMatch]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in matches {
        out.push_str(&text[at..m.start]);
        out.push_str(m.kind.placeholder());
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        scan(text).into_iter().map(|m| (m.kind, &text[m.start..m.end])).collect()
    }

    #[test]
    fn finds_each_kind() {
        let t = "Mail jane.doe@example.com or call (555) 123-4567 / +44 20 7946 0958. Card 4111 1111 1111 1111, \
                 SSN 123-45-6789, server 192.168.1.20, office at 1600 Pennsylvania Avenue.";
        assert_eq!(
            kinds(t),
            vec![
                (PiiKind::Email, "jane.doe@example.com"),
                (PiiKind::Phone, "(555) 123-4567"),
                (PiiKind::Phone, "+44 20 7946 0958"),
                (PiiKind::CreditCard, "4111 1111 1111 1111"),
                (PiiKind::Ssn, "123-45-6789"),
                (PiiKind::Ip, "192.168.1.20"),
                (PiiKind::Address, "1600 Pennsylvania Avenue."),
            ]
        );
    }

    #[test]
    fn rejects_lookalikes() {
        // Fails Luhn, impossible SSN area, octet over 255, a plain number.
        assert!(kinds("ref 4111 1111 1111 1112, id 666-12-3456, v 300.1.2.3, total 1234567").is_empty());
    }

    #[test]
    fn redaction_uses_typed_placeholders() {
        let t = "write to a@b.io now";
        assert_eq!(redact(t, &scan(t)), "write to [EMAIL] now");
    }
}
