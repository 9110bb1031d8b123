//! Parse-don't-validate types the rest of the core takes: profile ids and kinds, service
//! endpoints, and the `Secret` that holds API keys and tokens.

use std::fmt;

use crate::error::{Error, Result};

/// A profile's stable id: 1–64 of `a-z 0-9 _ -`. It is the keyring user name, so it is
/// never derived from anything secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileId(String);

impl ProfileId {
    pub fn parse(raw: &str) -> Result<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(Error::invalid(format!(
                "profile id {raw:?} is not valid: use 1-64 characters from a-z, 0-9, '_' and '-'"
            )))
        }
    }

    /// A fresh random id (`p-` and 12 hex digits).
    pub fn generate() -> Self {
        Self(format!(
            "p-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a profile connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// An agent-service endpoint (URL + API key in the keyring).
    Agent,
    /// A Kubernetes context (from KUBECONFIG) and a namespace.
    Kubernetes,
}

impl ProfileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Kubernetes => "kubernetes",
        }
    }

    pub fn parse(raw: &str) -> Result<Self> {
        match raw {
            "agent" => Ok(Self::Agent),
            "kubernetes" => Ok(Self::Kubernetes),
            other => Err(Error::invalid(format!(
                "profile kind {other:?} is not valid: use agent or kubernetes"
            ))),
        }
    }
}

/// The base URL of an HTTP service: `http` or `https`, with a host, no query or fragment.
/// Stored without a trailing slash so paths can be appended.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(url::Url);

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<Self> {
        let url = url::Url::parse(raw.trim())
            .map_err(|e| Error::invalid(format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid(format!(
                "{raw:?} is not an http:// or https:// URL"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid(format!("{raw:?} has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::invalid(format!(
                "{raw:?} must not have a query or fragment"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::invalid(format!(
                "{raw:?} must not carry credentials: API keys belong in the keyring"
            )));
        }
        Ok(Self(url))
    }

    /// `base + path`; `path` starts with `/`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.as_str())
    }

    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.as_str())
    }
}

/// An API key or token. Its Debug and Display print `<redacted>`; it implements neither
/// `Serialize` nor `Clone`-into-string, so it reaches the wire only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A key as pasted by a user: surrounding whitespace is trimmed; it must be 1–4096
    /// printable ASCII characters without spaces (it goes into an HTTP header).
    pub fn parse(raw: &str) -> Result<Self> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Error::invalid("the API key is empty"));
        }
        if s.len() > 4096 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "the API key must be at most 4096 printable ASCII characters without spaces",
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids() {
        for ok in ["local", "prod-eu_1", "a", &"x".repeat(64)] {
            assert!(ProfileId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Prod", "a b", "é", "../x", &"x".repeat(65)] {
            let err = ProfileId::parse(bad).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid", "{bad}");
        }
        let g = ProfileId::generate();
        assert!(ProfileId::parse(g.as_str()).is_ok());
    }

    #[test]
    fn base_urls() {
        let cases: &[(&str, Option<&str>)] = &[
            ("http://127.0.0.1:8080", Some("http://127.0.0.1:8080")),
            ("http://127.0.0.1:8080/", Some("http://127.0.0.1:8080")),
            (
                " https://agent.example.com/api/ ",
                Some("https://agent.example.com/api"),
            ),
            ("ftp://x", None),
            ("localhost:8080", None),
            ("http://x/?a=1", None),
            ("http://user:pw@x/", None),
            ("not a url", None),
        ];
        for (raw, want) in cases {
            match (BaseUrl::parse(raw), want) {
                (Ok(u), Some(w)) => assert_eq!(u.as_str(), *w),
                (Err(e), None) => assert_eq!(e.code().as_str(), "invalid"),
                (got, want) => panic!("{raw}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(
            BaseUrl::parse("http://h:1/").unwrap().join("/v1/info"),
            "http://h:1/v1/info"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::parse("  fd_live_abc123  ").unwrap();
        assert_eq!(s.expose(), "fd_live_abc123");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert!(Secret::parse("   ").is_err());
        assert!(Secret::parse("has space").is_err());
        assert!(Secret::parse("line\nbreak").is_err());
    }
}
