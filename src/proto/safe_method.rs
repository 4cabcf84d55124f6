//! Safe methods (RFC 9110 §9.2.1): "the GET, HEAD, OPTIONS, and TRACE methods are defined to
//! be safe". Only these travel in 0-RTT, where a request can be replayed (RFC 8470 §4).

pub fn is_safe(method: &http::Method) -> bool {
    use http::Method as M;
    [M::GET, M::HEAD, M::OPTIONS, M::TRACE].contains(method)
}
