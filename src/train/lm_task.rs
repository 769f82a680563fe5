//! Stage 1's objective (pretraining, SFT): the backbone on next-token cross-entropy over a token
//! shard, `IGNORE` where a target carries no loss; held-out loss and bits per byte.

use std::path::{Path, PathBuf};

use crate::Device;
use crate::autograd::no_grad;
use crate::data::{
    BatchStream, DataPosition, TokenShard, bits_per_byte, eval_batches, sha256_file,
};
use crate::error::{Error, Result};
use crate::model::Backbone;
use crate::ops;
use crate::tensor::Tensor;
use crate::train::drift::RunRecord;
use crate::train::task::{Task, TaskEval};
use crate::train::trainer::{Start, Trainer};
use crate::train::{Precision, RunConfig, causal_lm_loss};

pub struct LmTask {
    pub model: Backbone,
    train: BatchStream,
    val: TokenShard,
    /// f16 matmul operands in the training forward (and so its backward); evaluation stays f32.
    f16_matmuls: bool,
}

impl LmTask {
    pub fn new(model: Backbone, train: BatchStream, val: TokenShard, f16_matmuls: bool) -> Self {
        LmTask {
            model,
            train,
            val,
            f16_matmuls,
        }
    }

    pub fn train_stream(&self) -> &BatchStream {
        &self.train
    }

    pub fn val_shard(&self) -> &TokenShard {
        &self.val
    }
}

/// Weight decay applies to matrices and embeddings, not to norms, biases, A_log or D (Mamba's
/// `_no_weight_decay` parameters), fusion weights or adapters (all of rank 1 except A_log).
fn decays(name: &str, shape: &[usize]) -> bool {
    shape.len() >= 2 && !name.ends_with("A_log")
}

impl Task for LmTask {
    fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        self.model.named_parameters()
    }

    fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        self.model.parameters_mut()
    }

    fn decays(&self) -> Vec<bool> {
        self.model
            .named_parameters()
            .iter()
            .map(|(name, p)| decays(name, p.shape()))
            .collect()
    }

    fn next_loss(&mut self, batch_size: usize) -> Result<(Tensor, u64)> {
        let batch = self.train.next_batch(batch_size);
        let device = self.model.device();
        let tokens = (batch.batch * batch.seq) as u64;
        let inputs = Tensor::from_u32(batch.inputs, &[batch.batch, batch.seq], &device)?;
        let targets = Tensor::from_u32(batch.targets, &[batch.batch, batch.seq], &device)?;
        let _precision = ops::set_f16_matmuls(self.f16_matmuls);
        Ok((causal_lm_loss(&self.model, &inputs, &targets)?, tokens))
    }

    fn evaluate(&mut self, batch_size: usize, max_items: usize) -> Result<TaskEval> {
        let _off = no_grad();
        let device = self.model.device();
        let (mut nats, mut count) = (0f64, 0usize);
        let max_tokens = if max_items == 0 {
            usize::MAX
        } else {
            max_items
        };
        let seq = self.train.seq();
        for batch in eval_batches(&self.val, batch_size, seq, max_tokens) {
            if batch.loss_tokens == 0 {
                continue;
            }
            let inputs = Tensor::from_u32(batch.inputs, &[batch.batch, batch.seq], &device)?;
            let targets = Tensor::from_u32(batch.targets, &[batch.batch, batch.seq], &device)?;
            let loss = causal_lm_loss(&self.model, &inputs, &targets)?.scalar()?;
            nats += loss as f64 * batch.loss_tokens as f64;
            count += batch.loss_tokens;
        }
        if count == 0 {
            return Err(Error::InvalidArgument {
                op: "LmTask::evaluate",
                detail: format!(
                    "the validation shard {} has no scored tokens",
                    self.val.file()
                ),
            });
        }
        Ok(TaskEval {
            loss: nats / count as f64,
            bpb: bits_per_byte(nats, count, self.val.header()),
            count,
        })
    }

    fn data_position(&self) -> DataPosition {
        self.train.position()
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        self.model.save(dir)
    }
}

/// Opens the train and validation shards of `config`, checking they were made with its tokenizer
/// and fit its model's vocabulary; also returns the tokenizer's hash.
fn open_shards(config: &RunConfig) -> Result<(TokenShard, TokenShard, String)> {
    let t = &config.training;
    let hash = sha256_file(Path::new(&t.tokenizer))?;
    let dir = Path::new(&t.data);
    let train = TokenShard::open(dir, "train", Some(&hash))?;
    let val = TokenShard::open(dir, "val", Some(&hash))?;
    for shard in [&train, &val] {
        let v = shard.header().vocab_size;
        if v > config.model.vocab_size {
            return Err(Error::Config {
                file: t.data.clone(),
                field: "model.vocab_size".into(),
                detail: format!(
                    "the shards' tokenizer has {v} tokens, the model only {}",
                    config.model.vocab_size
                ),
            });
        }
    }
    Ok((train, val, hash))
}

/// How the backbone of an LM run comes to be.
#[derive(Clone, Copy)]
enum Weights<'a> {
    Init(&'a Device),
    From(&'a Path, &'a Device),
}

impl Trainer<LmTask> {
    /// A new run: a freshly initialised model (seeded by `training.seed`) at step 0. Refused
    /// when `training.out_dir` holds a run (`run_dir::remove_run` deletes one).
    pub fn new(config: RunConfig, device: &Device) -> Result<Self> {
        Self::lm(config, Start::Fresh, Weights::Init(device))
    }

    /// A new run that starts from the weights of `init` (a model folder), e.g. SFT from a
    /// pretrained checkpoint; the optimizer and schedule start fresh.
    pub fn from_weights(config: RunConfig, init: &Path, device: &Device) -> Result<Self> {
        Self::lm(config, Start::Fresh, Weights::From(init, device))
    }

    /// Continues the run whose checkpoint is in `training.out_dir`: the same model, optimizer
    /// state, step, data position and metrics, so it goes on as if never stopped.
    pub fn resume(config: RunConfig, device: &Device) -> Result<Self> {
        Self::lm(config, Start::Resume, Weights::Init(device))
    }

    fn lm(config: RunConfig, start: Start, weights: Weights) -> Result<Self> {
        let (train_shard, val, tokenizer_hash) = open_shards(&config)?;
        let record = RunRecord::new(
            tokenizer_hash,
            train_shard.header(),
            val.header(),
            &config.training,
        )?;
        let training = config.training.clone();
        let tokenizer = Some(PathBuf::from(&training.tokenizer));
        let make = |checkpoint: Option<&Path>, position: DataPosition| -> Result<LmTask> {
            let (mut model, source) = match (checkpoint, weights) {
                (Some(dir), Weights::Init(device) | Weights::From(_, device)) => {
                    (Backbone::load(dir, device)?, ("the checkpoint's", dir))
                }
                (None, Weights::Init(device)) => (
                    Backbone::init(config.model.clone(), training.seed, device)?,
                    ("", Path::new("")),
                ),
                (None, Weights::From(init, device)) => (
                    Backbone::load(init, device)?,
                    ("the initial weights'", init),
                ),
            };
            let loaded = checkpoint.is_some() || matches!(weights, Weights::From(..));
            if loaded && model.config != config.model {
                return Err(Error::Config {
                    file: source.1.join("config.json").display().to_string(),
                    field: "model".into(),
                    detail: format!(
                        "{} model differs from the run config's model section",
                        source.0
                    ),
                });
            }
            model.set_checkpoint_segments(training.checkpoint_segments);
            let device = model.device();
            if training.precision == Precision::F16 && !device.supports_f16() {
                return Err(Error::Config {
                    file: "the run config".into(),
                    field: "training.precision".into(),
                    detail: format!(
                        "f16 needs a device with shader-f16, and {} has none; use \"f32\"",
                        device.name()
                    ),
                });
            }
            let train = BatchStream::resume(train_shard, training.seq_len, position)?;
            Ok(LmTask::new(
                model,
                train,
                val,
                training.precision == Precision::F16,
            ))
        };
        Trainer::start(config.training.clone(), start, record, tokenizer, make)
    }
}
