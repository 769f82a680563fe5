//! Stage 4, `crsm-train critic`: value targets on the distill stage's traces through the
//! stage-1 backbone's own head, one value head per layer trained by the one trainer on
//! `CriticTask`, and the held-out report: Pearson and Spearman of predicted against realised
//! value per head and for the heads' mean, each head's held-out RMSE (what `confidence` reads),
//! and calibration bins (`critic.json`); and, where the training traces have a part to spare,
//! the heads' mean on that last part (unseen windows of the training text), which tells a shift
//! between texts from a critic that ranks nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::Device;
use crate::data::Tokenizer;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::latent::correlation::{pearson, spearman};
use crate::latent::trace_shards::TraceSet;
use crate::latent::value_target::trace_values;
use crate::latent::{BackboneHead, Critic, CriticConfig, LatentTrace, Standardizer};
use crate::tasks::read_problems;
use crate::train::critic_task::{CriticTask, ValuedTrace};
use crate::train::stage_source::{StageSource, stage1_source, traces_record};
use crate::train::task_rewards::{RewardTrace, task_reward_trace};
use crate::train::{RunConfig, Start, TrainObserver, Trainer};

/// Bins of the calibration curve (equal counts by predicted value).
const CALIBRATION_BINS: usize = 10;

#[derive(Clone, Debug, serde::Serialize)]
pub struct HeadFit {
    pub pearson: f64,
    pub spearman: f64,
    /// Held-out RMSE in standard units of the target (what `latent::confidence` reads).
    pub rmse_standard: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CriticReport {
    pub heads: Vec<HeadFit>,
    /// The heads' mean prediction, on the held-out text (the val shard).
    pub mean: HeadFit,
    /// The baseline the heads must beat: the policy's certainty alone (Pearson and Spearman of
    /// the certainty against the realised value on the held-out text; scale-free, so no RMSE).
    pub certainty_only: Baseline,
    /// The heads' mean on the last training part, never trained on (None when the traces have
    /// one part only): held-out windows of the training text.
    pub same_text: Option<HeadFit>,
    /// (mean predicted, mean realised, count) per bin of the heads' mean, nats per token.
    pub calibration: Vec<(f64, f64, usize)>,
    pub held_out_positions: usize,
    /// A reasoning run: the share of the stage-1 model's sampled answers the verifier accepted,
    /// on the critic's training and held-out problems.
    pub task_success: Option<(f64, f64)>,
    /// A reasoning run: the fit on the held-out answers by answer token (the first
    /// `BY_STEP_REPORTED`): whether the critic tells right from wrong after the token a search
    /// would choose, or only later in an answer.
    pub by_answer_step: Option<Vec<StepFit>>,
    pub critic_parameters: usize,
    pub minutes: f64,
}

/// The heads' mean against the realised reward at the states one answer token is chosen from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepFit {
    pub step: usize,
    pub positions: usize,
    pub pearson: f64,
    /// The policy's certainty alone at the same states.
    pub certainty_pearson: f64,
}

/// The answer tokens `by_answer_step` reports.
const BY_STEP_REPORTED: usize = 16;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Baseline {
    pub pearson: f64,
    pub spearman: f64,
}

/// `StepFit`s of the positions whose answer step is 0, 1, ... (`steps`, `pred`, `real` and
/// `certainty` aligned, one per held-out position).
fn by_step(steps: &[usize], pred: &[f64], real: &[f64], certainty: &[f64]) -> Vec<StepFit> {
    (0..BY_STEP_REPORTED)
        .filter_map(|step| {
            let at: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] == step).collect();
            let pick = |xs: &[f64]| at.iter().map(|&i| xs[i]).collect::<Vec<f64>>();
            let real = pick(real);
            (!at.is_empty()).then(|| StepFit {
                step,
                positions: at.len(),
                pearson: pearson(&pick(pred), &real),
                certainty_pearson: pearson(&pick(certainty), &real),
            })
        })
        .collect()
}

fn fit(pred: &[f64], real: &[f64], std: f64) -> HeadFit {
    let mse = pred
        .iter()
        .zip(real)
        .map(|(p, r)| (p - r).powi(2))
        .sum::<f64>()
        / pred.len() as f64;
    HeadFit {
        pearson: pearson(pred, real),
        spearman: spearman(pred, real),
        rmse_standard: mse.sqrt() / std,
    }
}

fn calibration(pred: &[f64], real: &[f64]) -> Vec<(f64, f64, usize)> {
    let mut order: Vec<usize> = (0..pred.len()).collect();
    order.sort_by(|&a, &b| pred[a].total_cmp(&pred[b]));
    order
        .chunks(pred.len().div_ceil(CALIBRATION_BINS).max(1))
        .map(|bin| {
            let n = bin.len() as f64;
            (
                bin.iter().map(|&i| pred[i]).sum::<f64>() / n,
                bin.iter().map(|&i| real[i]).sum::<f64>() / n,
                bin.len(),
            )
        })
        .collect()
}

pub fn critic(
    config: &RunConfig,
    file: &str,
    device: &Device,
    resume: bool,
    observer: &mut dyn TrainObserver,
) -> Result<CriticReport> {
    let started = Instant::now();
    let missing = |field: &str, detail: &str| Error::Config {
        file: file.into(),
        field: field.into(),
        detail: detail.into(),
    };
    let c = config
        .critic
        .clone()
        .ok_or_else(|| missing("critic", "missing section (see configs/nano.json)"))?;
    let d = config
        .distill
        .clone()
        .ok_or_else(|| missing("distill", "the critic trains on the distill stage's traces"))?;
    let StageSource {
        model,
        hash: source_hash,
        ..
    } = stage1_source(config, file, device, "run pretrain, then distill, first")?;
    let open = |split: &str| -> Result<TraceSet> {
        TraceSet::open(&PathBuf::from(d.traces_dir(split)), Some(&source_hash)).map_err(|e| {
            Error::Config {
                file: file.into(),
                field: "distill.out_dir".into(),
                detail: format!(
                    "no usable traces ({e}); run `crsm-train distill --config {file}` first"
                ),
            }
        })
    };
    let (train_set, val_set) = (open("train")?, open("val")?);
    let head = BackboneHead(&model);
    let valued_trace = |trace: LatentTrace| -> Result<ValuedTrace> {
        let v = trace_values(&head, &trace, c.horizon, c.gamma)?;
        Ok(ValuedTrace {
            trace,
            values: v.values,
            certainty: v.certainty,
        })
    };
    let valued = |set: &TraceSet, parts: usize| -> Result<ValuedTrace> {
        valued_trace(set.first_parts(parts)?)
    };
    let (train, same_text, val, task_success, val_steps) = match &config.tasks {
        // A reasoning run: task reward of the model's own sampled answers.
        Some(t) => {
            let tokenizer = Tokenizer::from_file(Path::new(&config.training.tokenizer))?;
            let mut answered = |file: String, n: usize, seed: u64| -> Result<RewardTrace> {
                let problems = read_problems(Path::new(&file))?;
                let problems = &problems[..n.min(problems.len())];
                observer.note(&format!(
                    "critic: the stage-1 model answers {} problems of {file} (sampled)",
                    problems.len()
                ));
                task_reward_trace(
                    &model,
                    &tokenizer,
                    problems,
                    1,
                    t.max_answer_tokens,
                    t.temperature,
                    c.seed + seed,
                    |_| {},
                )
            };
            let train = answered(t.critic_file(), t.critic_problems, 0)?;
            let val = answered(t.val_file(), t.critic_val_problems, 1)?;
            let val_steps = val.answer_steps();
            (
                train.valued,
                None,
                val.valued,
                Some((train.success, val.success)),
                Some(val_steps),
            )
        }
        None => {
            // The last training part is kept out when there is more than one, for `same_text`.
            let total = train_set.header.parts();
            let train_parts = c.parts.min(total.saturating_sub(1)).max(1);
            let train = valued(&train_set, train_parts)?;
            let same_text = if total > train_parts {
                Some(valued_trace(train_set.part(total - 1)?)?)
            } else {
                None
            };
            (train, same_text, valued(&val_set, usize::MAX)?, None, None)
        }
    };
    // The held-out positions with a target, in the order predictions come (`ValuedTrace::scored`).
    let scored = |xs: &[f32]| -> Vec<f64> {
        (xs.iter().zip(&val.values))
            .filter(|(_, v)| v.is_finite())
            .map(|(&x, _)| x as f64)
            .collect()
    };
    let val_certainty = scored(&val.certainty);
    let certainty_only = {
        let v = scored(&val.values);
        Baseline {
            pearson: pearson(&val_certainty, &v),
            spearman: spearman(&val_certainty, &v),
        }
    };
    let (layers, dm) = (train_set.header.layers, train_set.header.d_model);
    let standardizer = Standardizer::fit(&train_set.part(0)?.z, layers, dm)?;
    let training = c.loop_config(&d.traces_dir("train"), file)?;
    let record = traces_record(
        train_set.header.tokenizer_hash.clone(),
        &PathBuf::from(d.traces_dir("train")),
        &training,
        "critic",
        file,
    )?;
    let (mut train, mut val) = (Some(train), Some(val));
    let make = |checkpoint: Option<&Path>, position| {
        let critic = Critic::init(
            CriticConfig {
                layers,
                d_model: dm,
                hidden: c.hidden,
            },
            c.seed,
            device,
        )?;
        let (tr, va) = (
            train.take().expect("the task is made once"),
            val.take().expect("the task is made once"),
        );
        let mut task = CriticTask::new(critic, standardizer.clone(), tr, va, position)?;
        if let Some(dir) = checkpoint {
            task.load_weights(dir)?;
        }
        Ok(task)
    };
    let start = if resume { Start::Resume } else { Start::Fresh };
    let mut trainer = Trainer::start(training, start, record, None, make)?;
    trainer.run(None, observer)?;
    let task = &trainer.task;
    let (heads, real) = task.held_out_predictions()?;
    let std = task.value_std as f64;
    let mean_of = |heads: &[Vec<f64>], n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| heads.iter().map(|h| h[i]).sum::<f64>() / heads.len() as f64)
            .collect()
    };
    let mean_pred = mean_of(&heads, real.len());
    let same_text = match &same_text {
        Some(data) => {
            let (h, r) = task.predictions(data)?;
            Some(fit(&mean_of(&h, r.len()), &r, std))
        }
        None => None,
    };
    let by_answer_step = val_steps.map(|steps| by_step(&steps, &mean_pred, &real, &val_certainty));
    let report = CriticReport {
        heads: heads.iter().map(|h| fit(h, &real, std)).collect(),
        mean: fit(&mean_pred, &real, std),
        certainty_only,
        same_text,
        calibration: calibration(&mean_pred, &real),
        held_out_positions: real.len(),
        task_success,
        by_answer_step,
        critic_parameters: task.critic.parameter_count(),
        minutes: started.elapsed().as_secs_f64() / 60.0,
    };
    let text = serde_json::to_string_pretty(&report).expect("a report serialises");
    write_atomic(&Path::new(&c.out_dir).join("critic.json"), text.as_bytes())?;
    Ok(report)
}
