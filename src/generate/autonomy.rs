//! Autonomy (off by default): when the critic's value of the running state stays below a
//! threshold for `patience` steps, generation rewinds up to `rewind` tokens (restoring a snapshot
//! of the state) and resamples under the planner's guidance; at most `max_rewinds` times per
//! generation. This file keeps what a rewind needs: the recent checkpoints and the low-value run.

use std::collections::VecDeque;

use crate::state::State;

#[derive(Clone, Debug, PartialEq)]
pub struct Autonomy {
    /// The critic's mean value (nats per token) below which a step counts as low.
    pub threshold: f32,
    /// Consecutive low steps that trigger a rewind.
    pub patience: usize,
    /// Tokens to go back at most.
    pub rewind: usize,
    pub max_rewinds: usize,
}

impl Default for Autonomy {
    fn default() -> Self {
        Autonomy {
            threshold: -4.0,
            patience: 3,
            rewind: 4,
            max_rewinds: 2,
        }
    }
}

/// The state after `step` generated tokens, as a rewind restores it.
pub struct Checkpoint {
    pub step: u64,
    pub state: State,
    pub latents: Vec<f32>,
    pub last_token: u32,
    /// The logits generation chose the next token from (before guidance).
    pub logits: Vec<f32>,
}

/// The recent checkpoints and the run of low values.
pub struct Watch {
    pub config: Autonomy,
    checkpoints: VecDeque<Checkpoint>,
    low_run: usize,
    pub rewinds: usize,
}

impl Watch {
    pub fn new(config: Autonomy) -> Self {
        Watch {
            checkpoints: VecDeque::with_capacity(config.rewind + 1),
            config,
            low_run: 0,
            rewinds: 0,
        }
    }

    /// Records the checkpoint of a step and its value; returns the checkpoint to rewind to when
    /// the low run has lasted `patience` steps and rewinds are left (the oldest kept, at most
    /// `rewind` steps back).
    pub fn observe(&mut self, checkpoint: Checkpoint, value: f32) -> Option<Checkpoint> {
        if self.checkpoints.len() == self.config.rewind + 1 {
            self.checkpoints.pop_front();
        }
        let step = checkpoint.step;
        self.checkpoints.push_back(checkpoint);
        self.low_run = if value < self.config.threshold {
            self.low_run + 1
        } else {
            0
        };
        let ready = self.low_run >= self.config.patience && self.rewinds < self.config.max_rewinds;
        if !ready || self.checkpoints.front().is_none_or(|c| c.step >= step) {
            return None;
        }
        self.rewinds += 1;
        self.low_run = 0;
        let to = self.checkpoints.pop_front();
        // Steps after the one rewound to are about a text that no longer exists.
        self.checkpoints.clear();
        to
    }
}
