//! WebTransport application protocol negotiation on the wire (draft-ietf-webtrans-http3-15
//! §3.4 / -16 §3.3): `WT-Available-Protocols` is a Structured Field List of Strings, `WT-Protocol`
//! one String (RFC 9651 §3.1, §3.3.3); parameters after an item carry no meaning and are
//! skipped. The same rules as lib/wt-protocols.js, which builds the offer and reads the answer
//! for JS; the client checks the answer here too, to close a failed negotiation with the
//! draft's code.

/// The client's offer and the server's answer (lowercase, as HTTP/3 carries field names).
pub const OFFER_HEADER: &str = "wt-available-protocols";
pub const ANSWER_HEADER: &str = "wt-protocol";

/// The HTTP/3 error code of a failed negotiation (WT_ALPN_ERROR, draft-15 §9.5).
pub const ALPN_ERROR: u64 = 0x0817_b3dd;

/// A String (RFC 9651 §4.2.5) at the start of `text`, its parameters skipped: the value and what
/// follows it; `None` when it is not one.
fn parse_string(text: &[u8]) -> Option<(String, &[u8])> {
    let (&b'"', mut rest) = text.split_first()? else {
        return None;
    };
    let mut out = String::new();
    loop {
        let (&c, after) = rest.split_first()?;
        rest = after;
        match c {
            b'\\' => {
                let (&n, after) = rest.split_first()?;
                if n != b'"' && n != b'\\' {
                    return None;
                }
                out.push(char::from(n));
                rest = after;
            }
            b'"' => break,
            0x20..=0x7e => out.push(char::from(c)),
            _ => return None,
        }
    }
    // Parameters (`;key[=value]`), skipped without judging them.
    while let Some((&b';', after)) = rest.split_first() {
        let end = after.iter().position(|&c| c == b';' || c == b',');
        rest = &after[end.unwrap_or(after.len())..];
    }
    Some((out, rest))
}

fn skip_space(mut s: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', after)) = s.split_first() {
        s = after;
    }
    s
}

/// The protocols a `WT-Available-Protocols` value offers, in order; empty when it is not a List
/// of Strings (a malformed field is ignored).
pub fn parse_offer(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = skip_space(value.as_bytes());
    while !rest.is_empty() {
        let Some((item, after)) = parse_string(rest) else {
            return Vec::new();
        };
        out.push(item);
        rest = skip_space(after);
        match rest.split_first() {
            None => break,
            Some((b',', after)) if !skip_space(after).is_empty() => rest = skip_space(after),
            // Anything else, or a trailing comma.
            Some(_) => return Vec::new(),
        }
    }
    out
}

/// Whether a 2xx answer fails the negotiation: we offered protocols and the server named one in
/// `WT-Protocol` that is malformed or not among them. draft-16 §3.3: "A client that requires
/// application protocol negotiation MUST close the WebTransport session with a WT_ALPN_ERROR
/// error code if the server does not include a WT-Protocol header field, or if it is malformed
/// and therefore ignored, in a 2xx response". A W3C client does not require it (no answer
/// leaves `protocol` empty), but an answer it cannot use fails the session.
pub fn answer_fails(offer: Option<&str>, answer: Option<&str>) -> bool {
    let offered = offer.map(parse_offer).unwrap_or_default();
    let Some(answer) = answer.filter(|_| !offered.is_empty()) else {
        return false;
    };
    match parse_offer(answer).as_slice() {
        [one] => !offered.contains(one),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_parse_as_lists_of_strings() {
        assert_eq!(parse_offer(r#""a", "b c";q=1 ,"d""#), ["a", "b c", "d"]);
        assert_eq!(parse_offer(r#""say \"hi\" \\ now""#), [r#"say "hi" \ now"#]);
        for bad in [r#""a","#, r#""a" "b""#, "a", r#""a\x""#, "\"a", "\"é\"", ""] {
            assert!(parse_offer(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn an_answer_fails_when_malformed_or_not_offered() {
        let offer = Some(r#""moq-00", "moq-01""#);
        assert!(!answer_fails(offer, Some(r#""moq-01""#)));
        assert!(!answer_fails(offer, Some(r#""moq-00";v=2"#)));
        assert!(
            !answer_fails(offer, None),
            "no answer: no protocol, not a failure"
        );
        assert!(answer_fails(offer, Some(r#""moq-02""#)));
        assert!(answer_fails(offer, Some("moq-00")));
        assert!(answer_fails(offer, Some(r#""moq-00", "moq-01""#)));
        // Nothing offered: any answer is ignored.
        assert!(!answer_fails(None, Some(r#""moq-02""#)));
    }
}
