//! A run config serialised once.
//!
//! A run's config is turned into JSON in one place, here: a [`serde_json::Value`] whose
//! objects have their keys sorted (serde_json's default map), and its compact text. Every
//! key and column derived from a config comes from that one value:
//! - the run id (the study hashes [`CanonicalConfig::id_text`]);
//! - the record's `config_json` ([`CanonicalConfig::text`]) and its `config/` attributes,
//!   and the report's `config.*` summary columns ([`CanonicalConfig::leaves`]);
//! - the pre-training share key ([`CanonicalConfig::part_text`]);
//! - the report's cell key ([`CanonicalConfig::cell_text`]).
//!
//! A record's `config_json` is read back as written ([`CanonicalConfig::parse`]), so the
//! report's columns come from the text the run wrote, not from a config typed again.

use super::RunConfig;
use serde::Deserialize;
use serde_json::Value;

/// A run config as canonical JSON: the value and its compact text.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalConfig {
    value: Value,
    text: String,
}

impl CanonicalConfig {
    /// The canonical JSON of a config.
    pub fn of(config: &RunConfig) -> CanonicalConfig {
        let value = serde_json::to_value(config).expect("a run config serialises");
        CanonicalConfig::from_value(value)
    }

    fn from_value(value: Value) -> CanonicalConfig {
        let text = value.to_string();
        CanonicalConfig { value, text }
    }

    /// A record's `config_json` read back: the canonical form (its text as written) and
    /// the config it says.
    pub fn parse(text: &str) -> Result<(CanonicalConfig, RunConfig), serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let config = RunConfig::deserialize(&value)?;
        let canonical = CanonicalConfig {
            value,
            text: text.to_string(),
        };
        Ok((canonical, config))
    }

    /// The compact JSON text: a record's `config_json`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The JSON value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The value at a dotted path (`finetune.learning_rate`), if there is one.
    pub fn get(&self, path: &str) -> Option<&Value> {
        path.split('.')
            .try_fold(&self.value, |v, key| v.as_object()?.get(key))
    }

    /// The text a run id hashes: the config with `seed` set to the replicate seed (the
    /// planned config carries the derived run seed instead), then `\nseed=<replicate>`.
    pub fn id_text(&self, replicate: u64) -> String {
        let mut value = self.value.clone();
        value["seed"] = Value::from(replicate);
        format!("{value}\nseed={replicate}")
    }

    /// The text of the listed top-level and dotted parts only (absent parts as null), in
    /// the order given: what a key over some of a config hashes (the pre-training share
    /// key: the model, the pre-training stage and data, and the seed).
    pub fn part_text(&self, paths: &[&str]) -> String {
        let parts: Vec<Value> = paths
            .iter()
            .map(|p| self.get(p).cloned().unwrap_or(Value::Null))
            .collect();
        Value::Array(parts).to_string()
    }

    /// The text the report's cell key hashes: the config without its seed and held-out
    /// family, with the fields in the order `RunConfig` declares them. That order (not
    /// this type's sorted keys) is kept because committed summaries carry the hash in
    /// their `cell` column; it is made from this value, not from another config.
    pub fn cell_text(&self) -> String {
        let mut value = self.value.clone();
        value["seed"] = Value::from(0u64);
        if let Some(family) = value.pointer_mut("/split/test_family") {
            *family = Value::from("");
        }
        let config = RunConfig::deserialize(&value).expect("a canonical config reads back");
        serde_json::to_string(&config).expect("a run config serialises")
    }

    /// The leaves as (dotted path, leaf); lists are leaves, nulls are dropped. They are
    /// a record's `config/` attributes and the summary's `config.*` columns.
    pub fn leaves(&self) -> Vec<(String, &Value)> {
        fn walk<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                Value::Null => {}
                leaf => out.push((prefix.to_string(), leaf)),
            }
        }
        let mut out = Vec::new();
        walk("", &self.value, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        let text = r#"
            seed = 7
            [data]
            measured = ["m.csv"]
            [finetune]
            epochs = 3
            learning_rate = 0.001
            [split]
            kind = "by_family"
            test_family = "NaCl"
            validation_fraction = 0.2
        "#;
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_text_is_the_value_printed_and_reads_back_as_written() {
        let c = CanonicalConfig::of(&config());
        assert_eq!(c.text(), c.value().to_string());
        assert_eq!(
            c.text(),
            serde_json::to_value(config()).unwrap().to_string()
        );
        let (back, typed) = CanonicalConfig::parse(c.text()).unwrap();
        assert_eq!(back, c);
        assert_eq!(typed, config());
        assert_eq!(c.get("finetune.learning_rate"), Some(&Value::from(0.001)));
        assert_eq!(c.get("finetune.nothing"), None);
    }

    #[test]
    fn the_id_text_sets_the_replicate_seed_and_nothing_else() {
        let c = CanonicalConfig::of(&config());
        let mut replicate = config();
        replicate.seed = 2;
        let expected = format!("{}\nseed=2", serde_json::to_value(&replicate).unwrap());
        assert_eq!(c.id_text(2), expected);
    }

    #[test]
    fn the_cell_text_ignores_the_seed_and_the_held_out_family_only() {
        let a = CanonicalConfig::of(&config());
        let mut other = config();
        other.seed = 99;
        if let Some(crate::split::SplitSpec::ByFamily { test_family, .. }) = &mut other.split {
            *test_family = "MgSO4".into();
        }
        assert_eq!(a.cell_text(), CanonicalConfig::of(&other).cell_text());
        other.finetune.as_mut().unwrap().epochs = 4;
        assert_ne!(a.cell_text(), CanonicalConfig::of(&other).cell_text());
        // Declaration order: `name` and `seed` come before `data`.
        assert!(
            a.cell_text().starts_with(r#"{"name":null,"seed":0,"#),
            "{}",
            a.cell_text()
        );
    }

    #[test]
    fn parts_and_leaves_name_their_paths() {
        let c = CanonicalConfig::of(&config());
        assert_eq!(
            c.part_text(&["finetune.epochs", "pretrain", "seed"]),
            "[3,null,7]"
        );
        let leaves = c.leaves();
        let get = |k: &str| {
            leaves
                .iter()
                .find(|(p, _)| p == k)
                .map(|(_, v)| (*v).clone())
        };
        assert_eq!(get("finetune.epochs"), Some(Value::from(3)));
        assert_eq!(get("finetune.learning_rate"), Some(Value::from(0.001)));
        assert_eq!(get("split.kind"), Some(Value::from("by_family")));
        assert_eq!(get("data.measured"), Some(serde_json::json!(["m.csv"])));
        // Absent parts (null) are no leaf.
        assert_eq!(get("pretrain"), None);
        assert!(leaves.iter().all(|(_, v)| !v.is_null() && !v.is_object()));
    }
}
