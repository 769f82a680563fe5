//! The assembled CRSM checkpoint: one folder holding the backbone exactly as `Backbone::save`
//! writes it (HF `config.json` + `model.safetensors`, so transformers' `MambaForCausalLM` loads
//! it unchanged) and, in a second file `crsm.safetensors`, the latent parts under `crsm.`:
//!
//! ```text
//! crsm.latent.mean, crsm.latent.std   [L, D]   the standardiser (with dynamics or critic)
//! crsm.dynamics.*                              the GRU dynamics (latent::dynamics)
//! crsm.broadcaster.{i}.*, h_scale, delta_scale the delta broadcaster (latent::broadcaster)
//! crsm.critic.{i}.w1|b1|w2|b2|u|a              the value heads (latent::critic)
//! crsm.critic.value_mean, value_std  [1]       the value target's scale
//! crsm.critic.certainty_mean, _std   [1]       the scale of the policy certainty the heads read
//! crsm.critic.held_out_rmse          [L]       each head's held-out RMSE (what confidence reads)
//! crsm.gates.weight, crsm.gates.bias [L]       the injection gates (latent::gates)
//! ```
//!
//! L = the backbone's block applications, D = its hidden size. `config.json` says which stages
//! are there (`crsm_stages`) and the critic's hidden width (`crsm_critic_hidden`). Loading is
//! strict both ways: a listed stage's tensors must all be there with their shapes, and a tensor
//! no listed stage calls for is an error. A plain HF Mamba folder is a backbone-only checkpoint.
//! Why a second file: transformers reads only `model.safetensors` (or its index), so the HF file
//! stays pure and `from_pretrained` reports no unexpected weights (docs/ARCHITECTURE.md).

use std::path::Path;

use serde_json::Value;

use crate::Device;
use crate::error::{Error, Result};
use crate::io::{HostTensor, TensorMap, WeightsFile, save_safetensors};
use crate::latent::gates::Gates;
use crate::latent::{
    Broadcaster, BroadcasterConfig, Critic, CriticConfig, Dynamics, DynamicsConfig, Standardizer,
};
use crate::model::Backbone;
use crate::tensor::Tensor;

/// The file of the `crsm.` tensors, beside the HF `model.safetensors`.
pub const CRSM_FILE: &str = "crsm.safetensors";

/// A part of the CRSM a checkpoint may hold, in the order `crsm_stages` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Backbone,
    Dynamics,
    Broadcaster,
    Critic,
    Gates,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Backbone,
        Stage::Dynamics,
        Stage::Broadcaster,
        Stage::Critic,
        Stage::Gates,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Backbone => "backbone",
            Stage::Dynamics => "dynamics",
            Stage::Broadcaster => "broadcaster",
            Stage::Critic => "critic",
            Stage::Gates => "gates",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The training command that makes this part (before `assemble` gathers it).
    fn made_by(self) -> &'static str {
        match self {
            Stage::Backbone => "pretrain",
            Stage::Dynamics | Stage::Broadcaster => "distill",
            Stage::Critic => "critic",
            Stage::Gates => "assemble",
        }
    }
}

/// The value heads with what reads them: the target's scale and each head's held-out error.
#[derive(Clone)]
pub struct CriticPart {
    pub critic: Critic,
    pub value_mean: f32,
    pub value_std: f32,
    /// What the heads read beside the latent: (certainty - mean) / std.
    pub certainty_mean: f32,
    pub certainty_std: f32,
    /// [L], standard units of the target (`critic::confidence` reads it).
    pub held_out_rmse: Vec<f32>,
}

/// A CRSM checkpoint: the backbone and whichever latent parts have been trained.
#[derive(Clone)]
pub struct CrsmCheckpoint {
    pub backbone: Backbone,
    /// The latents' standardiser; present exactly when dynamics or critic is.
    pub standardizer: Option<Standardizer>,
    pub dynamics: Option<Dynamics>,
    pub broadcaster: Option<Broadcaster>,
    pub critic: Option<CriticPart>,
    pub gates: Option<Gates>,
    /// Where it was loaded from ("" when built in memory), for `require`'s message.
    pub source: String,
}

impl CrsmCheckpoint {
    /// A backbone-only checkpoint.
    pub fn backbone_only(backbone: Backbone) -> Self {
        CrsmCheckpoint {
            backbone,
            standardizer: None,
            dynamics: None,
            broadcaster: None,
            critic: None,
            gates: None,
            source: String::new(),
        }
    }

    /// The stages present, in `Stage::ALL` order.
    pub fn stages(&self) -> Vec<Stage> {
        let present = [
            true,
            self.dynamics.is_some(),
            self.broadcaster.is_some(),
            self.critic.is_some(),
            self.gates.is_some(),
        ];
        Stage::ALL
            .into_iter()
            .zip(present)
            .filter_map(|(s, p)| p.then_some(s))
            .collect()
    }

    /// (L, D): block applications and hidden size, the latent's shape.
    fn latent_shape(&self) -> (usize, usize) {
        let c = &self.backbone.config;
        (c.applications(), c.hidden_size)
    }

    /// Refuses a checkpoint without `stage`, naming it and the commands that make it.
    pub fn require(&self, stage: Stage) -> Result<()> {
        if self.stages().contains(&stage) {
            return Ok(());
        }
        let have: Vec<&str> = self.stages().iter().map(|s| s.name()).collect();
        let how = match stage.made_by() {
            "assemble" => "run `crsm-train assemble --config <run file>`".to_string(),
            cmd => format!(
                "run `crsm-train {cmd} --config <run file>`, then `crsm-train assemble --config <run file>`"
            ),
        };
        Err(Error::Config {
            file: Path::new(&self.source)
                .join("config.json")
                .display()
                .to_string(),
            field: "crsm_stages".into(),
            detail: format!(
                "this checkpoint has no {} (it holds {}): {how}",
                stage.name(),
                have.join(", ")
            ),
        })
    }

    // ---- loading --------------------------------------------------------------------------------

    /// Loads the folder `dir` strictly (see the module doc).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let backbone = Backbone::load(dir, device)?;
        let config_file = dir.join("config.json").display().to_string();
        let config_err = |field: &str, detail: String| Error::Config {
            file: config_file.clone(),
            field: field.into(),
            detail,
        };
        let extra = &backbone.config.hf_extra;
        let stages = match extra.get("crsm_stages") {
            None => vec![Stage::Backbone],
            Some(v) => parse_stages(v).map_err(|d| config_err("crsm_stages", d))?,
        };
        let has = |s| stages.contains(&s);
        let hidden = extra.get("crsm_critic_hidden").and_then(Value::as_u64);
        if has(Stage::Critic) != hidden.is_some() {
            return Err(config_err(
                "crsm_critic_hidden",
                format!(
                    "must be given exactly when crsm_stages lists the critic (it lists {})",
                    names(&stages)
                ),
            ));
        }
        let path = dir.join(CRSM_FILE);
        let mut out = CrsmCheckpoint::backbone_only(backbone);
        out.source = dir.display().to_string();
        if stages == [Stage::Backbone] {
            if path.exists() {
                return Err(Error::Checkpoint {
                    file: path.display().to_string(),
                    tensor: String::new(),
                    detail: "present, but config.json's crsm_stages lists only the backbone \
                             (a folder assembled without its config?)"
                        .into(),
                });
            }
            return Ok(out);
        }
        if !path.is_file() {
            return Err(config_err(
                "crsm_stages",
                format!(
                    "lists {}, but {} is missing",
                    names(&stages),
                    path.display()
                ),
            ));
        }
        let mut f = WeightsFile::open(&path)?;
        let (layers, d) = out.latent_shape();
        if has(Stage::Dynamics) || has(Stage::Critic) {
            out.standardizer = Some(take_standardizer(&mut f, layers, d)?);
        }
        if has(Stage::Dynamics) {
            out.dynamics = Some(take_dynamics(&mut f, layers, d, device)?);
        }
        if has(Stage::Broadcaster) {
            let c = &out.backbone.config;
            let (e, n) = (c.d_inner(), c.state_size);
            out.broadcaster = Some(take_broadcaster(&mut f, layers, d, e, n, device)?);
        }
        if has(Stage::Critic) {
            let hidden = hidden.unwrap_or_default() as usize;
            let mut part = take_critic(&mut f, layers, d, hidden, device)?;
            part.held_out_rmse = f.take("crsm.critic.held_out_rmse", &[layers])?;
            out.critic = Some(part);
        }
        if has(Stage::Gates) {
            out.gates = Some(take_gates(&mut f, layers, device)?);
        }
        f.finish(&format!(
            "config.json's crsm_stages lists {}, which do not call for it",
            names(&stages)
        ))?;
        Ok(out)
    }

    // ---- saving ---------------------------------------------------------------------------------

    /// The `crsm.` tensors (everything but the backbone), as `crsm.safetensors` holds them.
    pub fn crsm_tensors(&self) -> Result<TensorMap> {
        let mut map = TensorMap::new();
        let mut put = |name: String, t: &Tensor| -> Result<()> {
            map.insert(name, HostTensor::from_tensor(t)?);
            Ok(())
        };
        if let Some(d) = &self.dynamics {
            for (n, t) in d.named_parameters() {
                put(format!("crsm.dynamics.{n}"), t)?;
            }
        }
        if let Some(c) = &self.critic {
            for (n, t) in c.critic.named_parameters() {
                put(format!("crsm.critic.{n}"), t)?;
            }
        }
        if let Some(g) = &self.gates {
            for (n, t) in g.named_parameters() {
                put(format!("crsm.gates.{n}"), t)?;
            }
        }
        let (layers, d) = self.latent_shape();
        if let Some(s) = &self.standardizer {
            map.insert(
                "crsm.latent.mean".into(),
                HostTensor::new(vec![layers, d], s.mean.clone())?,
            );
            map.insert(
                "crsm.latent.std".into(),
                HostTensor::new(vec![layers, d], s.std.clone())?,
            );
        }
        if let Some(c) = &self.critic {
            for (name, shape, values) in [
                ("value_mean", vec![1], vec![c.value_mean]),
                ("value_std", vec![1], vec![c.value_std]),
                ("certainty_mean", vec![1], vec![c.certainty_mean]),
                ("certainty_std", vec![1], vec![c.certainty_std]),
                ("held_out_rmse", vec![layers], c.held_out_rmse.clone()),
            ] {
                map.insert(
                    format!("crsm.critic.{name}"),
                    HostTensor::new(shape, values)?,
                );
            }
        }
        if let Some(b) = &self.broadcaster {
            for (n, t) in b.named_parameters() {
                map.insert(format!("{BROADCASTER}{n}"), HostTensor::from_tensor(t)?);
            }
            for (name, values) in [("h_scale", &b.h_scale), ("delta_scale", &b.delta_scale)] {
                map.insert(
                    format!("{BROADCASTER}{name}"),
                    HostTensor::new(vec![layers], values.clone())?,
                );
            }
        }
        Ok(map)
    }

    /// Writes the folder: `crsm.safetensors` (when any stage past the backbone is present), then
    /// the backbone's `model.safetensors` and last `config.json` with the `crsm_*` keys. The
    /// result loads back with `load` tensor for tensor; checks run first, so nothing is written
    /// for parts that disagree in shape.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let stages = self.stages();
        self.check_parts()?;
        let mut backbone = self.backbone.clone();
        let extra = &mut backbone.config.hf_extra;
        extra.remove("crsm_stages");
        extra.remove("crsm_critic_hidden");
        crate::io::steps::create_dir_all(dir)?;
        let path = dir.join(CRSM_FILE);
        if stages.len() > 1 {
            extra.insert(
                "crsm_stages".into(),
                Value::from(stages.iter().map(|s| s.name()).collect::<Vec<_>>()),
            );
            if let Some(c) = &self.critic {
                extra.insert(
                    "crsm_critic_hidden".into(),
                    Value::from(c.critic.config.hidden),
                );
            }
            save_safetensors(&path, &self.crsm_tensors()?)?;
        } else if path.exists() {
            crate::io::steps::remove_file(&path)?;
        }
        backbone.save(dir)
    }

    /// The parts' shapes agree with the backbone's latent (and the standardiser is there when
    /// something reads it), so `save` never writes a folder `load` refuses.
    fn check_parts(&self) -> Result<()> {
        let (layers, d) = self.latent_shape();
        let err = |detail: String| Error::InvalidArgument {
            op: "CrsmCheckpoint::save",
            detail,
        };
        let needs_latent = self.dynamics.is_some() || self.critic.is_some();
        match &self.standardizer {
            Some(s) if !needs_latent => {
                return Err(err(format!(
                    "a standardiser ({} x {}) without dynamics or critic to read it",
                    s.layers, s.d_model
                )));
            }
            Some(s) if (s.layers, s.d_model) != (layers, d) => {
                return Err(err(format!(
                    "standardiser {} x {}, but the backbone's latent is {layers} x {d}",
                    s.layers, s.d_model
                )));
            }
            None if needs_latent => {
                return Err(err("dynamics or critic without the standardiser".into()));
            }
            _ => {}
        }
        if let Some(x) = &self.dynamics
            && x.config != (DynamicsConfig { layers, d_model: d })
        {
            return Err(err(format!(
                "dynamics {:?}, but the backbone's latent is {layers} x {d}",
                x.config
            )));
        }
        if let Some(c) = &self.critic {
            let cc = c.critic.config;
            if (cc.layers, cc.d_model) != (layers, d) || c.held_out_rmse.len() != layers {
                return Err(err(format!(
                    "critic {cc:?} with {} held-out errors, but the backbone's latent is {layers} x {d}",
                    c.held_out_rmse.len()
                )));
            }
        }
        if let Some(g) = &self.gates
            && g.layers() != layers
        {
            return Err(err(format!("{} gates for {layers} layers", g.layers())));
        }
        if let Some(b) = &self.broadcaster {
            let bc = b.config;
            let c = &self.backbone.config;
            if (bc.layers, bc.d_model, bc.d_inner, bc.d_state)
                != (layers, d, c.d_inner(), c.state_size)
            {
                return Err(err(format!(
                    "broadcaster {bc:?}, but the backbone is {layers} layers x {d} over states {} x {}",
                    c.d_inner(),
                    c.state_size
                )));
            }
        }
        Ok(())
    }
}

const BROADCASTER: &str = "crsm.broadcaster.";

fn names(stages: &[Stage]) -> String {
    stages
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `crsm_stages`: known names, no repeats, the backbone included.
fn parse_stages(v: &Value) -> std::result::Result<Vec<Stage>, String> {
    let items = v.as_array().ok_or("must be an array of stage names")?;
    let mut stages = Vec::new();
    for item in items {
        let name = item.as_str().unwrap_or_default();
        let stage = Stage::from_name(name)
            .ok_or_else(|| format!("unknown stage {item} (known: {})", names(&Stage::ALL)))?;
        if stages.contains(&stage) {
            return Err(format!("lists {name} twice"));
        }
        stages.push(stage);
    }
    if !stages.contains(&Stage::Backbone) {
        return Err("must list the backbone".into());
    }
    stages.sort();
    Ok(stages)
}

// ---- the parts, taken from any weights file that names them so ---------------------------------
// (`crsm.safetensors` here; the stages' own files in `train::assemble`)

/// `crsm.latent.mean` / `std`, [L, D] each.
pub fn take_standardizer(f: &mut WeightsFile, layers: usize, d: usize) -> Result<Standardizer> {
    Ok(Standardizer {
        layers,
        d_model: d,
        mean: f.take("crsm.latent.mean", &[layers, d])?,
        std: f.take("crsm.latent.std", &[layers, d])?,
    })
}

/// `crsm.dynamics.*` for L layers of width D.
pub fn take_dynamics(
    f: &mut WeightsFile,
    layers: usize,
    d: usize,
    device: &Device,
) -> Result<Dynamics> {
    let mut dynamics = Dynamics::init(DynamicsConfig { layers, d_model: d }, 0, device)?;
    let named = prefixed("crsm.dynamics.", dynamics.named_parameters());
    f.take_parameters(&named, dynamics.parameters_mut(), device)?;
    Ok(dynamics)
}

/// `crsm.critic.{i}.*` heads of width `hidden`, the target's `value_mean` / `value_std` and the
/// certainty's `certainty_mean` / `certainty_std` (`held_out_rmse` is left empty: it comes from
/// the stage's report, not its weights file).
pub fn take_critic(
    f: &mut WeightsFile,
    layers: usize,
    d: usize,
    hidden: usize,
    device: &Device,
) -> Result<CriticPart> {
    let config = CriticConfig {
        layers,
        d_model: d,
        hidden,
    };
    let mut critic = Critic::init(config, 0, device)?;
    let named = prefixed(
        "crsm.critic.",
        critic
            .named_parameters()
            .iter()
            .map(|(n, t)| (n.as_str(), *t))
            .collect(),
    );
    f.take_parameters(&named, critic.parameters_mut(), device)?;
    Ok(CriticPart {
        critic,
        value_mean: f.take("crsm.critic.value_mean", &[1])?[0],
        value_std: f.take("crsm.critic.value_std", &[1])?[0],
        certainty_mean: f.take("crsm.critic.certainty_mean", &[1])?[0],
        certainty_std: f.take("crsm.critic.certainty_std", &[1])?[0],
        held_out_rmse: Vec::new(),
    })
}

/// `crsm.gates.weight` / `bias`, [L] each.
pub fn take_gates(f: &mut WeightsFile, layers: usize, device: &Device) -> Result<Gates> {
    let mut gates = Gates::init(layers, device)?;
    let named = prefixed("crsm.gates.", gates.named_parameters());
    f.take_parameters(&named, gates.parameters_mut(), device)?;
    Ok(gates)
}

/// `crsm.broadcaster.*` for L layers of width D over SSM states [E, N]; its ranks are read off
/// the first layer's maps (`0.input` [r, D], `0.out_add` [E, c]).
pub fn take_broadcaster(
    f: &mut WeightsFile,
    layers: usize,
    d: usize,
    e: usize,
    n: usize,
    device: &Device,
) -> Result<Broadcaster> {
    let rank_of = |f: &WeightsFile, name: &str, axis: usize| -> Result<usize> {
        f.shape(&format!("{BROADCASTER}{name}"))
            .and_then(|s| s.get(axis).copied())
            .ok_or_else(|| Error::Checkpoint {
                file: f.file().to_string(),
                tensor: format!("{BROADCASTER}{name}"),
                detail: "missing: the broadcaster is listed but this tensor is not there".into(),
            })
    };
    let config = BroadcasterConfig {
        layers,
        d_model: d,
        d_inner: e,
        d_state: n,
        rank: rank_of(f, "0.input", 0)?,
        channel_rank: rank_of(f, "0.out_add", 1)?,
    };
    let mut b = Broadcaster::init(config, 0, device)?;
    let named: Vec<(String, Vec<usize>)> = b
        .named_parameters()
        .into_iter()
        .map(|(name, t)| (format!("{BROADCASTER}{name}"), t.shape().to_vec()))
        .collect();
    f.take_parameters(&named, b.parameters_mut(), device)?;
    b.h_scale = f.take(&format!("{BROADCASTER}h_scale"), &[layers])?;
    b.delta_scale = f.take(&format!("{BROADCASTER}delta_scale"), &[layers])?;
    Ok(b)
}

fn prefixed(prefix: &str, named: Vec<(&str, &Tensor)>) -> Vec<(String, Vec<usize>)> {
    named
        .into_iter()
        .map(|(n, t)| (format!("{prefix}{n}"), t.shape().to_vec()))
        .collect()
}
