//! Route table: `matchit` tries per method, built from the user's patterns (`/users/:id`, `/files/*`).

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::{H3Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    Buffered,
    Streaming,
}

/// A response served from Rust without calling JS (a static `Response` in the routes map).
#[derive(Debug, Clone)]
pub struct StaticResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// Upper-case method, or `*` for any.
    pub method: String,
    pub pattern: String,
    pub mode: BodyMode,
    /// `Some` for static routes; `None` routes are dispatched to JS handler `index`.
    pub static_response: Option<StaticResponse>,
    pub h3_datagram: bool,
    pub webtransport: bool,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<RouteSpec>,
    by_method: HashMap<String, matchit::Router<usize>>,
    any: matchit::Router<usize>,
}

#[derive(Debug, PartialEq)]
pub struct RouteMatch {
    pub index: usize,
    /// Flat `[name, value, name, value, ...]`, raw (still percent-encoded).
    pub params: Vec<String>,
}

const WILDCARD: &str = "*";

/// `/users/:id/files/*` → matchit's `/users/{id}/files/{*wildcard}` (plus the bare prefix, so
/// `/files/*` matches `/files/` too).
fn to_matchit(pattern: &str) -> Result<Vec<String>> {
    if !pattern.starts_with('/') {
        return Err(H3Error::Route(format!(
            "pattern {pattern:?} must start with \"/\""
        )));
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let segments: Vec<&str> = pattern[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut wildcard_prefix = None;
    for (i, seg) in segments.iter().enumerate() {
        out.push('/');
        if let Some(name) = seg.strip_prefix(':') {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(H3Error::Route(format!(
                    "pattern {pattern:?}: parameter name {name:?} must be letters, digits or _"
                )));
            }
            out.push('{');
            out.push_str(name);
            out.push('}');
        } else if *seg == "*" {
            if i != last {
                return Err(H3Error::Route(format!(
                    "pattern {pattern:?}: `*` is only allowed as the last segment"
                )));
            }
            wildcard_prefix = Some(out.clone());
            out.push_str("{*wildcard}");
        } else {
            if seg.contains('*') || seg.contains(':') {
                return Err(H3Error::Route(format!(
                    "pattern {pattern:?}: `:` and `*` must start a segment"
                )));
            }
            out.push_str(&seg.replace('{', "{{").replace('}', "}}"));
        }
    }
    let mut all = vec![out];
    all.extend(wildcard_prefix);
    Ok(all)
}

impl RouteTable {
    pub fn new(routes: Vec<RouteSpec>) -> Result<Self> {
        let mut table = RouteTable::default();
        for (index, route) in routes.iter().enumerate() {
            let method = route.method.to_ascii_uppercase();
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'*') {
                return Err(H3Error::Route(format!("invalid method {:?}", route.method)));
            }
            let trie = if method == WILDCARD {
                &mut table.any
            } else {
                table.by_method.entry(method).or_default()
            };
            for p in to_matchit(&route.pattern)? {
                trie.insert(p, index).map_err(|e| {
                    H3Error::Route(format!("{} {}: {e}", route.method, route.pattern))
                })?;
            }
        }
        table.routes = routes;
        Ok(table)
    }

    pub fn get(&self, index: usize) -> Option<&RouteSpec> {
        self.routes.get(index)
    }

    /// Exact method first, then `GET` routes for `HEAD`, then `*` routes.
    pub fn lookup(&self, method: &str, path: &str) -> Option<RouteMatch> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let exact = self.by_method.get(method);
        let head_fallback = if method == "HEAD" {
            self.by_method.get("GET")
        } else {
            None
        };
        for trie in [exact, head_fallback, Some(&self.any)]
            .into_iter()
            .flatten()
        {
            if let Ok(m) = trie.at(path) {
                let mut params = Vec::with_capacity(m.params.len() * 2);
                for (k, v) in m.params.iter() {
                    params.push(if k == "wildcard" {
                        "*".into()
                    } else {
                        k.to_string()
                    });
                    params.push(v.to_string());
                }
                return Some(RouteMatch {
                    index: *m.value,
                    params,
                });
            }
        }
        None
    }

    pub fn any_datagram(&self) -> bool {
        self.routes.iter().any(|r| r.h3_datagram || r.webtransport)
    }

    pub fn any_webtransport(&self) -> bool {
        self.routes.iter().any(|r| r.webtransport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: &str, pattern: &str) -> RouteSpec {
        RouteSpec {
            method: method.into(),
            pattern: pattern.into(),
            mode: BodyMode::Buffered,
            static_response: None,
            h3_datagram: false,
            webtransport: false,
        }
    }

    #[test]
    fn params_wildcards_and_methods() {
        let t = RouteTable::new(vec![
            spec("GET", "/users/:id"),
            spec("POST", "/users/:id"),
            spec("*", "/files/*"),
            spec("GET", "/users/me"),
            spec("GET", "/"),
        ])
        .unwrap();
        assert_eq!(
            t.lookup("GET", "/users/42?x=1"),
            Some(RouteMatch {
                index: 0,
                params: vec!["id".into(), "42".into()]
            })
        );
        assert_eq!(t.lookup("POST", "/users/7").unwrap().index, 1);
        assert_eq!(t.lookup("GET", "/users/me").unwrap().index, 3);
        assert_eq!(t.lookup("HEAD", "/users/1").unwrap().index, 0);
        assert_eq!(
            t.lookup("DELETE", "/files/a/b.txt").unwrap().params,
            vec!["*".to_string(), "a/b.txt".to_string()]
        );
        assert_eq!(t.lookup("PUT", "/files/").unwrap().index, 2);
        assert_eq!(t.lookup("GET", "/").unwrap().index, 4);
        assert_eq!(t.lookup("DELETE", "/users/1"), None);
        assert_eq!(t.lookup("GET", "/nope"), None);
    }

    #[test]
    fn bad_patterns_are_route_errors() {
        for p in ["users", "/a/*/b", "/a/:", "/a/x:y", "/a/:b-c"] {
            assert!(
                matches!(
                    RouteTable::new(vec![spec("GET", p)]),
                    Err(H3Error::Route(_))
                ),
                "{p}"
            );
        }
        assert!(matches!(
            RouteTable::new(vec![spec("GET", "/a/:x"), spec("GET", "/a/:y")]),
            Err(H3Error::Route(_))
        ));
        assert!(matches!(
            RouteTable::new(vec![spec("G T", "/")]),
            Err(H3Error::Route(_))
        ));
    }

    #[test]
    fn braces_are_literal() {
        let t = RouteTable::new(vec![spec("GET", "/{x}")]).unwrap();
        assert_eq!(t.lookup("GET", "/{x}").unwrap().index, 0);
    }
}
