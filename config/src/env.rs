//! Environment overrides: `STREAMGATE__SECTION__KEY=value` replaces `section.key` in the file.
//!
//! The environment is read through the [`Env`] trait so that tests pass a map instead of
//! mutating the process environment.

use std::collections::HashMap;

use crate::ConfigError;

/// Prefix of override variables.
pub const ENV_PREFIX: &str = "STREAMGATE__";

/// A source of environment variables.
pub trait Env {
    /// The value of one variable.
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable, for scanning overrides.
    fn vars(&self) -> Vec<(String, String)>;
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Applies every `STREAMGATE__A__B_C=v` variable to `table` as `a.b-c = v`.
///
/// Segments are lower-cased and `_` becomes `-` (keys are kebab-case). The value is read as a
/// TOML value when it parses as one (`8080`, `true`, `["a"]`) and as a string otherwise.
pub(crate) fn apply_overrides(table: &mut toml::Table, env: &dyn Env) -> Result<(), ConfigError> {
    let mut vars: Vec<_> = env
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase().replace('_', "-"))
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var,
                message: "empty key segment".into(),
            });
        }
        let value = parse_value(&raw);
        set_path(table, &path, value).map_err(|message| ConfigError::Env { var, message })?;
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("no key")?;
    let mut cur = table;
    for seg in parents {
        let entry = cur
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{seg}` is not a table"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_nested_keys_with_typed_values() {
        let mut t: toml::Table = "[s3]\nbucket = \"a\"\n".parse().unwrap();
        let env: HashMap<String, String> = [
            ("STREAMGATE__S3__BUCKET".into(), "b".into()),
            ("STREAMGATE__SERVER__THREADS".into(), "4".into()),
            ("STREAMGATE__SERVER__LISTEN".into(), "0.0.0.0:80".into()),
            ("OTHER".into(), "x".into()),
        ]
        .into();
        apply_overrides(&mut t, &env).unwrap();
        assert_eq!(t["s3"]["bucket"].as_str(), Some("b"));
        assert_eq!(t["server"]["threads"].as_integer(), Some(4));
        assert_eq!(t["server"]["listen"].as_str(), Some("0.0.0.0:80"));
    }

    #[test]
    fn underscores_become_dashes() {
        let mut t = toml::Table::new();
        let env: HashMap<String, String> =
            [("STREAMGATE__UPLOADS__PART_SIZE".into(), "5".into())].into();
        apply_overrides(&mut t, &env).unwrap();
        assert_eq!(t["uploads"]["part-size"].as_integer(), Some(5));
    }

    #[test]
    fn scalar_in_the_way_is_an_error() {
        let mut t: toml::Table = "s3 = 1".parse().unwrap();
        let env: HashMap<String, String> = [("STREAMGATE__S3__BUCKET".into(), "b".into())].into();
        let err = apply_overrides(&mut t, &env).unwrap_err().to_string();
        assert!(err.contains("STREAMGATE__S3__BUCKET"), "{err}");
    }
}
