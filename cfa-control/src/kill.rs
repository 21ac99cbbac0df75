//! The kill switch: stops every approval in a scope until it is lifted.
//!
//! A scope is written `*` (everything), `domain:NAME` (the signature's `domain`),
//! `target:NAME` (the layer written to, `bronze`/`silver`/`gold`, or a dataset the job
//! reads) or `agent:ID` (the caller: `constraints.custom.agent_id` of the signature).

use crate::error::ControlError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a kill switch applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Everything (`*`).
    All,
    /// One domain (`domain:NAME`).
    Domain(String),
    /// A target layer or a dataset (`target:NAME`).
    Target(String),
    /// One caller (`agent:ID`).
    Agent(String),
}

impl Scope {
    /// Parses `*`, `domain:NAME`, `target:NAME` or `agent:ID` (surrounding spaces are
    /// ignored; NAME is non-empty and has no whitespace).
    ///
    /// ```
    /// use cfa_control::kill::Scope;
    /// assert_eq!(Scope::parse("*")?, Scope::All);
    /// assert_eq!(Scope::parse("domain:fiscal")?, Scope::Domain("fiscal".into()));
    /// assert!(Scope::parse("fiscal").is_err());
    /// # Ok::<(), cfa_control::ControlError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, ControlError> {
        let t = text.trim();
        let bad = || ControlError::BadScope {
            scope: text.to_owned(),
        };
        if t == "*" {
            return Ok(Scope::All);
        }
        let (kind, name) = t.split_once(':').ok_or_else(bad)?;
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let name = name.to_owned();
        match kind {
            "domain" => Ok(Scope::Domain(name)),
            "target" => Ok(Scope::Target(name)),
            "agent" => Ok(Scope::Agent(name)),
            _ => Err(bad()),
        }
    }

    /// Whether this scope covers a decision on `subject`.
    pub fn covers(&self, subject: &Subject<'_>) -> bool {
        match self {
            Scope::All => true,
            Scope::Domain(d) => subject.domain == d,
            Scope::Target(t) => subject.targets.iter().any(|x| x == t),
            Scope::Agent(a) => subject.agent == Some(a.as_str()),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Domain(d) => write!(f, "domain:{d}"),
            Scope::Target(t) => write!(f, "target:{t}"),
            Scope::Agent(a) => write!(f, "agent:{a}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What a decision is about, as scopes see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The signature's domain.
    pub domain: &'a str,
    /// The target layer and every dataset name.
    pub targets: Vec<&'a str>,
    /// The caller's id, when known.
    pub agent: Option<&'a str>,
}

/// One engaged kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillSwitch {
    /// Where it applies.
    pub scope: Scope,
    /// Why it was engaged.
    pub reason: String,
    /// Who engaged it.
    pub by: String,
    /// When (RFC 3339, injected).
    pub engaged_at: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_parse_and_print_back() {
        for s in [
            "*",
            "domain:fiscal",
            "target:gold",
            "target:nfe",
            "agent:bot-7",
        ] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "fiscal", "domain:", "domain:a b", "team:x", ":x", "**"] {
            let e = Scope::parse(bad).unwrap_err();
            assert!(matches!(e, ControlError::BadScope { .. }), "{bad}");
        }
    }

    #[test]
    fn scopes_cover_their_subjects() {
        let s = Subject {
            domain: "fiscal",
            targets: vec!["gold", "nfe"],
            agent: Some("bot"),
        };
        assert!(Scope::All.covers(&s));
        assert!(Scope::Domain("fiscal".into()).covers(&s));
        assert!(!Scope::Domain("hr".into()).covers(&s));
        assert!(Scope::Target("nfe".into()).covers(&s));
        assert!(!Scope::Target("silver".into()).covers(&s));
        assert!(Scope::Agent("bot".into()).covers(&s));
        assert!(!Scope::Agent("other".into()).covers(&Subject::default()));
    }
}
