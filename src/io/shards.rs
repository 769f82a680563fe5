//! A checkpoint directory as HF `save_pretrained` writes it: `model.safetensors`, or, for large
//! models, shards `model-00001-of-0000N.safetensors` plus `model.safetensors.index.json`
//! (`{"metadata": {..}, "weight_map": {tensor name: shard file}}`), the layout
//! transformers' `load_sharded_checkpoint` reads.

use std::collections::BTreeMap;
use std::path::Path;

use super::TensorMap;
use super::safetensors::load_safetensors_file;
use crate::error::{Error, Result};

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Stands in for a tensor name in errors about the index as a whole.
const INDEX: &str = "(index)";

/// Loads the weights of a checkpoint directory: `model.safetensors` if present, otherwise every
/// shard named in `model.safetensors.index.json`, each read once. Every tensor the index lists
/// must be in the shard it names, and no tensor may appear in two shards. Tensors a shard holds
/// but the index does not list are kept (transformers loads whole shards too).
pub fn load_safetensors_dir(dir: &Path) -> Result<TensorMap> {
    let single = dir.join(SINGLE_FILE);
    if single.is_file() {
        return load_safetensors_file(&single);
    }
    let index_path = dir.join(INDEX_FILE);
    if !index_path.is_file() {
        return Err(Error::Io {
            path: dir.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no checkpoint: neither {SINGLE_FILE} nor {INDEX_FILE} is in this directory"
                ),
            ),
        });
    }
    let index_file = index_path.display().to_string();
    let shards = read_index(&index_path, &index_file)?;

    let mut out = TensorMap::new();
    // Which shard each loaded tensor came from, to name both files when one appears twice.
    let mut origin: BTreeMap<String, String> = BTreeMap::new();
    for (shard, listed) in &shards {
        let shard_path = dir.join(shard);
        let shard_file = shard_path.display().to_string();
        if !shard_path.is_file() {
            return Err(Error::Checkpoint {
                file: shard_file,
                tensor: listed[0].clone(),
                detail: format!(
                    "shard is missing; {INDEX_FILE} maps {} tensors to it",
                    listed.len()
                ),
            });
        }
        let mut tensors = load_safetensors_file(&shard_path)?;
        if let Some(absent) = listed.iter().find(|name| !tensors.contains_key(*name)) {
            return Err(Error::Checkpoint {
                file: shard_file,
                tensor: absent.clone(),
                detail: format!(
                    "{INDEX_FILE} places this tensor in this shard, but the shard does not hold it"
                ),
            });
        }
        for (name, tensor) in std::mem::take(&mut tensors) {
            if let Some(first) = origin.get(&name) {
                return Err(Error::Checkpoint {
                    file: shard_file,
                    tensor: name,
                    detail: format!("tensor also appears in shard {first}"),
                });
            }
            origin.insert(name.clone(), shard.clone());
            out.insert(name, tensor);
        }
    }
    Ok(out)
}

/// The index's weight map, grouped by shard: shard file name -> the tensors listed for it.
fn read_index(path: &Path, file: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let text = crate::io::read_text(path)?;
    let err = |detail: String| Error::Checkpoint {
        file: file.to_string(),
        tensor: INDEX.to_string(),
        detail,
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("not valid JSON ({e})")))?;
    let Some(map) = json.get("weight_map").and_then(|m| m.as_object()) else {
        return Err(err("no \"weight_map\" object".to_string()));
    };
    let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, shard) in map {
        let Some(shard) = shard.as_str() else {
            return Err(Error::Checkpoint {
                file: file.to_string(),
                tensor: name.clone(),
                detail: format!("weight_map value {shard} is not a file name"),
            });
        };
        // A shard is a file beside the index; a path could read outside the checkpoint.
        if Path::new(shard).file_name().and_then(|f| f.to_str()) != Some(shard) {
            return Err(Error::Checkpoint {
                file: file.to_string(),
                tensor: name.clone(),
                detail: format!(
                    "shard '{shard}' is not a plain file name in the checkpoint directory"
                ),
            });
        }
        shards
            .entry(shard.to_string())
            .or_default()
            .push(name.clone());
    }
    Ok(shards)
}
