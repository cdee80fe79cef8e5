//! A JSON value that keeps what a round trip through `serde_json::Value` would change: object
//! keys stay in document order and numbers keep their exact text (`1e3`, `4.50`, 2⁶⁴+1).
//!
//! An organisation document is sent back whole on PUT and written back whole to its file, so
//! every field tykwatch does not edit must come out as it went in. Enabling serde_json's
//! `preserve_order` crate-wide would do the ordering too, but it changes every other `Value` in
//! the program (e.g. how the console prints `meta_data`), so the order is kept here instead.
//!
//! Parsing goes through `RawValue`, so [`Json`] (de)serializes only with serde_json; use
//! [`Json::to_value`] to hand a document to anything else.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value with ordered objects and exact numbers. Equality is JSON equality: object key
/// order does not matter, numbers compare by value.
#[derive(Debug, Clone)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text as it was read (always valid JSON).
    Number(Box<RawValue>),
    String(String),
    Array(Vec<Json>),
    Object(Object),
}

/// A JSON object in document order. A key read twice keeps its first position and last value
/// (serde_json keeps the last value too).
#[derive(Debug, Clone, Default)]
pub struct Object(Vec<(String, Json)>);

impl Object {
    pub fn new() -> Object {
        Object(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Replaces the value in place (the key keeps its position) or appends the key.
    pub fn insert(&mut self, key: impl Into<String>, value: Json) {
        let key = key.into();
        match self.get_mut(&key) {
            Some(slot) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`, inserted at the end with `make()` when absent.
    pub fn entry_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> Json) -> &mut Json {
        let i = match self.0.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.0.push((key.to_owned(), make()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Json)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut Json)> {
        self.0.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keeps the entries `keep` is true of, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Json) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Number(a), Json::Number(b)) => {
                a.get() == b.get() || number_value(a).is_some_and(|x| Some(x) == number_value(b))
            }
            (Json::String(a), Json::String(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a == b,
            (Json::Object(a), Json::Object(b)) => a == b,
            _ => false,
        }
    }
}

/// `1e3` and `1000.0` are the same float; `1000` (an integer) stays distinct, as in serde_json.
fn number_value(n: &RawValue) -> Option<serde_json::Number> {
    serde_json::from_str(n.get()).ok()
}

impl Json {
    /// Parses a JSON text (the whole input; trailing garbage is an error).
    pub fn parse(bytes: &[u8]) -> Result<Json, serde_json::Error> {
        let raw: Box<RawValue> = serde_json::from_slice(bytes)?;
        Json::from_raw(&raw)
    }

    fn from_raw(raw: &RawValue) -> Result<Json, serde_json::Error> {
        let text = raw.get();
        Ok(match text.as_bytes().first() {
            Some(b'{') => {
                let entries: Entries = serde_json::from_str(text)?;
                let mut object = Object::new();
                for (key, value) in entries.0 {
                    object.insert(key, Json::from_raw(&value)?);
                }
                Json::Object(object)
            }
            Some(b'[') => {
                let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
                Json::Array(
                    items
                        .iter()
                        .map(|i| Json::from_raw(i))
                        .collect::<Result<_, _>>()?,
                )
            }
            Some(b'"') => Json::String(serde_json::from_str(text)?),
            Some(b't' | b'f') => Json::Bool(serde_json::from_str(text)?),
            Some(b'n') => Json::Null,
            _ => Json::Number(raw.to_owned()),
        })
    }

    /// A number from its JSON text (`95`, `92.5`); `None` when `text` is not a JSON number.
    pub fn number(text: &str) -> Option<Json> {
        let raw = RawValue::from_string(text.to_owned()).ok()?;
        matches!(raw.get().as_bytes().first(), Some(b'-' | b'0'..=b'9'))
            .then_some(Json::Number(raw))
    }

    /// As a `serde_json::Value` (object keys then sorted, numbers as serde_json reads them).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => serde_json::from_str(n.get()).unwrap_or(Value::Null),
            Json::String(s) => Value::String(s.clone()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// "a string", "an object", … for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Compact JSON text in document order.
    pub fn to_json(&self) -> String {
        // Only strings, raw numbers and containers of them: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => RawValue::from_string(n.to_string())
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(m) => {
                let mut o = Object::new();
                for (k, v) in m {
                    o.insert(k.clone(), Json::from(v));
                }
                Json::Object(o)
            }
        }
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_owned())
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

/// Compact JSON.
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => n.serialize(s),
            Json::String(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(o) => o.serialize(s),
        }
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Only from serde_json (it goes through `RawValue`).
impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Json::from_raw(&raw).map_err(de::Error::custom)
    }
}

/// An object's entries in document order, values still raw.
struct Entries(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"{"z":1,"a":{"y":[1e3,4.50,18446744073709551617,-0],"b":null},"s":"\u00e9\n","t":true,"z":2}"#;

    #[test]
    fn round_trip_keeps_order_and_number_text() {
        let j = Json::parse(TEXT.as_bytes()).unwrap();
        assert_eq!(
            j.to_json(),
            r#"{"z":2,"a":{"y":[1e3,4.50,18446744073709551617,-0],"b":null},"s":"é\n","t":true}"#
        );
        let pretty = serde_json::to_string_pretty(&j).unwrap();
        assert_eq!(
            Json::parse(pretty.as_bytes()).unwrap().to_json(),
            j.to_json()
        );
        assert!(Json::parse(b"{} x").is_err());
        assert!(Json::parse(b"{\"a\":}").is_err());
    }

    #[test]
    fn equality_is_json_equality() {
        let a = Json::parse(br#"{"a":1e3,"b":[1,{"c":"d","e":false}]}"#).unwrap();
        let b = Json::parse(br#"{ "b": [1, {"e": false, "c": "d"}], "a": 1000.0 }"#).unwrap();
        assert_eq!(a, b);
        let c = Json::parse(br#"{"a":1000,"b":[1,{"c":"d","e":false}]}"#).unwrap();
        assert_ne!(a, c, "an integer is not the float");
        assert_eq!(Json::from(&a.to_value()), a);
    }

    #[test]
    fn insert_keeps_positions() {
        let mut o = Object::new();
        o.insert("b", Json::from(true));
        o.insert("a", Json::from("x"));
        o.insert("b", Json::Null);
        assert_eq!(Json::Object(o).to_json(), r#"{"b":null,"a":"x"}"#);
    }
}
