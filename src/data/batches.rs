//! Batches for training and evaluation from a token shard. A sequence of length L reads a window
//! of L + 1 tokens: inputs are its first L, targets its last L (next-token prediction), with
//! `IGNORE` where the target token carries no loss. Windows start every L tokens, so each token
//! is a target exactly once per epoch. Training visits the windows in a seeded permutation per
//! epoch; `DataPosition` (seed, epoch, index) is all a checkpoint needs to resume the exact
//! stream. Evaluation walks the windows in order.

use serde::{Deserialize, Serialize};

use super::shards::{ShardHeader, TokenShard};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The target id that carries no loss (prompt tokens in SFT, padding). u32::MAX is never a real
/// token id.
pub const IGNORE: u32 = u32::MAX;

/// B sequences of L tokens, row-major [B, L].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    /// The next token of each input, or `IGNORE` where it carries no loss.
    pub targets: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
    /// Targets that are not `IGNORE`.
    pub loss_tokens: usize,
}

/// Where a `BatchStream` is: the next batch starts at window `index` of epoch `epoch`'s
/// permutation of the windows (the permutation is a function of `seed` and `epoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataPosition {
    pub seed: u64,
    pub epoch: u64,
    pub index: usize,
}

/// Endless training batches over a shard, in a seeded order that restarts identically from a
/// `DataPosition`.
#[derive(Debug)]
pub struct BatchStream {
    shard: TokenShard,
    seq: usize,
    position: DataPosition,
    /// Window numbers of the current epoch, in visiting order.
    order: Vec<usize>,
}

impl BatchStream {
    /// A stream at the start of epoch 0. Errors if the shard holds no window of `seq + 1` tokens.
    pub fn new(shard: TokenShard, seq: usize, seed: u64) -> Result<Self> {
        Self::resume(
            shard,
            seq,
            DataPosition {
                seed,
                epoch: 0,
                index: 0,
            },
        )
    }

    /// A stream that yields exactly what the stream that reported `position` would yield next.
    pub fn resume(shard: TokenShard, seq: usize, position: DataPosition) -> Result<Self> {
        let windows = window_count(shard.len(), seq);
        if windows == 0 {
            return Err(Error::Data {
                file: shard.file().to_string(),
                line: None,
                detail: format!(
                    "{} tokens hold no training sequence of {seq} + 1 tokens",
                    shard.len()
                ),
            });
        }
        if position.index > windows {
            return Err(Error::InvalidArgument {
                op: "BatchStream::resume",
                detail: format!(
                    "position index {} is past the {windows} sequences of {} (was it saved with another --seq or shard?)",
                    position.index,
                    shard.file()
                ),
            });
        }
        Ok(BatchStream {
            order: permutation(windows, position.seed, position.epoch),
            shard,
            seq,
            position,
        })
    }

    pub fn position(&self) -> DataPosition {
        self.position
    }

    /// Sequences (windows) per epoch.
    pub fn windows_per_epoch(&self) -> usize {
        self.order.len()
    }

    pub fn shard(&self) -> &TokenShard {
        &self.shard
    }

    /// Tokens per sequence.
    pub fn seq(&self) -> usize {
        self.seq
    }

    /// The next `batch` sequences; an epoch that runs out mid-batch continues into the next one.
    pub fn next_batch(&mut self, batch: usize) -> Batch {
        let mut out = Batch::empty(self.seq);
        let mut scratch = Scratch::default();
        for _ in 0..batch {
            if self.position.index == self.order.len() {
                self.position.epoch += 1;
                self.position.index = 0;
                self.order = permutation(self.order.len(), self.position.seed, self.position.epoch);
            }
            let window = self.order[self.position.index];
            self.position.index += 1;
            out.push_window(&self.shard, window * self.seq, &mut scratch);
        }
        out
    }
}

/// The first `max_tokens` tokens of `shard` (all of it if fewer) as batches of up to `batch`
/// sequences, in order; the last batch may be smaller. A window never reads past `max_tokens`.
pub fn eval_batches(
    shard: &TokenShard,
    batch: usize,
    seq: usize,
    max_tokens: usize,
) -> impl Iterator<Item = Batch> + '_ {
    let windows = window_count(shard.len().min(max_tokens), seq);
    let batch = batch.max(1);
    let mut scratch = Scratch::default();
    (0..windows).step_by(batch).map(move |first| {
        let mut out = Batch::empty(seq);
        for window in first..(first + batch).min(windows) {
            out.push_window(shard, window * seq, &mut scratch);
        }
        out
    })
}

/// Bits per byte from summed cross-entropy: `nats` over `targets` predicted tokens of a shard
/// whose `count` tokens encode `bytes` bytes of text. Those tokens stand for
/// `targets * bytes / count` bytes on average, so bpb = nats / ln 2 / (bytes * targets / count).
/// (Tokenizer-independent, so models with different vocabularies compare.) `None` when the
/// shard or the evaluation is empty.
pub fn bits_per_byte(nats: f64, targets: usize, header: &ShardHeader) -> Option<f64> {
    if targets == 0 || header.count == 0 || header.bytes == 0 {
        return None;
    }
    let bytes = header.bytes as f64 * targets as f64 / header.count as f64;
    Some(nats / std::f64::consts::LN_2 / bytes)
}

/// Windows of `seq + 1` tokens at stride `seq` that fit in `len` tokens.
fn window_count(len: usize, seq: usize) -> usize {
    len.saturating_sub(1).checked_div(seq).unwrap_or(0)
}

/// Fisher-Yates shuffle of 0..n, a function of (seed, epoch) only.
/// (Public for the other seeded streams, e.g. the dynamics task's order of trace samples.)
pub fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Buffers reused across the windows of a batch.
#[derive(Default)]
struct Scratch {
    ids: Vec<u32>,
    loss: Vec<bool>,
}

impl Batch {
    fn empty(seq: usize) -> Self {
        Batch {
            inputs: Vec::new(),
            targets: Vec::new(),
            batch: 0,
            seq,
            loss_tokens: 0,
        }
    }

    /// Appends the sequence whose window starts at token `start` (the caller keeps
    /// `start + seq + 1 <= shard.len()`).
    fn push_window(&mut self, shard: &TokenShard, start: usize, scratch: &mut Scratch) {
        let n = self.seq + 1;
        // In range by construction (window_count), so these reads cannot fail.
        if shard.read(start, n, &mut scratch.ids).is_err()
            || shard.carries_loss(start, n, &mut scratch.loss).is_err()
        {
            return;
        }
        self.inputs.extend_from_slice(&scratch.ids[..self.seq]);
        for (&id, &loss) in scratch.ids[1..].iter().zip(&scratch.loss[1..]) {
            self.targets.push(if loss { id } else { IGNORE });
            self.loss_tokens += usize::from(loss);
        }
        self.batch += 1;
    }
}
