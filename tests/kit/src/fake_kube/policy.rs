//! The access policy: answers SelfSubjectAccessReviews and makes real requests 403.

use serde::{Deserialize, Serialize};

/// Who may do what. The first matching rule decides; without one, `default_allow` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default = "yes")]
    pub default_allow: bool,
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

fn yes() -> bool {
    true
}

impl Default for Policy {
    fn default() -> Self {
        Self::allow_all()
    }
}

/// One rule. Every `None` field matches anything; `subresource: Some("")` matches only
/// requests to the main resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRule {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub verb: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub subresource: Option<String>,
    pub allow: bool,
    /// The SSAR `status.reason` (and the tail of the 403 message).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// A rule denied it explicitly (SSAR `status.denied`); a default deny leaves it false,
    /// as RBAC does.
    pub denied: bool,
    pub reason: String,
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub namespace: Option<&'a str>,
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
}

impl Policy {
    pub fn allow_all() -> Self {
        Self {
            default_allow: true,
            rules: Vec::new(),
        }
    }

    pub fn deny_all() -> Self {
        Self {
            default_allow: false,
            rules: Vec::new(),
        }
    }

    /// get, list and watch allowed; everything else denied.
    pub fn read_only() -> Self {
        Self {
            default_allow: false,
            rules: ["get", "list", "watch"]
                .into_iter()
                .map(|v| PolicyRule {
                    verb: Some(v.into()),
                    allow: true,
                    ..PolicyRule::default()
                })
                .collect(),
        }
    }

    pub fn with_rule(mut self, rule: PolicyRule) -> Self {
        self.rules.push(rule);
        self
    }

    pub fn decide(&self, a: &Attributes<'_>) -> Decision {
        for r in &self.rules {
            if r.matches(a) {
                return Decision {
                    allowed: r.allow,
                    denied: !r.allow,
                    reason: r.reason.clone().unwrap_or_default(),
                };
            }
        }
        Decision {
            allowed: self.default_allow,
            denied: false,
            reason: String::new(),
        }
    }
}

impl PolicyRule {
    /// Denies `verb` on `group`/`resource` (any namespace, any subresource).
    pub fn deny(verb: &str, group: &str, resource: &str) -> Self {
        Self {
            verb: Some(verb.into()),
            group: Some(group.into()),
            resource: Some(resource.into()),
            allow: false,
            ..Self::default()
        }
    }

    /// Allows `verb` on `group`/`resource`.
    pub fn allow(verb: &str, group: &str, resource: &str) -> Self {
        Self {
            allow: true,
            ..Self::deny(verb, group, resource)
        }
    }

    pub fn in_namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    pub fn on_subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.into());
        self
    }

    pub fn because(mut self, reason: &str) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn matches(&self, a: &Attributes<'_>) -> bool {
        let m = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w == "*" || w == have)
        };
        m(&self.namespace, a.namespace.unwrap_or(""))
            && m(&self.verb, a.verb)
            && m(&self.group, a.group)
            && m(&self.resource, a.resource)
            && m(&self.subresource, a.subresource.unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_kube_policy_first_rule_wins() {
        let p = Policy::allow_all().with_rule(
            PolicyRule::deny("patch", "apps", "deployments")
                .in_namespace("prod")
                .because("no"),
        );
        let a = |ns, verb, sub| Attributes {
            namespace: Some(ns),
            verb,
            group: "apps",
            resource: "deployments",
            subresource: sub,
        };
        let d = p.decide(&a("prod", "patch", None));
        assert!(!d.allowed && d.denied && d.reason == "no");
        assert!(p.decide(&a("dev", "patch", None)).allowed);
        assert!(p.decide(&a("prod", "get", None)).allowed);
        assert!(!p.decide(&a("prod", "patch", Some("scale"))).allowed);
        let ro = Policy::read_only();
        assert!(ro.decide(&a("prod", "watch", None)).allowed);
        let d = ro.decide(&a("prod", "update", Some("scale")));
        assert!(!d.allowed && !d.denied);
    }
}
