//! Merging configuration layers as TOML tables: key by key inside sections, `--set KEY=VALUE`
//! items, and a deserialisation that refuses any key the result would not use.

use anyhow::{Context, Result, bail};
use serde::{Serialize, de::DeserializeOwned};

/// Merges `layer` into `base`: a key in `layer` replaces the same key in `base`, except that two
/// tables merge key by key. A table whose `kind` differs from the base's replaces it whole (its
/// other keys belong to the old kind).
pub fn merge_tables(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(lower)), toml::Value::Table(upper))
                if upper
                    .get("kind")
                    .is_none_or(|kind| lower.get("kind") == Some(kind)) =>
            {
                merge_tables(lower, upper);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Adds `--set` item `KEY=VALUE` to `layer`: KEY is a dotted path (`reptile.inner_batch`),
/// VALUE a TOML value, or a string when it does not parse as one (`sgd`).
pub fn set_dotted(layer: &mut toml::Table, item: &str) -> Result<()> {
    let Some((path, text)) = item.split_once('=') else {
        bail!("--set `{item}` is not KEY=VALUE (e.g. --set reptile.inner_batch=5)");
    };
    let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()));
    let keys: Vec<&str> = path.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        bail!("--set `{item}`: KEY `{path}` has an empty part");
    }
    let (last, sections) = keys.split_last().context("split of a non-empty path")?;
    let mut table = &mut *layer;
    for key in sections {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            bail!("--set `{item}`: `{key}` is a value, not a section");
        };
        table = inner;
    }
    let mut single = toml::Table::new();
    single.insert(last.to_string(), value);
    merge_tables(table, single);
    Ok(())
}

/// Deserialises `table` and refuses every key of it that the result does not hold (a key that
/// a lenient library type would skip), naming the key with its section and the valid keys.
pub fn deserialize_strictly<T: Serialize + DeserializeOwned>(table: toml::Table) -> Result<T> {
    let value: T = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e| anyhow::anyhow!("{}", describe(&table, e)))?;
    if let toml::Value::Table(used) = toml::Value::try_from(&value)? {
        unused_key(&table, &used, "")?;
    }
    Ok(value)
}

/// serde's message, with the section of an unknown key (serde's message names only the key).
fn describe(table: &toml::Table, error: toml::de::Error) -> String {
    let message = error.message().trim().to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key);
    match unknown.and_then(|key| section_of(table, key, "")) {
        Some(name) if !name.is_empty() => format!("[{name}]: {message}"),
        _ => message,
    }
}

/// The dotted path of the first (sub)table under `path` that holds `key`.
fn section_of(table: &toml::Table, key: &str, path: &str) -> Option<String> {
    if table.contains_key(key) {
        return Some(path.to_string());
    }
    table.iter().find_map(|(name, value)| match value {
        toml::Value::Table(inner) => section_of(inner, key, &join(path, name)),
        _ => None,
    })
}

/// The first key of `given` (under `path`) that `used` lacks.
fn unused_key(given: &toml::Table, used: &toml::Table, path: &str) -> Result<()> {
    for (key, value) in given {
        let here = join(path, key);
        match (value, used.get(key)) {
            (_, None) => bail!(
                "unknown key `{here}`{}; valid keys there: {}",
                if path.is_empty() {
                    String::new()
                } else {
                    format!(" in [{path}]")
                },
                used.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            (toml::Value::Table(inner), Some(toml::Value::Table(inner_used))) => {
                unused_key(inner, inner_used, &here)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `path.key`, or `key` at the top level.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sections_merge_key_by_key_and_a_new_kind_replaces_the_section() {
        let mut base = table("a = 1\n[s]\nx = 1\ny = 2\n[k]\nkind = \"linear\"\nfinal_lr = 0.0");
        merge_tables(
            &mut base,
            table("[s]\ny = 3\n[k]\nkind = \"cosine\"\nfloor = 0.1"),
        );
        assert_eq!(
            base,
            table("a = 1\n[s]\nx = 1\ny = 3\n[k]\nkind = \"cosine\"\nfloor = 0.1")
        );
        merge_tables(&mut base, table("[k]\nkind = \"cosine\"\nfloor = 0.2"));
        assert_eq!(base["k"], table("kind = \"cosine\"\nfloor = 0.2").into());
    }

    #[test]
    fn set_items_parse_toml_values_and_bare_words() {
        let mut layer = toml::Table::new();
        for item in [
            "reptile.inner_batch=5",
            "reptile.inner_optimizer=sgd",
            "optimizer.grad_clip={norm=2.5}",
            "optimizer.adam.beta1 = 0.5",
            "ways=7",
        ] {
            set_dotted(&mut layer, item).unwrap();
        }
        assert_eq!(
            layer,
            table(
                "ways = 7\n[reptile]\ninner_batch = 5\ninner_optimizer = \"sgd\"\n\
                 [optimizer]\ngrad_clip = { norm = 2.5 }\n[optimizer.adam]\nbeta1 = 0.5"
            )
        );
        for bad in ["noequals", "reptile..x=1", "ways.x=1"] {
            let mut layer = table("ways = 7");
            assert!(set_dotted(&mut layer, bad).is_err(), "{bad}");
        }
    }
}
