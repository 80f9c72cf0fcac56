//! Item mapping: domain values go through their serde form into DynamoDB attribute maps and
//! back, so each item's attributes are the domain fields plus the keys from `keys.rs`.

use super::super::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// An attribute map.
pub type Item = HashMap<String, AttributeValue>;

/// A JSON value as an attribute value (numbers as N, arrays as L, objects as M).
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
    }
}

/// An attribute value as JSON.
pub fn from_attribute(value: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => {
            let number = n
                .parse::<i64>()
                .map(Number::from)
                .ok()
                .or_else(|| n.parse::<f64>().ok().and_then(Number::from_f64))
                .ok_or_else(|| StoreError::Corrupt(format!("not a number: {n}")))?;
            Value::Number(number)
        }
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attribute).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), from_attribute(v)?))).collect::<Result<Map<_, _>, StoreError>>()?,
        ),
        other => return Err(StoreError::Corrupt(format!("unsupported attribute type: {other:?}"))),
    })
}

/// A domain value as an item, plus its key attributes.
pub fn to_item<T: Serialize>(value: &T, keys: &[(&str, String)]) -> Result<Item, StoreError> {
    let json = serde_json::to_value(value).map_err(StoreError::Unconvertible)?;
    let Value::Object(fields) = json else { return Err(StoreError::Corrupt("items are objects".into())) };
    let mut item: Item = fields.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
    for (name, value) in keys {
        item.insert((*name).to_string(), AttributeValue::S(value.clone()));
    }
    Ok(item)
}

/// An item as a domain value (key and index attributes are ignored by serde).
pub fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let map: Map<String, Value> =
        item.iter().map(|(k, v)| Ok((k.clone(), from_attribute(v)?))).collect::<Result<_, StoreError>>()?;
    serde_json::from_value(Value::Object(map)).map_err(StoreError::Unconvertible)
}

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Reads a number attribute.
pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

/// Reads a string attribute.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// An item's size as DynamoDB bills it: each attribute's name and value in bytes (strings as
/// UTF-8, numbers about one byte per two digits plus one, maps and lists 3 bytes plus one per
/// element): a write costs a unit per started KB of it, a strongly consistent read a unit per
/// started 4 KB.
pub fn billed_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(items) => 3 + items.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_through_attributes() {
        let value = json!({ "a": "x", "n": 3, "f": 1.5, "b": true, "z": null, "l": ["p", "q"], "m": { "k": 1 } });
        let Value::Object(map) = &value else { unreachable!() };
        let item: Item = map.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
        assert!(matches!(item["l"], AttributeValue::L(_)), "notes must be a list for list_append");
        let back: Value = from_item(&item).unwrap();
        assert_eq!(back, value);
    }
}
