//! The patch content types of the API server: JSON merge patch (RFC 7386), strategic merge
//! patch (lists merged by their Kubernetes merge keys, `$patch` directives) and JSON patch
//! (RFC 6902). Server-side apply is not served (415).

use serde_json::{Map, Value};

use super::status::ApiError;

pub const MERGE: &str = "application/merge-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const JSON: &str = "application/json-patch+json";
pub const APPLY: &str = "application/apply-patch+yaml";

/// Applies a patch body of `content_type` to `doc`.
pub fn apply(doc: &mut Value, content_type: &str, body: &[u8]) -> Result<(), ApiError> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        MERGE | STRATEGIC => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            if ct == MERGE {
                json_patch::merge(doc, &patch);
            } else {
                strategic_merge(doc, &patch, "")?;
            }
            Ok(())
        }
        JSON => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(doc, &patch).map_err(|e| {
                ApiError::new(
                    422,
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })
        }
        APPLY => Err(ApiError::new(
            415,
            "the fake API server does not implement server-side apply (application/apply-patch+yaml)",
        )),
        _ => Err(ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 {JSON}, {MERGE}, {STRATEGIC}, {APPLY}"
            ),
        )),
    }
}

/// The merge key of a list field, as in the Kubernetes types' `patchMergeKey` tags.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases" => match field {
            "hostAliases" => "ip",
            _ => "name",
        },
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "finalizers" => return None,
        _ => return None,
    })
}

/// Strategic merge patch of `patch` into `doc`; `field` is the key `doc` is found under.
pub fn strategic_merge(doc: &mut Value, patch: &Value, field: &str) -> Result<(), ApiError> {
    let Some(pm) = patch.as_object() else {
        *doc = patch.clone();
        return Ok(());
    };
    if let Some(d) = pm.get("$patch").and_then(Value::as_str) {
        match d {
            "replace" => {
                let mut clean = pm.clone();
                clean.remove("$patch");
                *doc = Value::Object(clean);
                return Ok(());
            }
            "delete" => {
                *doc = Value::Object(Map::new());
                return Ok(());
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "Unknown patch type: {other} in map {field}"
                )));
            }
        }
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let Some(dm) = doc.as_object_mut() else {
        return Ok(());
    };
    for (k, pv) in pm {
        if k.starts_with("$setElementOrder/")
            || k == "$retainKeys"
            || k.starts_with("$deleteFromPrimitiveList/")
        {
            if let Some(list) = k.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(cur)), Some(del)) = (dm.get_mut(list), pv.as_array())
            {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if pv.is_null() {
            dm.remove(k);
            continue;
        }
        match (dm.get_mut(k), pv) {
            (Some(dv @ Value::Object(_)), Value::Object(_)) => strategic_merge(dv, pv, k)?,
            (Some(Value::Array(dl)), Value::Array(pl)) => match merge_key(k) {
                Some(key) => merge_list(dl, pl, key, k)?,
                None => *dm.get_mut(k).expect("present") = strip_directives(pv),
            },
            _ => {
                dm.insert(k.clone(), strip_directives(pv));
            }
        }
    }
    Ok(())
}

fn merge_list(
    doc: &mut Vec<Value>,
    patch: &[Value],
    key: &str,
    field: &str,
) -> Result<(), ApiError> {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *doc = patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return Ok(());
    }
    for item in patch {
        let Some(kv) = item.get(key) else {
            return Err(ApiError::bad_request(format!(
                "map: {item} does not contain declared merge key: {key} (list {field})"
            )));
        };
        let pos = doc.iter().position(|d| d.get(key) == Some(kv));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                doc.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut doc[i], item, field)?,
            (None, false) => doc.push(strip_directives(item)),
        }
    }
    Ok(())
}

/// A patch value as stored: without `$…` directives and null members.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fake_kube_strategic_merge_merges_containers_by_name() {
        let mut doc = json!({"spec": {"replicas": 1, "paused": false, "template": {"metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "side", "image": "side:1"}]}}}});
        let patch = json!({"metadata": {"annotations": {"k": "v"}},
            "spec": {"replicas": 3, "paused": true, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "side", "$patch": "delete"}]}}}});
        strategic_merge(&mut doc, &patch, "").unwrap();
        assert_eq!(doc["spec"]["replicas"], 3);
        assert_eq!(doc["spec"]["paused"], true);
        assert_eq!(doc["metadata"]["annotations"]["k"], "v");
        let cs = doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(doc["spec"]["template"]["metadata"]["labels"]["a"], "1");
    }

    #[test]
    fn fake_kube_patch_types() {
        let mut doc =
            json!({"metadata": {"annotations": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        apply(
            &mut doc,
            MERGE,
            br#"{"metadata":{"annotations":{"a":null}}}"#,
        )
        .unwrap();
        assert_eq!(doc["metadata"]["annotations"], json!({"b": "2"}));
        apply(
            &mut doc,
            JSON,
            br#"[{"op":"replace","path":"/spec/replicas","value":4}]"#,
        )
        .unwrap();
        assert_eq!(doc["spec"]["replicas"], 4);
        assert_eq!(apply(&mut doc, APPLY, b"{}").unwrap_err().code, 415);
        assert_eq!(apply(&mut doc, MERGE, b"not json").unwrap_err().code, 400);
        assert_eq!(
            apply(
                &mut doc,
                JSON,
                br#"[{"op":"test","path":"/spec/replicas","value":9}]"#
            )
            .unwrap_err()
            .code,
            422
        );
    }
}
