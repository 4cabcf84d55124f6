//! RFC 9114 rules for request messages that h3 0.0.8 does not enforce.
//!
//! h3 decodes field sections itself but keeps one value per pseudo-header and lower-cases names
//! on the way into `http` types, so a duplicated `:method`, an upper-case name or a
//! `connection: keep-alive` reach the application looking well formed. [`RequestRules`] watches
//! the raw bytes of a request stream on their way into h3 (our QUIC adapter feeds it), decodes
//! each HEADERS frame with [`qpack_fields`](super::qpack_fields) and applies the checks below.
//! A violation is a stream error H3_MESSAGE_ERROR, raised before h3 sees the offending frame:
//! RFC 9114 §4.1.2: "Malformed requests or responses that are detected MUST be treated as a
//! stream error of type H3_MESSAGE_ERROR."
//!
//! Whatever cannot be judged (a dynamic-table reference, an invalid encoding, a frame that h3
//! will refuse on its own, a HEADERS frame above the guard's limit) is passed through untouched
//! for h3 to answer with its own errors: these rules only ever reject what they fully decoded.
//! Memory: one HEADERS payload at a time, never more than the limit given to [`RequestRules::new`].

use super::frame_header::{FrameHeader, FrameHeaderReader, FRAME_DATA, FRAME_HEADERS};
use super::qpack_fields::{self, Field};

/// H3_MESSAGE_ERROR (RFC 9114 §8.1).
pub const H3_MESSAGE_ERROR: u64 = 0x10e;

/// A malformed message, with the rule it broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// What the rest of the stream is checked against, learnt from the request header section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadInfo {
    /// The declared Content-Length, when the request has content delimited by it.
    pub content_length: Option<u64>,
}

/// RFC 9114 §4.2 (connection-specific fields) by name; `te` is handled apart.
const CONNECTION_SPECIFIC: [&[u8]; 5] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
];

/// RFC 9110 §5.6.2 tchar, lower-case letters only (upper case is checked apart).
fn is_name_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9')
        || b"!#$%&'*+-.^_`|~".contains(&b)
        || b.is_ascii_uppercase()
}

/// RFC 9110 §5.5: field-value = *field-content, built of VCHAR, obs-text, SP and HTAB.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Checks that apply to every field line of any section (header or trailer).
fn check_field_line(f: &Field<'_>) -> Result<(), Malformed> {
    // RFC 9114 §4.1.2: malformed includes "the inclusion of invalid characters in field names
    // or values".
    if f.value.iter().any(|b| !is_value_byte(*b)) {
        return Err(Malformed("invalid character in a field value"));
    }
    let name: &[u8] = &f.name;
    let bare = name.strip_prefix(b":").unwrap_or(name);
    if bare.is_empty() {
        return Err(Malformed("empty field name"));
    }
    // RFC 9114 §4.2: "A request or response containing uppercase characters in field names
    // MUST be treated as malformed."
    if bare.iter().any(u8::is_ascii_uppercase) {
        return Err(Malformed("upper-case character in a field name"));
    }
    if !bare.iter().all(|b| is_name_char(*b)) {
        return Err(Malformed("invalid character in a field name"));
    }
    // RFC 9114 §4.2: "An endpoint MUST NOT generate an HTTP/3 field section containing
    // connection-specific fields; any message containing connection-specific fields MUST be
    // treated as malformed."
    if CONNECTION_SPECIFIC.contains(&name) {
        return Err(Malformed("connection-specific field"));
    }
    Ok(())
}

/// Parse a Content-Length value: digits, or a list of identical values (RFC 9110 §8.6 lets a
/// recipient accept `42, 42`). Anything else makes the message malformed.
fn content_length(value: &[u8], seen: Option<u64>) -> Result<u64, Malformed> {
    let bad = Malformed("invalid or conflicting content-length");
    let mut result = seen;
    for part in value.split(|b| *b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        let n = std::str::from_utf8(part)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(bad)?;
        if result.is_some_and(|r| r != n) {
            return Err(bad);
        }
        result = Some(n);
    }
    result.ok_or(bad)
}

/// The request header section (RFC 9114 §4.2, §4.3, §4.3.1, §4.4; RFC 8441 §4 / RFC 9220 §3).
pub fn check_request_head(fields: &[Field<'_>]) -> Result<HeadInfo, Malformed> {
    let mut method: Option<&[u8]> = None;
    let mut scheme: Option<&[u8]> = None;
    let mut authority: Option<&[u8]> = None;
    let mut path: Option<&[u8]> = None;
    let mut protocol: Option<&[u8]> = None;
    let mut regular_seen = false;
    let mut length = None;
    for f in fields {
        check_field_line(f)?;
        let name: &[u8] = &f.name;
        let value: &[u8] = &f.value;
        if name.starts_with(b":") {
            // RFC 9114 §4.3: "All pseudo-header fields MUST appear in the header section before
            // regular header fields."
            if regular_seen {
                return Err(Malformed("pseudo-header field after a regular field"));
            }
            let slot = match name {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":authority" => &mut authority,
                b":path" => &mut path,
                b":protocol" => &mut protocol,
                // RFC 9114 §4.3: "Pseudo-header fields defined for requests MUST NOT appear in
                // responses; pseudo-header fields defined for responses MUST NOT appear in
                // requests." and "Endpoints MUST NOT generate pseudo-header fields other than
                // those defined in this document."
                _ => return Err(Malformed("unknown or response pseudo-header field")),
            };
            // RFC 9114 §4.3.1: "All HTTP/3 requests MUST include exactly one value for the
            // :method, :scheme, and :path pseudo-header fields, unless the request is a CONNECT
            // request"; the other pseudo-headers are single-valued too.
            if slot.replace(value).is_some() {
                return Err(Malformed("duplicated pseudo-header field"));
            }
            continue;
        }
        regular_seen = true;
        // RFC 9114 §4.2: "The only exception to this is the TE header field, which MAY be
        // present in an HTTP/3 request header; when it is, it MUST NOT contain any value other
        // than "trailers"."
        if name == b"te" && !value.trim_ascii().eq_ignore_ascii_case(b"trailers") {
            return Err(Malformed("te other than trailers"));
        }
        if name == b"content-length" {
            length = Some(content_length(value, length)?);
        }
    }
    let Some(method) = method else {
        return Err(Malformed("missing :method"));
    };
    let connect = method == b"CONNECT";
    if let Some(protocol) = protocol {
        // RFC 8441 §4 (for HTTP/3, RFC 9220 §3): "A new pseudo-header field :protocol MAY be
        // included on request HEADERS indicating the desired protocol to be spoken on the
        // tunnel created by CONNECT." It means nothing on any other method.
        if !connect {
            return Err(Malformed(":protocol on a method other than CONNECT"));
        }
        if protocol.is_empty() {
            return Err(Malformed("empty :protocol"));
        }
    }
    if connect && protocol.is_none() {
        // RFC 9114 §4.4: "The :scheme and :path pseudo-header fields are omitted" and "The
        // :authority pseudo-header field contains the host and port to connect to"; "A CONNECT
        // request that does not conform to these restrictions is malformed."
        if scheme.is_some() || path.is_some() {
            return Err(Malformed("CONNECT with :scheme or :path"));
        }
        if authority.is_none_or(<[u8]>::is_empty) {
            return Err(Malformed("CONNECT without :authority"));
        }
        // The body of a CONNECT request is a tunnel, not content.
        return Ok(HeadInfo::default());
    }
    // RFC 9114 §4.3.1 (quoted above): exactly one :method, :scheme and :path; and RFC 8441 §4:
    // "On requests that contain the :protocol pseudo-header field, the :scheme and :path
    // pseudo-header fields of the target URI (see Section 5) MUST also be included."
    let Some(scheme) = scheme else {
        return Err(Malformed("missing :scheme"));
    };
    let Some(path) = path else {
        return Err(Malformed("missing :path"));
    };
    // RFC 9114 §4.3.1: "This pseudo-header field MUST NOT be empty for "http" or "https" URIs;
    // "http" or "https" URIs that do not contain a path component MUST include a value of /
    // (ASCII 0x2f)."
    if path.is_empty() && (scheme == b"http" || scheme == b"https") {
        return Err(Malformed("empty :path"));
    }
    // Extended CONNECT carries a tunnel too, whatever content-length says.
    Ok(HeadInfo {
        content_length: if connect { None } else { length },
    })
}

/// A trailer section (RFC 9114 §4.1, §4.2, §4.3).
pub fn check_trailers(fields: &[Field<'_>]) -> Result<(), Malformed> {
    for f in fields {
        check_field_line(f)?;
        // RFC 9114 §4.3: "Pseudo-header fields MUST NOT appear in trailer sections."
        if f.name.starts_with(b":") {
            return Err(Malformed("pseudo-header field in trailers"));
        }
        // RFC 9114 §4.2: TE "MAY be present in an HTTP/3 request header" — only there.
        if &*f.name == b"te" {
            return Err(Malformed("te in trailers"));
        }
    }
    Ok(())
}

/// Judge one whole request stream: `stream` is every byte the peer sent on it, then FIN.
/// Any HEADERS frame the input can hold is gathered (the limit is the input's length). The
/// entry point for fuzzing: never panics, memory bounded by the input.
pub fn check_request_stream(stream: &[u8]) -> Result<(), Malformed> {
    let mut rules = RequestRules::new(stream.len() as u64);
    rules.observe(stream)?;
    rules.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first frame type of the stream: WebTransport streams start with 0x41.
    FirstFrame,
    FrameHeader,
    /// Gathering a HEADERS payload of this many more bytes.
    Collect(u64),
    /// Inside a frame payload not looked at (DATA, unknown types).
    Skip(u64),
    /// Nothing more to judge: everything goes to h3 untouched.
    Passthrough,
    Rejected(Malformed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the request header section.
    Head,
    /// After it: DATA, then perhaps trailers.
    Body,
}

/// Watches the bytes of one request stream, in order, as they go to h3.
#[derive(Debug, Clone)]
pub struct RequestRules {
    state: State,
    phase: Phase,
    /// The largest HEADERS payload gathered; larger ones are left to the frame-length guard.
    limit: u64,
    header: FrameHeaderReader,
    section: Vec<u8>,
    content_length: Option<u64>,
    /// Sum of the DATA payload lengths so far.
    data: u64,
}

impl RequestRules {
    /// For a request stream whose HEADERS frames are at most `limit` bytes.
    pub fn new(limit: u64) -> Self {
        RequestRules {
            state: State::FirstFrame,
            phase: Phase::Head,
            limit,
            header: FrameHeaderReader::default(),
            section: Vec::new(),
            content_length: None,
            data: 0,
        }
    }

    /// True once a violation was found (the stream must be reset with H3_MESSAGE_ERROR).
    pub fn rejected(&self) -> bool {
        matches!(self.state, State::Rejected(_))
    }

    fn reject(&mut self, m: Malformed) -> Result<(), Malformed> {
        self.state = State::Rejected(m);
        self.section = Vec::new();
        Err(m)
    }

    /// Feed the next bytes of the stream. An error is final: every later call repeats it.
    pub fn observe(&mut self, mut data: &[u8]) -> Result<(), Malformed> {
        while !data.is_empty() {
            match self.state {
                State::Passthrough => return Ok(()),
                State::Rejected(m) => return Err(m),
                State::Skip(n) => {
                    let take = n.min(data.len() as u64);
                    data = data.get(take as usize..).unwrap_or_default();
                    self.state = if take == n {
                        State::FrameHeader
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::Collect(n) => {
                    let take = n.min(data.len() as u64);
                    let (head, rest) = data.split_at(take as usize);
                    self.section.extend_from_slice(head);
                    data = rest;
                    if take == n {
                        self.section_complete()?;
                    } else {
                        self.state = State::Collect(n - take);
                    }
                }
                State::FirstFrame | State::FrameHeader => {
                    let first = self.state == State::FirstFrame;
                    match self.header.read(&mut data, first) {
                        None => return Ok(()),
                        Some(FrameHeader::WebTransport) => self.state = State::Passthrough,
                        Some(FrameHeader::Frame { ty, len }) => self.frame(ty, len)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// A frame header was read: decide what to do with its payload.
    fn frame(&mut self, ty: u64, len: u64) -> Result<(), Malformed> {
        self.state = match (ty, self.phase) {
            // Over the guard's limit (the guard resets the stream), or a section h3 will refuse
            // as empty: not ours to judge.
            (FRAME_HEADERS, _) if len > self.limit || len == 0 => State::Passthrough,
            (FRAME_HEADERS, _) => {
                self.section = Vec::with_capacity(len as usize);
                State::Collect(len)
            }
            (FRAME_DATA, Phase::Body) => {
                self.data = self.data.saturating_add(len);
                // RFC 9114 §4.1.2: "A request or response that is defined as having content when
                // it contains a Content-Length header field (Section 8.6 of [HTTP]) is malformed
                // if the value of the Content-Length header field does not equal the sum of the
                // DATA frame lengths received." Known as soon as the sum goes past it.
                if self.content_length.is_some_and(|cl| self.data > cl) {
                    return self.reject(Malformed("DATA exceeds content-length"));
                }
                if len == 0 {
                    State::FrameHeader
                } else {
                    State::Skip(len)
                }
            }
            // DATA before HEADERS: h3 closes the connection with H3_FRAME_UNEXPECTED.
            (FRAME_DATA, Phase::Head) => State::Passthrough,
            // Reserved and unknown types are skipped (RFC 9114 §9); forbidden ones are h3's.
            (_, _) if len == 0 => State::FrameHeader,
            (_, _) => State::Skip(len),
        };
        Ok(())
    }

    fn section_complete(&mut self) -> Result<(), Malformed> {
        let section = std::mem::take(&mut self.section);
        let Ok(fields) = qpack_fields::decode(&section) else {
            // Dynamic table or invalid encoding: h3 answers it (QPACK_DECOMPRESSION_FAILED...).
            self.state = State::Passthrough;
            return Ok(());
        };
        match self.phase {
            Phase::Head => {
                let info = match check_request_head(&fields) {
                    Ok(i) => i,
                    Err(m) => return self.reject(m),
                };
                self.content_length = info.content_length;
                self.phase = Phase::Body;
                self.state = State::FrameHeader;
            }
            Phase::Body => {
                if let Err(m) = check_trailers(&fields) {
                    return self.reject(m);
                }
                // Trailers end the content: the DATA sum is final.
                self.check_length()?;
                // Anything after trailers is a frame sequence error, h3's to report.
                self.state = State::Passthrough;
            }
        }
        Ok(())
    }

    fn check_length(&mut self) -> Result<(), Malformed> {
        if self.content_length.is_some_and(|cl| cl != self.data) {
            return self.reject(Malformed("DATA does not add up to content-length"));
        }
        Ok(())
    }

    /// The peer finished the stream (FIN). Checks the content length if the body ended cleanly.
    pub fn finish(&mut self) -> Result<(), Malformed> {
        match self.state {
            State::Rejected(m) => Err(m),
            // A truncated frame is h3's H3_FRAME_ERROR; a stream without HEADERS is its
            // H3_REQUEST_INCOMPLETE.
            State::FrameHeader if self.header.is_between_headers() && self.phase == Phase::Body => {
                self.check_length()?;
                self.state = State::Passthrough;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn f<'a>(name: &'a str, value: &'a str) -> Field<'a> {
        Field {
            name: Cow::Borrowed(name.as_bytes()),
            value: Cow::Borrowed(value.as_bytes()),
        }
    }

    fn base() -> Vec<Field<'static>> {
        vec![
            f(":method", "GET"),
            f(":scheme", "https"),
            f(":authority", "localhost"),
            f(":path", "/"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<Field<'static>> {
        let mut v = base();
        v.extend(extra.iter().map(|(n, v)| f(n, v)));
        v
    }

    #[test]
    fn well_formed_heads_pass() {
        assert_eq!(check_request_head(&base()), Ok(HeadInfo::default()));
        let h = with(&[
            ("te", "trailers"),
            ("content-length", "5"),
            ("user-agent", "x/1"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        assert_eq!(
            check_request_head(&h),
            Ok(HeadInfo {
                content_length: Some(5)
            })
        );
        assert!(check_request_head(&with(&[("content-length", "7, 7")])).is_ok());
        // Extended CONNECT (WebTransport).
        let wt = vec![
            f(":method", "CONNECT"),
            f(":protocol", "webtransport"),
            f(":scheme", "https"),
            f(":authority", "localhost"),
            f(":path", "/wt"),
            f("content-length", "3"),
        ];
        assert_eq!(check_request_head(&wt), Ok(HeadInfo::default()));
        // Plain CONNECT.
        let c = vec![f(":method", "CONNECT"), f(":authority", "example.com:443")];
        assert!(check_request_head(&c).is_ok());
        // OPTIONS *.
        let mut o = base();
        o[0] = f(":method", "OPTIONS");
        o[3] = f(":path", "*");
        assert!(check_request_head(&o).is_ok());
    }

    #[test]
    fn malformed_heads() {
        let cases: Vec<Vec<Field<'static>>> = vec![
            with(&[]).into_iter().chain([f(":method", "GET")]).collect(),
            {
                let mut v = base();
                v.insert(1, f(":method", "POST"));
                v
            },
            {
                let mut v = base();
                v.push(f(":path", "/again"));
                v
            },
            with(&[("connection", "keep-alive")]),
            with(&[("keep-alive", "timeout=5")]),
            with(&[("proxy-connection", "x")]),
            with(&[("transfer-encoding", "chunked")]),
            with(&[("upgrade", "websocket")]),
            with(&[("te", "gzip")]),
            with(&[("te", "trailers, deflate")]),
            with(&[("User-Agent", "x")]),
            with(&[("x-a", "1"), (":extra", "1")]),
            {
                let mut v = vec![f("x-a", "1")];
                v.extend(base());
                v
            },
            with(&[(":status", "200")]),
            {
                let mut v = base();
                v.insert(0, f(":foo", "bar"));
                v
            },
            base()
                .into_iter()
                .filter(|x| &*x.name != b":path")
                .collect(),
            base()
                .into_iter()
                .filter(|x| &*x.name != b":method")
                .collect(),
            base()
                .into_iter()
                .filter(|x| &*x.name != b":scheme")
                .collect(),
            {
                let mut v = base();
                v[3] = f(":path", "");
                v
            },
            {
                let mut v = base();
                v.push(f(":protocol", "webtransport"));
                v
            },
            vec![
                f(":method", "CONNECT"),
                f(":scheme", "https"),
                f(":authority", "a:1"),
                f(":path", "/"),
            ],
            vec![f(":method", "CONNECT")],
            vec![
                f(":method", "CONNECT"),
                f(":protocol", "webtransport"),
                f(":authority", "a:1"),
            ],
            with(&[("content-length", "abc")]),
            with(&[("content-length", "5"), ("content-length", "6")]),
            with(&[("content-length", "")]),
            with(&[("x-a", "a\r\nb")]),
            with(&[("x-a", "a\0b")]),
            with(&[("x a", "1")]),
            with(&[("", "1")]),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(check_request_head(c).is_err(), "case {i} accepted: {c:?}");
        }
    }

    #[test]
    fn trailers() {
        assert!(check_trailers(&[f("x-checksum", "1")]).is_ok());
        assert!(check_trailers(&[f(":path", "/")]).is_err());
        assert!(check_trailers(&[f("X-Checksum", "1")]).is_err());
        assert!(check_trailers(&[f("connection", "close")]).is_err());
    }

    // Wire-level tests: literal-name QPACK sections in HEADERS/DATA frames.

    fn section(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut s = vec![0, 0];
        for (n, v) in fields {
            crate::proto::qpack_fields::encode_literal(&mut s, n.as_bytes(), v.as_bytes());
        }
        s
    }

    fn frame(ty: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 16384);
        let mut v = vec![ty];
        if payload.len() < 64 {
            v.push(payload.len() as u8);
        } else {
            v.extend_from_slice(&(0x4000 | payload.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    fn request(extra: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = vec![(":method", "POST"), (":scheme", "https"), (":path", "/")];
        fields.extend_from_slice(extra);
        frame(0x01, &section(&fields))
    }

    /// Feed `bytes` whole and byte by byte; returns the outcome (including FIN when `fin`).
    fn run(bytes: &[u8], fin: bool) -> Result<(), Malformed> {
        let whole = {
            let mut r = RequestRules::new(1000);
            r.observe(bytes)
                .and_then(|_| if fin { r.finish() } else { Ok(()) })
        };
        let mut r = RequestRules::new(1000);
        let mut split = Ok(());
        for b in bytes {
            split = r.observe(std::slice::from_ref(b));
            if split.is_err() {
                break;
            }
        }
        if split.is_ok() && fin {
            split = r.finish();
        }
        assert_eq!(whole, split, "chunking changed the verdict");
        whole
    }

    #[test]
    fn duplicated_method_on_the_wire() {
        let bytes = frame(
            0x01,
            &section(&[
                (":method", "GET"),
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/"),
            ]),
        );
        assert_eq!(
            run(&bytes, false),
            Err(Malformed("duplicated pseudo-header field"))
        );
    }

    #[test]
    fn content_length_against_data() {
        let mut ok = request(&[("content-length", "5")]);
        ok.extend(frame(0x00, b"ab"));
        ok.extend(frame(0x21, b"grease"));
        ok.extend(frame(0x00, b"cde"));
        assert_eq!(run(&ok, true), Ok(()));

        let mut short = request(&[("content-length", "5")]);
        short.extend(frame(0x00, b"abcd"));
        assert_eq!(run(&short, false), Ok(()));
        assert!(run(&short, true).is_err());

        let mut long = request(&[("content-length", "5")]);
        long.extend(frame(0x00, b"abcdef"));
        assert!(run(&long, false).is_err());

        // Trailers end the content.
        let mut t = request(&[("content-length", "5"), ("te", "trailers")]);
        t.extend(frame(0x00, b"abc"));
        t.extend(frame(0x01, &section(&[("x-sum", "1")])));
        assert!(run(&t, false).is_err());

        let mut t = request(&[("content-length", "3")]);
        t.extend(frame(0x00, b"abc"));
        t.extend(frame(0x01, &section(&[("x-sum", "1")])));
        assert_eq!(run(&t, true), Ok(()));

        // No content-length: any amount.
        let mut n = request(&[]);
        n.extend(frame(0x00, b"abcdef"));
        assert_eq!(run(&n, true), Ok(()));
    }

    #[test]
    fn malformed_trailers_on_the_wire() {
        let mut t = request(&[]);
        t.extend(frame(0x00, b"abc"));
        t.extend(frame(0x01, &section(&[(":path", "/x")])));
        assert_eq!(
            run(&t, false),
            Err(Malformed("pseudo-header field in trailers"))
        );
    }

    #[test]
    fn passthrough_cases() {
        // Dynamic-table reference: not judged.
        let mut d = frame(0x01, &[0x01, 0x00, 0x80]);
        d.extend(frame(0x00, b"x"));
        assert_eq!(run(&d, true), Ok(()));
        // DATA first: h3's connection error, not ours.
        assert_eq!(run(&frame(0x00, b"abc"), true), Ok(()));
        // Truncated HEADERS at FIN.
        assert_eq!(run(&[0x01, 0x20, 0x00], true), Ok(()));
        // WebTransport stream type.
        assert_eq!(run(&[0x40, 0x41, 0x00, 0xff, 0xff], true), Ok(()));
        // Oversized claim: left to the frame guard, nothing buffered.
        let mut r = RequestRules::new(100);
        assert_eq!(r.observe(&[0x01, 0x80, 0x10, 0x00, 0x00, 1, 2, 3]), Ok(()));
        assert!(r.section.capacity() == 0);
        // A rejection is sticky.
        let mut r = RequestRules::new(1000);
        let bad = request(&[("upgrade", "h2c")]);
        assert!(r.observe(&bad).is_err());
        assert!(r.rejected());
        assert!(r.observe(b"more").is_err());
        assert!(r.finish().is_err());
    }

    #[test]
    fn whole_stream_entry_point() {
        let mut ok = request(&[("content-length", "2")]);
        ok.extend(frame(0x00, b"ab"));
        assert_eq!(check_request_stream(&ok), Ok(()));
        let mut short = request(&[("content-length", "2")]);
        short.extend(frame(0x00, b"a"));
        assert!(check_request_stream(&short).is_err());
        // A truncated frame at FIN is h3's to report.
        ok.truncate(ok.len() - 1);
        assert_eq!(check_request_stream(&ok), Ok(()));
        assert!(check_request_stream(&request(&[("Host", "x")])).is_err());
        assert_eq!(check_request_stream(&[]), Ok(()));
        assert_eq!(check_request_stream(&[0xff; 40]), Ok(()));
    }

    #[test]
    fn random_streams_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut good = request(&[("content-length", "3"), ("te", "trailers")]);
        good.extend(frame(0x00, b"abc"));
        good.extend(frame(0x01, &section(&[("x-sum", "1")])));
        for _ in 0..50_000 {
            let mut s = good.clone();
            for _ in 0..=(next() % 4) {
                let i = (next() % s.len() as u64) as usize;
                s[i] = next() as u8;
            }
            let mut r = RequestRules::new(256);
            let mut rest = &s[..];
            while !rest.is_empty() {
                let n = 1 + (next() % 9) as usize;
                let (a, b) = rest.split_at(n.min(rest.len()));
                let _ = r.observe(a);
                rest = b;
            }
            let _ = r.finish();
            assert!(r.section.capacity() <= 256);
        }
    }
}
