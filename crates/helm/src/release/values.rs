//! Values as a release takes them, in JSON form for callers that compose them (helm-controller's
//! `valuesFrom`): YAML documents read as Helm reads a values file, Helm's `--set` parser at a
//! path, Helm's deep merge, and the digest of the YAML Helm would write for them.

use crate::{Error, values, yaml};
use ferroflux_gotemplate::Value as TValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn to_template(m: &Map<String, Value>) -> Result<BTreeMap<String, TValue>, Error> {
    match yaml::parse_json(&super::model::go_json_value(&Value::Object(m.clone()))) {
        Ok(TValue::Map(m)) => Ok(m.borrow().clone()),
        Ok(_) => Ok(BTreeMap::new()),
        Err(e) => Err(Error::Values(e)),
    }
}

fn from_template(m: BTreeMap<String, TValue>) -> Result<Map<String, Value>, Error> {
    let text = yaml::to_json(&TValue::map(m), false, None).map_err(Error::Values)?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Ok(Map::new()),
        Err(e) => Err(Error::Values(e.to_string())),
    }
}

/// A values document (YAML or JSON) as Helm's `ReadValues` reads it; empty text is `{}`.
pub fn values_from_yaml(text: &str) -> Result<Map<String, Value>, Error> {
    let m = yaml::load_values(text).map_err(Error::Values)?;
    from_template(m)
}

/// Sets `value` at `path` with Helm's `--set` parser (`path=value`), or verbatim with the
/// `--set-literal` parser when `literal`.
pub fn set_path(
    target: &mut Map<String, Value>,
    path: &str,
    value: &str,
    literal: bool,
) -> Result<(), Error> {
    let mut m = to_template(target)?;
    let arg = format!("{path}={value}");
    if literal {
        values::parse_set_literal(&mut m, &arg)?;
    } else {
        values::parse_set(&mut m, &arg, false)?;
    }
    *target = from_template(m)?;
    Ok(())
}

/// Deep merge as Helm's `MergeMaps`: maps merge key by key, anything else in `over` wins.
pub fn merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The values as Helm's `Values.YAML()` writes them (sorted keys, `{}` when empty).
pub fn values_yaml(m: &Map<String, Value>) -> Result<String, Error> {
    let t = to_template(m)?;
    yaml::to_yaml(&TValue::map(t)).map_err(Error::Values)
}
