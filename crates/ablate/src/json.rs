//! An order-preserving JSON value.
//!
//! `dspmde solve` rewrites a case file in place: it must keep every key it does not own
//! and keep them in the file's order, so that the output diffs cleanly against the input.
//! `serde_json::Value` sorts object keys unless the crate-wide `preserve_order` feature is
//! on (which would change `serde_json` for every crate of the workspace and the lock file);
//! this small type keeps objects as ordered `(key, value)` lists instead.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use std::fmt;

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Converts any serialisable value, keeping struct field order (it goes through the
    /// JSON text, where serde writes fields in declaration order).
    pub fn from_serialize<T: Serialize>(value: &T) -> serde_json::Result<Json> {
        serde_json::from_str(&serde_json::to_string(value)?)
    }

    /// The value as a `serde_json::Value`, to deserialise typed structures from.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a Json value always serialises")
    }

    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// Sets `key`: replaces the value in place if the key exists (keeping its position),
    /// otherwise inserts it right after `after` (or at the end). No-op on non-objects.
    pub fn set(&mut self, key: &str, value: Json, after: Option<&str>) {
        let Json::Object(entries) = self else { return };
        if let Some(slot) = entries.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
            return;
        }
        let at = after
            .and_then(|a| entries.iter().position(|(k, _)| k == a))
            .map_or(entries.len(), |i| i + 1);
        entries.insert(at, (key.to_string(), value));
    }

    /// Removes `key` and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        let Json::Object(entries) = self else {
            return None;
        };
        let i = entries.iter().position(|(k, _)| k == key)?;
        Some(entries.remove(i).1)
    }

    /// Reorders this object's keys (recursively) to follow `template`'s order; keys the
    /// template lacks keep their relative order after the others. Used so that computed
    /// blocks list ions and fields in the order of the block they replace.
    pub fn align_to(&mut self, template: &Json) {
        let (Json::Object(entries), Json::Object(order)) = (self, template) else {
            return;
        };
        let rank = |k: &str| order.iter().position(|(o, _)| o == k).unwrap_or(usize::MAX);
        entries.sort_by_key(|(k, _)| rank(k));
        for (k, v) in entries.iter_mut() {
            if let Some(t) = template.get(k) {
                v.align_to(t);
            }
        }
    }

    /// Text with the given indent (the case files use one space).
    pub fn to_pretty_string(&self, indent: usize) -> serde_json::Result<String> {
        let indent = vec![b' '; indent];
        let formatter = serde_json::ser::PrettyFormatter::with_indent(&indent);
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
        self.serialize(&mut ser)?;
        out.push(b'\n');
        Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
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
            Json::Object(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom(format!("non-finite number {v}")))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            // Like serde_json::Value: a repeated key keeps the last value.
            match entries.iter_mut().find(|(e, _)| *e == k) {
                Some(slot) => slot.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(Json::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_key_order_and_numbers() {
        let text = r#"{"z":1,"a":[true,null,"s"],"m":{"b":-2,"a":1.5e-10}}"#;
        let j: Json = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&j).unwrap(), text);
        let back: Json = serde_json::from_str(&j.to_pretty_string(1).unwrap()).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn set_remove_align() {
        let mut j: Json = serde_json::from_str(r#"{"id":"x","inputs":{},"trust":"t"}"#).unwrap();
        j.set("expected", Json::Null, Some("inputs"));
        j.set("error", Json::Bool(true), None);
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"id":"x","inputs":{},"expected":null,"trust":"t","error":true}"#
        );
        assert_eq!(j.remove("error"), Some(Json::Bool(true)));
        let mut computed: Json =
            serde_json::from_str(r#"{"c":{"Cl_-":1,"Na_+":2},"extra":0,"a":3}"#).unwrap();
        let template: Json = serde_json::from_str(r#"{"a":0,"c":{"Na_+":0,"Cl_-":0}}"#).unwrap();
        computed.align_to(&template);
        assert_eq!(
            serde_json::to_string(&computed).unwrap(),
            r#"{"a":3,"c":{"Na_+":2,"Cl_-":1},"extra":0}"#
        );
    }
}
