//! Stage 3, `crsm-train assemble`: gathers what the stages wrote into one checkpoint folder
//! (`latent::checkpoint`): the stage-1 backbone, the standardiser and dynamics from the distill
//! stage's newest checkpoint, `<distill.out_dir>/broadcaster.safetensors` when there is one, the
//! critic's heads with the held-out errors of its report, and fresh injection gates. A part
//! whose stage has not run is left out (and not listed); the backbone is required.
//!
//! The folder is written beside its place (`<out_dir>.partial`) and then swapped in, so a crash
//! leaves the previous assembly or none, never a mixture.

use std::path::{Path, PathBuf};

use crate::Device;
use crate::data::sha256_file;
use crate::error::{Error, Result};
use crate::io::WeightsFile;
use crate::latent::Gates;
use crate::latent::checkpoint::{
    CrsmCheckpoint, Stage, take_broadcaster, take_critic, take_dynamics, take_standardizer,
};
use crate::train::RunConfig;
use crate::train::assemble_config::AssembleConfig;
use crate::train::checkpoint::latest_checkpoint;
use crate::train::critic_task::CRITIC_FILE;
use crate::train::dynamics_task::DYNAMICS_FILE;
use crate::train::stage_manifest::{Inputs, MANIFEST_FILE, json_sha256};
use crate::train::stage_source::{StageSource, stage1_source};

/// The broadcaster's file in the distill stage's folder (optional).
pub const BROADCASTER_FILE: &str = "broadcaster.safetensors";

/// The files an assembly reads; absent parts are None.
pub struct AssembleSources {
    pub dynamics: Option<PathBuf>,
    pub broadcaster: Option<PathBuf>,
    /// The heads' weights and the report whose held-out errors go with them.
    pub critic: Option<(PathBuf, PathBuf)>,
    /// Why a part that has files was left out.
    pub notes: Vec<String>,
}

pub struct AssembleReport {
    pub out_dir: PathBuf,
    pub stages: Vec<Stage>,
    pub notes: Vec<String>,
}

pub fn section(config: &RunConfig, file: &str) -> Result<AssembleConfig> {
    config.assemble.clone().ok_or_else(|| Error::Config {
        file: file.into(),
        field: "assemble".into(),
        detail: "missing section: `\"assemble\": {\"out_dir\": ...}` (see configs/nano.json)"
            .into(),
    })
}

/// Finds the stages' files for `config`; the critic only when `include_critic`.
pub fn sources(config: &RunConfig, file: &str, include_critic: bool) -> Result<AssembleSources> {
    let mut s = AssembleSources {
        dynamics: None,
        broadcaster: None,
        critic: None,
        notes: Vec::new(),
    };
    if let Some(d) = &config.distill {
        let run = d.loop_config(file)?.out_dir;
        s.dynamics = latest_checkpoint(Path::new(&run)).map(|dir| dir.join(DYNAMICS_FILE));
        let b = Path::new(&d.out_dir).join(BROADCASTER_FILE);
        s.broadcaster = b.is_file().then_some(b);
        if let (Some(c), true) = (&config.critic, include_critic) {
            let run = c.loop_config(&d.traces_dir("train"), file)?.out_dir;
            let report = Path::new(&c.out_dir).join("critic.json");
            match latest_checkpoint(Path::new(&run)) {
                Some(dir) if report.is_file() => s.critic = Some((dir.join(CRITIC_FILE), report)),
                Some(_) => s.notes.push(format!(
                    "critic left out: {run} has heads but {} is missing (the stage did not finish)",
                    report.display()
                )),
                None => {}
            }
        }
    }
    if s.dynamics.is_none() && s.critic.is_some() {
        s.notes
            .push("critic left out: it needs the distill stage's standardiser".into());
        s.critic = None;
    }
    Ok(s)
}

impl AssembleSources {
    /// What an assembly from these files reads, hashed (the stage manifest's inputs).
    pub fn inputs(&self, section: &AssembleConfig, stage1: &StageSource) -> Result<Inputs> {
        let mut inputs = Inputs::new();
        inputs.insert("assemble".into(), json_sha256(section));
        inputs.insert("backbone".into(), stage1.hash.clone());
        if let Some(p) = &self.dynamics {
            inputs.insert("dynamics".into(), sha256_file(p)?);
        }
        if let Some(p) = &self.broadcaster {
            inputs.insert("broadcaster".into(), sha256_file(p)?);
        }
        if let Some((w, r)) = &self.critic {
            inputs.insert("critic".into(), sha256_file(w)?);
            inputs.insert("critic_report".into(), sha256_file(r)?);
        }
        Ok(inputs)
    }
}

/// Builds the checkpoint from `sources` over the stage-1 backbone (every file read strictly).
pub fn gather(
    stage1: &StageSource,
    sources: &AssembleSources,
    config: &RunConfig,
    device: &Device,
) -> Result<CrsmCheckpoint> {
    let mut out = CrsmCheckpoint::backbone_only(stage1.model.clone());
    let c = &stage1.model.config;
    let (layers, d) = (c.applications(), c.hidden_size);
    if let Some(path) = &sources.dynamics {
        let mut f = WeightsFile::open(path)?;
        out.standardizer = Some(take_standardizer(&mut f, layers, d)?);
        out.dynamics = Some(take_dynamics(&mut f, layers, d, device)?);
        f.finish("the distill stage's weights file holds the standardiser and the dynamics only")?;
    }
    if let Some(path) = &sources.broadcaster {
        let mut f = WeightsFile::open(path)?;
        out.broadcaster = Some(take_broadcaster(
            &mut f,
            layers,
            d,
            c.d_inner(),
            c.state_size,
            device,
        )?);
        f.finish("the broadcaster's file holds crsm.broadcaster.* only")?;
    }
    if let (Some((weights, report)), Some(section)) = (&sources.critic, &config.critic) {
        let mut f = WeightsFile::open(weights)?;
        let mut part = take_critic(&mut f, layers, d, section.hidden, device)?;
        f.finish("the critic stage's weights file holds the heads and the scales they read only")?;
        part.held_out_rmse = held_out_rmse(report, layers)?;
        out.critic = Some(part);
    }
    out.gates = Some(Gates::init(layers, device)?);
    Ok(out)
}

/// Each head's held-out RMSE from the critic's report (`heads[i].rmse_standard`).
fn held_out_rmse(report: &Path, layers: usize) -> Result<Vec<f32>> {
    let value: serde_json::Value = crate::io::read_json(report)?;
    let err = |detail: String| Error::Config {
        file: report.display().to_string(),
        field: "heads".into(),
        detail,
    };
    let heads = value["heads"]
        .as_array()
        .ok_or_else(|| err("missing: the critic's report lists no heads".into()))?;
    if heads.len() != layers {
        return Err(err(format!(
            "{} heads, the backbone has {layers} layers",
            heads.len()
        )));
    }
    heads
        .iter()
        .enumerate()
        .map(|(i, h)| {
            h["rmse_standard"]
                .as_f64()
                .map(|x| x as f32)
                .ok_or_else(|| err(format!("heads[{i}].rmse_standard is not a number")))
        })
        .collect()
}

/// Runs the stage: gathers, then replaces `assemble.out_dir` with the new folder.
pub fn assemble(
    config: &RunConfig,
    file: &str,
    device: &Device,
    include_critic: bool,
) -> Result<AssembleReport> {
    let section = section(config, file)?;
    let stage1 = stage1_source(
        config,
        file,
        device,
        &format!("run `crsm-train pretrain --config {file}` first"),
    )?;
    let sources = sources(config, file, include_critic)?;
    let checkpoint = gather(&stage1, &sources, config, device)?;
    let out_dir = PathBuf::from(&section.out_dir);
    write_folder(
        &checkpoint,
        &out_dir,
        Path::new(&config.training.tokenizer),
        file,
    )?;
    Ok(AssembleReport {
        out_dir,
        stages: checkpoint.stages(),
        notes: sources.notes,
    })
}

/// The files an assembled folder may hold; a folder with anything else is not replaced.
const FOLDER_FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    crate::latent::CRSM_FILE,
    MANIFEST_FILE,
    "tokenizer.json",
];

/// Writes `checkpoint` (and a copy of the run's `tokenizer`, so `generate --model` has text) to
/// `<out_dir>.partial`, then swaps it in for `out_dir`. An existing `out_dir` holding anything but
/// an assembly's files is refused (it is not ours to delete).
fn write_folder(
    checkpoint: &CrsmCheckpoint,
    out_dir: &Path,
    tokenizer: &Path,
    file: &str,
) -> Result<()> {
    use crate::io::steps::{remove_dir_all, rename};
    if out_dir.exists() {
        let entries = std::fs::read_dir(out_dir).map_err(|source| Error::Io {
            path: out_dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !FOLDER_FILES.contains(&name.as_str()) {
                return Err(Error::Config {
                    file: file.into(),
                    field: "assemble.out_dir".into(),
                    detail: format!(
                        "{} holds {name}, which an assembly does not write; choose an empty or \
                         new folder (it is replaced as a whole)",
                        out_dir.display()
                    ),
                });
            }
        }
    }
    let mut partial = out_dir.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    if partial.exists() {
        remove_dir_all(&partial)?;
    }
    checkpoint.save(&partial)?;
    if tokenizer.is_file() {
        let bytes = std::fs::read(tokenizer).map_err(|source| Error::Io {
            path: tokenizer.display().to_string(),
            source,
        })?;
        crate::io::write_atomic(&partial.join("tokenizer.json"), &bytes)?;
    }
    if out_dir.exists() {
        remove_dir_all(out_dir)?;
    }
    rename(&partial, out_dir)
}
