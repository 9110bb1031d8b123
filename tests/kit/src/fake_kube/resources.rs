//! The resource types the fake serves and how request paths map to them.

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub subresources: &'static [&'static str],
    pub short_names: &'static [&'static str],
    /// Only served when the Argo Rollouts CRD is "installed".
    pub optional: bool,
}

const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

pub const NAMESPACES: ResType = ResType {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    singular: "namespace",
    namespaced: false,
    verbs: &[
        "create", "delete", "get", "list", "patch", "update", "watch",
    ],
    subresources: &[],
    short_names: &["ns"],
    optional: false,
};
pub const PODS: ResType = ResType {
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    singular: "pod",
    namespaced: true,
    verbs: RW,
    subresources: &["status", "proxy"],
    short_names: &["po"],
    optional: false,
};
pub const SERVICES: ResType = ResType {
    group: "",
    version: "v1",
    plural: "services",
    kind: "Service",
    singular: "service",
    namespaced: true,
    verbs: RW,
    subresources: &["status", "proxy"],
    short_names: &["svc"],
    optional: false,
};
pub const EVENTS: ResType = ResType {
    group: "",
    version: "v1",
    plural: "events",
    kind: "Event",
    singular: "event",
    namespaced: true,
    verbs: RW,
    subresources: &[],
    short_names: &["ev"],
    optional: false,
};
pub const DEPLOYMENTS: ResType = ResType {
    group: "apps",
    version: "v1",
    plural: "deployments",
    kind: "Deployment",
    singular: "deployment",
    namespaced: true,
    verbs: RW,
    subresources: &["status", "scale"],
    short_names: &["deploy"],
    optional: false,
};
pub const REPLICASETS: ResType = ResType {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    kind: "ReplicaSet",
    singular: "replicaset",
    namespaced: true,
    verbs: RW,
    subresources: &["status", "scale"],
    short_names: &["rs"],
    optional: false,
};
pub const EVENTS_V1: ResType = ResType {
    group: "events.k8s.io",
    version: "v1",
    plural: "events",
    kind: "Event",
    singular: "event",
    namespaced: true,
    verbs: RW,
    subresources: &[],
    short_names: &["ev"],
    optional: false,
};
pub const SSAR: ResType = ResType {
    group: "authorization.k8s.io",
    version: "v1",
    plural: "selfsubjectaccessreviews",
    kind: "SelfSubjectAccessReview",
    singular: "selfsubjectaccessreview",
    namespaced: false,
    verbs: &["create"],
    subresources: &[],
    short_names: &[],
    optional: false,
};
pub const ROLLOUTS: ResType = ResType {
    group: "argoproj.io",
    version: "v1alpha1",
    plural: "rollouts",
    kind: "Rollout",
    singular: "rollout",
    namespaced: true,
    verbs: RW,
    subresources: &["status", "scale"],
    short_names: &["ro"],
    optional: true,
};

pub const ALL: &[ResType] = &[
    NAMESPACES,
    PODS,
    SERVICES,
    EVENTS,
    DEPLOYMENTS,
    REPLICASETS,
    EVENTS_V1,
    SSAR,
    ROLLOUTS,
];

impl ResType {
    /// `deployments.apps`, or `pods` for the core group (as in error messages).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key of the type.
    pub fn id(&self) -> &'static str {
        // Distinct for every served type: group + plural.
        match (self.group, self.plural) {
            ("", "namespaces") => "namespaces",
            ("", "pods") => "pods",
            ("", "services") => "services",
            ("", "events") => "events",
            ("apps", "deployments") => "apps/deployments",
            ("apps", "replicasets") => "apps/replicasets",
            ("events.k8s.io", "events") => "events.k8s.io/events",
            ("authorization.k8s.io", _) => "authorization.k8s.io/selfsubjectaccessreviews",
            ("argoproj.io", "rollouts") => "argoproj.io/rollouts",
            _ => "unknown",
        }
    }

    /// Objects that have a `status` written only through the status subresource.
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    /// The APIResource entry of discovery.
    pub fn api_resource(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs,
            "shortNames": self.short_names,
        })];
        for sub in self.subresources {
            let (kind, verbs, group, version): (&str, &[&str], Option<&str>, Option<&str>) =
                match *sub {
                    "scale" => (
                        "Scale",
                        &["get", "patch", "update"],
                        Some("autoscaling"),
                        Some("v1"),
                    ),
                    "proxy" => (
                        if self.plural == "pods" {
                            "PodProxyOptions"
                        } else {
                            "ServiceProxyOptions"
                        },
                        &["create", "delete", "get", "patch", "update"],
                        None,
                        None,
                    ),
                    _ => (self.kind, &["get", "patch", "update"], None, None),
                };
            let mut r = json!({
                "name": format!("{}/{sub}", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if let (Some(g), Some(v)) = (group, version) {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            out.push(r);
        }
        out
    }
}

/// Finds a served type by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str, rollouts: bool) -> Option<&'static ResType> {
    ALL.iter().find(|t| {
        t.group == group && t.version == version && t.plural == plural && (!t.optional || rollouts)
    })
}

/// Finds a served type by `apiVersion` and `kind` (for `apply`).
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResType> {
    ALL.iter()
        .find(|t| t.api_version() == api_version && t.kind == kind)
}

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Version,
    Health,
    CoreVersions,
    Groups,
    GroupVersion { group: String, version: String },
    Group { group: String },
    Resource(ResPath),
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResPath {
    pub ty: &'static ResType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// For `proxy`: the rest of the path after `/proxy` (starting with `/`, may be empty).
    pub rest: Option<String>,
}

/// Maps a request path to what it addresses.
pub fn parse(path: &str, rollouts: bool) -> Target {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = if segs.last() == Some(&"") && segs.len() > 1 {
        segs[..segs.len() - 1].to_vec()
    } else {
        segs
    };
    match segs.as_slice() {
        ["version"] => return Target::Version,
        ["healthz"] | ["livez"] | ["readyz"] => return Target::Health,
        ["api"] => return Target::CoreVersions,
        ["apis"] => return Target::Groups,
        ["api", "v1"] => {
            return Target::GroupVersion {
                group: String::new(),
                version: "v1".into(),
            };
        }
        ["apis", g] => {
            return Target::Group {
                group: (*g).to_string(),
            };
        }
        ["apis", g, v] => {
            return Target::GroupVersion {
                group: (*g).to_string(),
                version: (*v).to_string(),
            };
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Target::Unknown,
    };
    // namespaces/{ns}/{plural}/… is namespaced; namespaces[/{name}[/sub]] is the Namespace itself.
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..] if !(group.is_empty() && is_ns_sub(plural)) => {
            (Some((*ns).to_string()), prepend(plural, more))
        }
        _ => (None, rest.to_vec()),
    };
    let Some((plural, rest)) = rest.split_first() else {
        return Target::Unknown;
    };
    let Some(ty) = find(group, version, plural, rollouts) else {
        return Target::Unknown;
    };
    if ty.namespaced != namespace.is_some() && !(ty.namespaced && rest.is_empty()) {
        return Target::Unknown;
    }
    let name = rest.first().map(|s| (*s).to_string());
    let sub = rest.get(1).map(|s| (*s).to_string());
    let proxy_rest = if sub.as_deref() == Some("proxy") {
        Some(rest[2..].iter().fold(String::new(), |acc, s| acc + "/" + s))
    } else {
        if rest.len() > 2 {
            return Target::Unknown;
        }
        None
    };
    if let Some(s) = &sub
        && !ty.subresources.contains(&s.as_str())
    {
        return Target::Unknown;
    }
    if name.as_deref() == Some("") {
        return Target::Unknown;
    }
    Target::Resource(ResPath {
        ty,
        namespace,
        name,
        sub,
        rest: proxy_rest,
    })
}

fn is_ns_sub(s: &str) -> bool {
    matches!(s, "status" | "finalize")
}

fn prepend<'a>(first: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![first];
    v.extend_from_slice(more);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_kube_paths_map_to_resources() {
        let Target::Resource(p) =
            parse("/apis/apps/v1/namespaces/prod/deployments/web/scale", false)
        else {
            panic!("not a resource")
        };
        assert_eq!(p.ty.kind, "Deployment");
        assert_eq!(p.namespace.as_deref(), Some("prod"));
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.sub.as_deref(), Some("scale"));

        let Target::Resource(p) = parse("/api/v1/namespaces/prod", false) else {
            panic!("not a resource")
        };
        assert_eq!(p.ty.kind, "Namespace");
        assert_eq!(p.name.as_deref(), Some("prod"));

        let Target::Resource(p) = parse(
            "/api/v1/namespaces/p/pods/web-1:8080/proxy/v1/health",
            false,
        ) else {
            panic!("not a resource")
        };
        assert_eq!(p.name.as_deref(), Some("web-1:8080"));
        assert_eq!(p.rest.as_deref(), Some("/v1/health"));

        let Target::Resource(p) = parse("/apis/apps/v1/deployments", false) else {
            panic!("not a resource")
        };
        assert_eq!(p.namespace, None);
        assert_eq!(p.name, None);

        assert_eq!(
            parse("/apis/argoproj.io/v1alpha1/namespaces/p/rollouts", false),
            Target::Unknown
        );
        assert!(matches!(
            parse("/apis/argoproj.io/v1alpha1/namespaces/p/rollouts", true),
            Target::Resource(_)
        ));
        assert_eq!(
            parse("/apis/apps/v1/namespaces/p/deployments/web/bogus", false),
            Target::Unknown
        );
        assert_eq!(
            parse("/apis/apps/v1/namespaces/p/widgets", false),
            Target::Unknown
        );
    }
}
