//! A later stage's training loop from its section's `training` object: the keys of the run's
//! `training` section except `data`, `tokenizer` and `out_dir`, which the stage sets itself.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::TrainingConfig;

/// `training` of section `stage` as a `TrainingConfig`, with `data` and `out_dir` set by the
/// stage and `seed` defaulting to the section's; errors name `stage.training.<key>`.
pub fn stage_loop_config(
    stage: &str,
    training: &Value,
    data: String,
    out_dir: String,
    seed: u64,
    file: &str,
) -> Result<TrainingConfig> {
    let field = |key: &str| {
        if key.is_empty() {
            format!("{stage}.training")
        } else {
            format!("{stage}.training.{key}")
        }
    };
    let mut map = match training {
        Value::Object(m) => m.clone(),
        other => {
            return Err(Error::Config {
                file: file.into(),
                field: field(""),
                detail: format!("must be an object, got {other}"),
            });
        }
    };
    for key in ["data", "tokenizer", "out_dir"] {
        if map.contains_key(key) {
            return Err(Error::Config {
                file: file.into(),
                field: field(key),
                detail: "is set by the stage (its traces and out_dir); remove it".into(),
            });
        }
    }
    map.insert("data".into(), Value::String(data));
    map.insert("tokenizer".into(), Value::String(String::new()));
    map.insert("out_dir".into(), Value::String(out_dir));
    map.entry("seed").or_insert(Value::from(seed));
    let config: TrainingConfig =
        serde_json::from_value(Value::Object(map)).map_err(|e| Error::Config {
            file: file.into(),
            field: field(""),
            detail: e.to_string(),
        })?;
    config.validate(file).map_err(|e| match e {
        Error::Config {
            file,
            field,
            detail,
        } => Error::Config {
            file,
            field: format!("{stage}.{field}"),
            detail,
        },
        other => other,
    })?;
    Ok(config)
}
