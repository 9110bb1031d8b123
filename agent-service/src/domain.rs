//! Domain types: the authenticated [`Principal`] and newtypes with a private field and one
//! way in (`parse`, or `generate` for a new id), so a function that takes one can rely on
//! it being valid.

use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// The authenticated caller: an API key of a tenant, with its roles.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub tenant: TenantId,
    pub roles: Roles,
}

impl Principal {
    /// `Ok` when the key holds any of `roles` (admin holds them all); otherwise a 403 that
    /// says what `doing` needs, e.g. "reading jobs needs the invoke, viewer or operator
    /// role; this API key (k) has: …".
    pub fn require_any(&self, roles: &[Role], doing: &str) -> Result<(), Error> {
        if roles.iter().any(|r| self.roles.allows(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let needed = match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        Err(Error::forbidden(format!(
            "{doing} needs the {needed} role; this API key ({}) has: {}",
            self.key_name,
            self.roles.to_csv()
        )))
    }

    pub fn require(&self, role: Role) -> Result<(), Error> {
        if self.roles.allows(role) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this API key ({}) lacks the '{role}' role; its roles are: {}",
                self.key_name,
                self.roles.to_csv()
            )))
        }
    }
}

/// A tenant identifier: 1–64 characters of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "tenant {s:?} is not valid: use 1-64 characters of a-z, 0-9, '_' or '-'"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a prefixed id: `<prefix>` and 1-64 characters of `[A-Za-z0-9_-]`. New ids are
/// the prefix and a time-ordered UUID (v7) in hex. Serialized as the plain string, so JSON
/// carrying one is unchanged.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new, unique id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            pub fn parse(s: &str) -> Result<Self, String> {
                let ok = s.strip_prefix($prefix).is_some_and(|rest| {
                    (1..=64).contains(&rest.len())
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if ok {
                    Ok(Self(s.to_string()))
                } else {
                    Err(format!(
                        "{} {s:?} is not valid: expected {:?} and 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
                        $what, $prefix
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// An approval request's id (`apr_…`); also the `Idempotency-Key` of its HTTP write.
    ApprovalId,
    "apr_",
    "approval id"
);
prefixed_id!(
    /// A job's id (`job_…`).
    JobId,
    "job_",
    "job id"
);
prefixed_id!(
    /// A run's trace id (`tr_…`).
    TraceId,
    "tr_",
    "trace id"
);
prefixed_id!(
    /// A notification receiver's id (`rcv_…`).
    ReceiverId,
    "rcv_",
    "receiver id"
);
prefixed_id!(
    /// A notification event's id (`evt_…`): the `webhook-id` of its deliveries.
    EventId,
    "evt_",
    "event id"
);

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Invoke,
    Viewer,
    Approver,
    Operator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Invoke,
        Role::Viewer,
        Role::Approver,
        Role::Operator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Invoke => "invoke",
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("role {s:?} is not one of invoke, viewer, approver, operator, admin")
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of roles, stored as a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Roles {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let r = Role::parse(part)?;
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
        if roles.is_empty() {
            return Err(
                "at least one role is required (invoke, viewer, approver, operator, admin)".into(),
            );
        }
        roles.sort();
        Ok(Self(roles))
    }

    /// `admin` holds every role; otherwise the role must be listed.
    pub fn allows(&self, role: Role) -> bool {
        self.0.contains(&role) || self.0.contains(&Role::Admin)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn to_csv(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The version string of the guardrail policy in force, e.g. `guardrails-v3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PolicyVersion(String);

impl PolicyVersion {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            Ok(Self(s.to_string()))
        } else {
            Err(format!(
                "policy_version {s:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The release track this process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Track {
    Stable,
    Canary,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Stable => "stable",
            Track::Canary => "canary",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert!(TenantId::parse("demo").is_ok());
        assert!(TenantId::parse("acme-eu_1").is_ok());
        for bad in ["", "Demo", "-x", "a b", &"a".repeat(65), "x/y"] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_parse_and_admin_allows_all() {
        let r = Roles::parse("viewer, approver,viewer").unwrap();
        assert_eq!(r.to_csv(), "viewer,approver");
        assert!(r.allows(Role::Approver));
        assert!(!r.allows(Role::Invoke));
        assert!(Roles::parse("admin").unwrap().allows(Role::Operator));
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("root").unwrap_err().contains("root"));
    }

    #[test]
    fn prefixed_ids() {
        let new = ApprovalId::generate();
        assert_eq!(ApprovalId::parse(new.as_str()), Ok(new.clone()));
        assert_eq!(new.as_str().len(), "apr_".len() + 32);
        assert!(ApprovalId::parse("apr_does_not_exist").is_ok());
        for bad in [
            "",
            "apr_",
            "job_1",
            "apr_a b",
            "apr_x/../y",
            &format!("apr_{}", "a".repeat(65)),
        ] {
            assert!(ApprovalId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(JobId::parse("job_0190f0a0b0c07d00a000000000000000").is_ok());
        assert!(TraceId::parse("tr_abc").is_ok() && TraceId::parse("tr-abc").is_err());
        assert_eq!(
            serde_json::to_string(&TraceId::parse("tr_1").expect("valid")).expect("json"),
            "\"tr_1\"",
            "on the wire an id is its string"
        );
    }

    #[test]
    fn policy_versions() {
        assert!(PolicyVersion::parse("guardrails-v3").is_ok());
        assert!(PolicyVersion::parse("bad version").is_err());
    }
}
