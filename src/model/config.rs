//! `CrsmConfig`: the model's shape, read from and written to an HF-style `config.json`.
//!
//! A plain HF `MambaConfig` file (as `MambaForCausalLM.save_pretrained` writes it, or as the
//! `state-spaces/mamba-*-hf` repositories ship it) is a valid config: its keys are either used
//! (the sizes) or accepted and kept untouched (token ids, init settings, bookkeeping). Our own
//! keys are optional and prefixed `crsm_`; with them absent the model is exactly HF Mamba.
//! Any other key is an error naming it, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ops::SCAN_MAX_STATE;

// ---- the keys ----------------------------------------------------------------------------------

/// What a typed key's JSON value must be.
#[derive(Clone, Copy)]
enum Kind {
    /// A non-negative integer.
    Count,
    /// Any number.
    Number,
    Bool,
    /// A positive integer or the string "auto" (HF's `time_step_rank`).
    RankOrAuto,
    /// An array of strings.
    Names,
}

/// The keys the model reads: HF `MambaConfig`'s sizes, then ours (`crsm_*`).
const USED_KEYS: &[(&str, Kind)] = &[
    ("vocab_size", Kind::Count),
    ("hidden_size", Kind::Count),
    ("state_size", Kind::Count),
    ("num_hidden_layers", Kind::Count),
    ("expand", Kind::Count),
    ("conv_kernel", Kind::Count),
    ("time_step_rank", Kind::RankOrAuto),
    ("layer_norm_epsilon", Kind::Number),
    ("use_bias", Kind::Bool),
    ("use_conv_bias", Kind::Bool),
    ("tie_word_embeddings", Kind::Bool),
    ("intermediate_size", Kind::Count),
    ("crsm_fusion", Kind::Bool),
    ("crsm_recurrent_depth", Kind::Count),
    ("crsm_depth_adapters", Kind::Bool),
];

/// Keys of an assembled CRSM checkpoint that the backbone does not read: which stages the folder
/// holds and the sizes needed to rebuild them (`crate::latent::checkpoint` reads them). Kept in
/// `hf_extra`, so a backbone loaded from such a folder saves them back unchanged; transformers
/// keeps unknown config keys as attributes, so the folder still loads there.
const CHECKPOINT_KEYS: &[(&str, Kind)] = &[
    ("crsm_stages", Kind::Names),
    ("crsm_critic_hidden", Kind::Count),
];

/// Keys HF writes that do not change what the model computes here, accepted and kept (in
/// `CrsmConfig::hf_extra`) so a saved config still loads in transformers. The one place that
/// lists them; keep it in step with transformers' `MambaConfig.__init__` (configuration_mamba.py)
/// and the `PretrainedConfig` keys `save_pretrained` writes.
pub const HF_ACCEPTED_KEYS: &[&str] = &[
    // MambaConfig: token ids, init-only settings, and switches for other code paths (the CUDA
    // kernels, mambapy's parallel scan, the associative scan) that compute the same function.
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "initializer_range",
    "rescale_prenorm_residual",
    "residual_in_fp32", // the residual stream is always f32 here
    "time_step_scale",
    "time_step_min",
    "time_step_max",
    "time_step_init_scheme",
    "time_step_floor",
    "hidden_act", // checked: must be silu
    "use_cache",
    "use_mambapy",
    "use_associative_scan",
    // PretrainedConfig bookkeeping.
    "model_type", // checked: must be mamba
    "architectures",
    "torch_dtype", // transformers 4.x
    "dtype",       // transformers 5.x
    "transformers_version",
    "_name_or_path",
    // mamba_ssm's own MambaConfig keys, left in the converted `state-spaces/mamba-*-hf` configs
    // (d_model = hidden_size, n_layer = num_hidden_layers, ...); transformers ignores them too.
    "d_model",
    "d_inner",
    "n_layer",
    "rms_norm",
    "fused_add_norm",
    "pad_vocab_size_multiple",
    "ssm_cfg",
];

// ---- the config --------------------------------------------------------------------------------

/// HF's `time_step_rank`: an integer, or "auto" = ceil(hidden_size / 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeStepRank {
    #[default]
    Auto,
    Fixed(usize),
}

impl Serialize for TimeStepRank {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            TimeStepRank::Auto => s.serialize_str("auto"),
            TimeStepRank::Fixed(r) => s.serialize_u64(*r as u64),
        }
    }
}

impl<'de> Deserialize<'de> for TimeStepRank {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "auto" => Ok(TimeStepRank::Auto),
            Value::Number(n) if n.as_u64().is_some() => {
                Ok(TimeStepRank::Fixed(n.as_u64().unwrap_or_default() as usize))
            }
            v => Err(serde::de::Error::custom(format!(
                "time_step_rank must be an integer or \"auto\", got {v}"
            ))),
        }
    }
}

/// The model's configuration. Field names are HF `MambaConfig`'s; defaults are HF's for the
/// optional ones. Derived sizes are methods (`d_inner`, `dt_rank`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrsmConfig {
    pub vocab_size: usize,
    /// D, the residual stream width.
    pub hidden_size: usize,
    /// N, the SSM state size per channel.
    #[serde(default = "defaults::state_size")]
    pub state_size: usize,
    pub num_hidden_layers: usize,
    #[serde(default = "defaults::expand")]
    pub expand: usize,
    /// K, the causal conv width.
    #[serde(default = "defaults::conv_kernel")]
    pub conv_kernel: usize,
    #[serde(default)]
    pub time_step_rank: TimeStepRank,
    #[serde(default = "defaults::layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    /// Biases on in_proj and out_proj.
    #[serde(default)]
    pub use_bias: bool,
    #[serde(default = "defaults::yes")]
    pub use_conv_bias: bool,
    #[serde(default = "defaults::yes")]
    pub tie_word_embeddings: bool,
    /// E; expand * hidden_size when absent (transformers 5 writes it, 4.x did not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate_size: Option<usize>,
    /// Hierarchical policy fusion: logits from a learned softmax mix of every block application's
    /// residual output instead of the last one.
    #[serde(default)]
    pub crsm_fusion: bool,
    /// How many times the physical blocks are applied per token.
    #[serde(default = "defaults::one")]
    pub crsm_recurrent_depth: usize,
    /// A learned adapter before each pass; when absent, on exactly when depth > 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crsm_depth_adapters: Option<bool>,
    /// The accepted-and-kept HF keys (`HF_ACCEPTED_KEYS`) with their values, written back on save.
    #[serde(flatten)]
    pub hf_extra: BTreeMap<String, Value>,
}

mod defaults {
    pub fn state_size() -> usize {
        16
    }
    pub fn expand() -> usize {
        2
    }
    pub fn conv_kernel() -> usize {
        4
    }
    pub fn layer_norm_epsilon() -> f64 {
        1e-5
    }
    pub fn yes() -> bool {
        true
    }
    pub fn one() -> usize {
        1
    }
}

impl CrsmConfig {
    /// A plain Mamba of the given sizes with HF's defaults for everything else (N = 16, expand 2,
    /// K = 4, dt rank auto, eps 1e-5, conv bias, tied head) and no CRSM additions. `model_type`
    /// and `architectures` are set so a saved plain model loads in transformers as
    /// `MambaForCausalLM` (which would ignore `crsm.*` tensors, with a warning, if there are any).
    pub fn new(vocab_size: usize, hidden_size: usize, num_hidden_layers: usize) -> Self {
        CrsmConfig {
            vocab_size,
            hidden_size,
            state_size: defaults::state_size(),
            num_hidden_layers,
            expand: defaults::expand(),
            conv_kernel: defaults::conv_kernel(),
            time_step_rank: TimeStepRank::Auto,
            layer_norm_epsilon: defaults::layer_norm_epsilon(),
            use_bias: false,
            use_conv_bias: true,
            tie_word_embeddings: true,
            intermediate_size: None,
            crsm_fusion: false,
            crsm_recurrent_depth: 1,
            crsm_depth_adapters: None,
            hf_extra: BTreeMap::from([
                ("model_type".to_string(), Value::from("mamba")),
                (
                    "architectures".to_string(),
                    Value::from(vec!["MambaForCausalLM"]),
                ),
            ]),
        }
    }

    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = crate::io::read_text(path)?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parses and validates a config; `file` names it in errors.
    pub fn from_json_str(text: &str, file: &str) -> Result<Self> {
        let err = |field: &str, detail: String| Error::Config {
            file: file.to_string(),
            field: field.to_string(),
            detail,
        };
        let map = crate::io::json_object(text, file, "")?;
        check_keys(&map, file)?;
        for required in ["vocab_size", "hidden_size", "num_hidden_layers"] {
            if !map.contains_key(required) {
                return Err(err(
                    required,
                    "missing (HF MambaConfig sizes are required)".into(),
                ));
            }
        }
        let config: CrsmConfig =
            serde_json::from_value(Value::Object(map)).map_err(|e| err("", e.to_string()))?;
        config.validate(file)?;
        Ok(config)
    }

    /// The config as `config.json` text (every field, and the kept HF keys).
    pub fn to_json_string(&self) -> Result<String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::Config {
            file: "config.json".into(),
            field: String::new(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        Ok(text)
    }

    /// Checks sizes the engine cannot run with; `file` names the config in errors.
    pub fn validate(&self, file: &str) -> Result<()> {
        let err = |field: &str, detail: String| {
            Err(Error::Config {
                file: file.to_string(),
                field: field.to_string(),
                detail,
            })
        };
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("state_size", self.state_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("crsm_recurrent_depth", self.crsm_recurrent_depth),
            ("intermediate_size", self.d_inner()),
            ("time_step_rank", self.dt_rank()),
        ];
        for (field, v) in positive {
            if v == 0 {
                return err(field, "must be at least 1".into());
            }
        }
        if self.state_size > SCAN_MAX_STATE {
            return err(
                "state_size",
                format!(
                    "{} exceeds the selective scan's maximum of {SCAN_MAX_STATE}",
                    self.state_size
                ),
            );
        }
        // K = 1 would leave an empty conv state; every released Mamba uses K = 4.
        if self.conv_kernel < 2 {
            return err(
                "conv_kernel",
                format!("{} is below the supported minimum of 2", self.conv_kernel),
            );
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return err(
                "layer_norm_epsilon",
                format!("{} must be a positive number", self.layer_norm_epsilon),
            );
        }
        if let Some(key) = self.hf_extra.keys().find(|k| {
            !HF_ACCEPTED_KEYS.contains(&k.as_str()) && !CHECKPOINT_KEYS.iter().any(|(c, _)| c == k)
        }) {
            return err(key, "not an accepted HF key (see HF_ACCEPTED_KEYS); typed keys are fields of CrsmConfig".into());
        }
        // Mamba-1 mixers use SiLU; another activation would silently compute something else.
        if let Some(act) = self.hf_extra.get("hidden_act")
            && !matches!(act.as_str(), Some("silu" | "swish"))
        {
            return err(
                "hidden_act",
                format!("{act} is not supported (Mamba-1 uses silu)"),
            );
        }
        if let Some(t) = self.hf_extra.get("model_type")
            && t.as_str() != Some("mamba")
        {
            return err(
                "model_type",
                format!("{t} is not a Mamba-1 model (expected \"mamba\")"),
            );
        }
        Ok(())
    }

    // ---- derived sizes ---------------------------------------------------------------------------

    /// E, the mixer's inner width.
    pub fn d_inner(&self) -> usize {
        self.intermediate_size
            .unwrap_or(self.expand * self.hidden_size)
    }

    /// R, the rank of the dt projection.
    pub fn dt_rank(&self) -> usize {
        match self.time_step_rank {
            TimeStepRank::Auto => self.hidden_size.div_ceil(16),
            TimeStepRank::Fixed(r) => r,
        }
    }

    /// Block applications per token: layers x recurrent depth (the length of `State::layers`).
    pub fn applications(&self) -> usize {
        self.num_hidden_layers * self.crsm_recurrent_depth
    }

    /// Whether each pass has its own adapter (default: exactly when depth > 1).
    pub fn depth_adapters(&self) -> bool {
        self.crsm_depth_adapters
            .unwrap_or(self.crsm_recurrent_depth > 1)
    }

    /// The std of the normal init of the embeddings (HF `initializer_range`, default 0.1).
    pub fn initializer_range(&self) -> f32 {
        self.hf_extra
            .get("initializer_range")
            .and_then(Value::as_f64)
            .unwrap_or(0.1) as f32
    }

    pub fn block_dims(&self) -> crate::nn::MambaDims {
        crate::nn::MambaDims {
            d_model: self.hidden_size,
            d_inner: self.d_inner(),
            d_state: self.state_size,
            dt_rank: self.dt_rank(),
            conv_kernel: self.conv_kernel,
        }
    }
}

/// Every key must be used or HF-accepted, and each used key must have the right JSON type.
fn check_keys(map: &Map<String, Value>, file: &str) -> Result<()> {
    for (key, value) in map {
        let err = |detail: String| {
            Err(Error::Config {
                file: file.to_string(),
                field: key.clone(),
                detail,
            })
        };
        if let Some(&(_, kind)) = USED_KEYS
            .iter()
            .chain(CHECKPOINT_KEYS)
            .find(|(k, _)| k == key)
        {
            let ok = match kind {
                Kind::Count => value.as_u64().is_some(),
                Kind::Number => value.is_number(),
                Kind::Bool => value.is_boolean(),
                Kind::RankOrAuto => value.as_u64().is_some() || value.as_str() == Some("auto"),
                Kind::Names => value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)),
            };
            if !ok {
                let want = match kind {
                    Kind::Count => "a non-negative integer",
                    Kind::Number => "a number",
                    Kind::Bool => "true or false",
                    Kind::RankOrAuto => "a positive integer or \"auto\"",
                    Kind::Names => "an array of strings",
                };
                return err(format!("expected {want}, got {value}"));
            }
        } else if !HF_ACCEPTED_KEYS.contains(&key.as_str()) {
            return err("unknown key: neither an HF MambaConfig key nor a crsm_* key (see HF_ACCEPTED_KEYS in src/model/config.rs)".into());
        }
    }
    Ok(())
}
