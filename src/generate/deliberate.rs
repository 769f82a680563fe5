//! Generation with deliberation: a `NextToken` over the backbone whose state the planner steers.
//!
//! Steps count generated tokens. After the model reads token t it posts a snapshot of the state
//! (async) or plans at once (sync); a plan is for token T: its improved policy steers the choice
//! of token T (guidance, beta) and, once token T is read, its target latent is turned into target
//! SSM states by the broadcaster (from the state as it is then) and blended in per layer through
//! the gates (injection), before the next step reads the state. Plans that arrive late are
//! decayed or dropped by the delta buffer. `off` is the plain session.

use std::sync::Arc;

use crate::autograd::no_grad;
use crate::data::Tokenizer;
use crate::error::{Error, Result};
use crate::generate::NextToken;
use crate::generate::autonomy::{Autonomy, Checkpoint, Watch};
use crate::planner::deliberation::Deliberation;
use crate::planner::delta_buffer::{BufferConfig, Counts, DeltaBuffer, Outcome};
use crate::planner::injection::{Injected, inject};
use crate::planner::latent_model::LatentModel;
use crate::planner::plan::{Plan, Snapshot};
use crate::planner::planning::{PlannerConfig, plan};
use crate::state::State;
use crate::tensor::Tensor;
use crate::trace::{RootChoice, TraceEvent, TraceWriter};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    /// The CRSM mode: generation never waits for the planner.
    Async,
    /// Search before every token, blocking: the upper bound async is measured against.
    Sync,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Async => "async",
            Mode::Sync => "sync",
        }
    }
}

/// How plans act on generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Steering {
    /// a_i = injection_rate * sigmoid(gate_i(confidence_i)); 0 turns injection off.
    pub injection_rate: f32,
    /// A layer whose alpha is below this is left untouched.
    pub alpha_floor: f32,
    /// beta: p_model(t) (pi_plan(t) / prior_plan(t))^beta on the plan's tokens, p_model
    /// elsewhere (`guide`); 0 turns guidance off (the logits are then returned untouched).
    pub guidance: f32,
    pub buffer: BufferConfig,
    /// Rewind and resample under guidance when the critic's value stays low (off: None).
    pub autonomy: Option<Autonomy>,
}

impl Default for Steering {
    fn default() -> Self {
        Steering {
            injection_rate: 0.1,
            alpha_floor: 1e-3,
            guidance: 0.5,
            buffer: BufferConfig::default(),
            autonomy: None,
        }
    }
}

/// Counters of one generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct DeliberationStats {
    pub steps: u64,
    pub snapshots: u64,
    pub plans: Counts,
    pub guided: u64,
    pub rewinds: u64,
}

pub struct DeliberateSession {
    model: Arc<LatentModel>,
    mode: Mode,
    steering: Steering,
    planner: PlannerConfig,
    thread: Option<Deliberation>,
    buffer: DeltaBuffer,
    state: State,
    /// Latents after the last token read (raw units), and that token.
    latents: Vec<f32>,
    last_token: u32,
    /// Generated tokens read so far, and the tokens chosen (token 1 first; the last chosen one
    /// may not be read yet).
    step: u64,
    generated: Vec<u32>,
    /// The entropy of the logits last returned (for the trace).
    entropy: f32,
    trace: Option<TraceWriter>,
    tokenizer: Option<Tokenizer>,
    watch: Option<Watch>,
    /// Set by a rewind, taken by the generation loop.
    rewound: Option<usize>,
    pub stats: DeliberationStats,
}

impl DeliberateSession {
    /// `generation` tells this call's plans from any other's. `threads`: the planner thread's
    /// own pool (async only).
    pub fn new(
        model: Arc<LatentModel>,
        mode: Mode,
        steering: Steering,
        planner: PlannerConfig,
        threads: usize,
        generation: u64,
    ) -> Result<Self> {
        let thread = match mode {
            Mode::Async => Some(Deliberation::start(
                model.clone(),
                planner.clone(),
                threads,
            )?),
            _ => None,
        };
        let state = model.backbone.new_state(1)?;
        let watch = match (&steering.autonomy, mode) {
            (Some(a), Mode::Async | Mode::Sync) => Some(Watch::new(a.clone())),
            _ => None,
        };
        Ok(DeliberateSession {
            watch,
            rewound: None,
            buffer: DeltaBuffer::new(generation, steering.buffer),
            model,
            mode,
            steering,
            planner,
            thread,
            state,
            latents: Vec::new(),
            last_token: 0,
            step: 0,
            generated: Vec::new(),
            entropy: 0.0,
            trace: None,
            tokenizer: None,
            stats: DeliberationStats::default(),
        })
    }

    /// Writes the trace's events (the header is the writer's); `tokenizer` gives token texts.
    pub fn with_trace(mut self, trace: TraceWriter, tokenizer: Option<Tokenizer>) -> Self {
        self.trace = Some(trace);
        self.tokenizer = tokenizer;
        self
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    fn emit(&mut self, event: TraceEvent) -> Result<()> {
        match &mut self.trace {
            Some(t) => t.write(&event),
            None => Ok(()),
        }
    }

    /// Reads `id` (with the latents), and returns the next logits.
    fn read(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        let _off = no_grad();
        let device = self.model.backbone.device();
        let (&last, before) = ids.split_last().expect("at least one id");
        if !before.is_empty() {
            let t = Tensor::from_u32(before.to_vec(), &[1, before.len()], &device)?;
            self.model.backbone.prefill(&t, &mut self.state)?;
        }
        let t = Tensor::from_u32(vec![last], &[1], &device)?;
        if self.mode == Mode::Off {
            // The plain step: nothing reads the latents.
            self.last_token = last;
            return self.model.backbone.step(&t, &mut self.state)?.to_vec_f32();
        }
        let (logits, latents) = self.model.backbone.step_latents(&t, &mut self.state)?;
        self.latents = latents
            .iter()
            .map(|l| l.to_vec_f32())
            .collect::<Result<Vec<_>>>()?
            .concat();
        self.last_token = last;
        logits.to_vec_f32()
    }

    /// After reading token `self.step`: watch the critic's value (autonomy), take in plans,
    /// apply what is due, post or plan, guide.
    fn deliberate(&mut self, logits: Vec<f32>) -> Result<Vec<f32>> {
        if self.mode == Mode::Off {
            return Ok(logits);
        }
        if let Some(to) = self.watch_value(&logits)? {
            return self.rewind(to);
        }
        self.steer(logits)
    }

    /// Records this step for autonomy and returns the checkpoint to rewind to, if it is time.
    fn watch_value(&mut self, logits: &[f32]) -> Result<Option<Checkpoint>> {
        if self.watch.is_none() {
            return Ok(None);
        }
        let mut s = self.latents.clone();
        self.model.standardizer.apply(&mut s);
        let value = self.model.evaluate(&s, 1)?.remove(0).value;
        let checkpoint = Checkpoint {
            step: self.step,
            state: self.state.snapshot()?,
            latents: self.latents.clone(),
            last_token: self.last_token,
            logits: logits.to_vec(),
        };
        let to = self
            .watch
            .as_mut()
            .expect("checked")
            .observe(checkpoint, value);
        if let Some(c) = &to {
            self.stats.rewinds += 1;
            self.emit(TraceEvent::Autonomy {
                from: self.step,
                to: c.step,
                value,
            })?;
        }
        Ok(to)
    }

    /// Goes back to `to`: its state, a new generation id (every plan made since is about a text
    /// that no longer exists), and a plan made now to guide the resampled token.
    fn rewind(&mut self, to: Checkpoint) -> Result<Vec<f32>> {
        self.state = to.state;
        self.step = to.step;
        self.latents = to.latents;
        self.last_token = to.last_token;
        self.generated.truncate(to.step as usize);
        let counts = self.buffer.counts;
        self.buffer = DeltaBuffer::new(self.buffer.generation() + 1, self.steering.buffer);
        self.buffer.counts = counts;
        self.rewound = Some(to.step as usize);
        let planner = PlannerConfig {
            lag: 0,
            ..self.planner.clone()
        };
        let p = plan(&self.model, &planner, &self.snapshot()?)?;
        self.receive(p)?;
        let mut logits = to.logits;
        if let Some(p) = self.buffer.plan_for(self.step + 1)
            && self.steering.guidance > 0.0
        {
            logits = guide(&logits, p, self.steering.guidance);
            self.stats.guided += 1;
        }
        Ok(logits)
    }

    /// Plans' effects on this step: take them in, apply what is due, post or plan, guide.
    fn steer(&mut self, mut logits: Vec<f32>) -> Result<Vec<f32>> {
        self.collect_plans()?;
        for outcome in self.buffer.drop_diverged(&self.generated, self.step) {
            self.settle(outcome)?;
        }
        for outcome in self.buffer.take_due(self.step) {
            self.settle(outcome)?;
        }
        match self.mode {
            Mode::Async => {
                let snapshot = self.snapshot()?;
                self.thread
                    .as_mut()
                    .expect("async has a thread")
                    .post(snapshot);
                self.stats.snapshots += 1;
                self.emit(TraceEvent::SnapshotSent {
                    generation: self.buffer.generation(),
                    step: self.step,
                })?;
            }
            Mode::Sync => {
                let planner = PlannerConfig {
                    lag: 0,
                    ..self.planner.clone()
                };
                let p = plan(&self.model, &planner, &self.snapshot()?)?;
                self.receive(p)?;
            }
            Mode::Off => {}
        }
        if let Some(p) = self.buffer.plan_for(self.step + 1)
            && self.steering.guidance > 0.0
        {
            logits = guide(&logits, p, self.steering.guidance);
            self.stats.guided += 1;
        }
        Ok(logits)
    }

    /// What the planner searches from: this step's state and latents.
    fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            generation: self.buffer.generation(),
            step: self.step,
            latents: self.latents.clone(),
            state: self.state.snapshot()?,
            last_token: self.last_token,
        })
    }

    fn collect_plans(&mut self) -> Result<()> {
        let plans = match &self.thread {
            Some(t) => t.plans()?,
            None => Vec::new(),
        };
        for p in plans {
            self.receive(p)?;
        }
        Ok(())
    }

    fn receive(&mut self, p: Plan) -> Result<()> {
        self.emit(posted_event(&p))?;
        if let Some(outcome) = self.buffer.receive(p, self.step) {
            self.settle(outcome)?;
        }
        for outcome in self.buffer.drop_diverged(&self.generated, self.step) {
            self.settle(outcome)?;
        }
        Ok(())
    }

    /// Applies, or records the fate of, one plan.
    fn settle(&mut self, outcome: Outcome) -> Result<()> {
        let event = match outcome {
            Outcome::Rejected {
                generation,
                target_step,
            } => TraceEvent::PlanRejected {
                generation,
                expected: self.buffer.generation(),
                target_step,
            },
            Outcome::Dropped {
                target_step,
                late,
                reason,
            } => TraceEvent::PlanDropped {
                target_step,
                step: self.step,
                late,
                reason: reason.name().into(),
            },
            Outcome::Apply { plan, late, factor } => {
                let done = self.apply(&plan, factor)?;
                let (target_step, step) = (plan.target_step, self.step);
                if late == 0 {
                    TraceEvent::PlanApplied {
                        target_step,
                        step,
                        alphas: done.alphas,
                        norm_before: done.norm_before,
                        norm_after: done.norm_after,
                        guided: self.steering.guidance > 0.0,
                    }
                } else {
                    TraceEvent::PlanDecayed {
                        target_step,
                        step,
                        late,
                        factor,
                        alphas: done.alphas,
                        norm_before: done.norm_before,
                        norm_after: done.norm_after,
                    }
                }
            }
        };
        self.emit(event)
    }

    /// Injects `plan`'s target into the state, alphas scaled by `factor`.
    fn apply(&mut self, plan: &Plan, factor: f32) -> Result<Injected> {
        let m = &self.model;
        let layers = m.layers();
        let alphas: Vec<f32> = m
            .gates
            .alphas(&plan.confidences, self.steering.injection_rate)?
            .into_iter()
            .map(|a| a * factor)
            .collect();
        let h: Vec<f32> = self
            .state
            .layers
            .iter()
            .map(|l| l.ssm.to_vec_f32())
            .collect::<Result<Vec<_>>>()?
            .concat();
        let floor = self.steering.alpha_floor;
        // Every gate under the floor: nothing to propose (inject leaves each layer untouched).
        let target = if alphas.iter().any(|&a| a >= floor && a > 0.0) {
            let dz = m.standardizer.change(&self.latents, &plan.target_latent);
            m.broadcaster.propose(&h, &dz, &m.backbone.device())?
        } else {
            h
        };
        let per = target.len() / layers;
        let targets: Vec<Vec<f32>> = target.chunks_exact(per).map(<[f32]>::to_vec).collect();
        inject(&mut self.state, &targets, &alphas, floor)
    }

    /// Waits for the planner thread to finish its current search (tests, end of a generation's
    /// accounting) and takes in what it posted.
    pub fn finish(&mut self) -> Result<DeliberationStats> {
        self.collect_plans()?;
        self.stats.plans = self.buffer.counts;
        self.stats.steps = self.step;
        Ok(self.stats)
    }
}

impl NextToken for DeliberateSession {
    fn prefill(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        if prompt.is_empty() {
            return Err(Error::InvalidArgument {
                op: "DeliberateSession::prefill",
                detail: "the prompt is empty".into(),
            });
        }
        let logits = self.read(prompt)?;
        self.step = 0;
        let logits = self.deliberate(logits)?;
        self.entropy = entropy(&logits);
        Ok(logits)
    }

    fn step(&mut self, id: u32) -> Result<Vec<f32>> {
        let logits = self.read(&[id])?;
        self.step += 1;
        let logits = self.deliberate(logits)?;
        self.entropy = entropy(&logits);
        Ok(logits)
    }

    fn take_rewind(&mut self) -> Option<usize> {
        self.rewound.take()
    }

    fn chosen(&mut self, id: u32) -> Result<()> {
        self.generated.push(id);
        if self.trace.is_none() {
            return Ok(());
        }
        // The token alone (a byte-level piece of a character may show as U+FFFD).
        let text = match &self.tokenizer {
            Some(tok) => tok.decode(&[id])?,
            None => String::new(),
        };
        let event = TraceEvent::Token {
            step: self.step + 1,
            id,
            text,
            entropy: self.entropy,
        };
        self.emit(event)
    }
}

fn posted_event(p: &Plan) -> TraceEvent {
    TraceEvent::PlanPosted {
        generation: p.generation,
        from_step: p.from_step,
        target_step: p.target_step,
        latency_ms: p.latency.as_secs_f32() * 1000.0,
        simulations: p.simulations,
        value: p.value,
        confidences: p.confidences.clone(),
        chosen: p.chosen,
        root_policy: p
            .tokens
            .iter()
            .zip(&p.policy)
            .zip(&p.visits)
            .map(|((&token, &prob), &visits)| RootChoice {
                token,
                prob,
                visits,
            })
            .collect(),
        nodes: p.nodes.clone(),
    }
}

/// Guidance: the model's logits with each of the plan's tokens moved by beta times the log of
/// policy / prior, what the search added to the root's own policy; every other token keeps its
/// logit. So p_guided(t) is proportional to p_model(t) (pi(t) / prior(t))^beta: a search that
/// learned nothing (pi = prior) leaves the model alone, and a plan searched from a projected
/// state (async) never removes a token its root did not consider. With the root at the model's
/// own state (sync) the plan's tokens keep the ratios of p_model^(1 - beta) pi^beta.
pub fn guide(logits: &[f32], plan: &Plan, beta: f32) -> Vec<f32> {
    let mut out = logits.to_vec();
    for ((&t, &pi), &prior) in plan.tokens.iter().zip(&plan.policy).zip(&plan.prior) {
        let shift = beta * (pi.max(1e-30).ln() - prior.max(1e-30).ln());
        out[t as usize] += shift;
    }
    out
}

/// Entropy (nats) of softmax(logits); -inf logits count as 0 probability.
fn entropy(logits: &[f32]) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = logits.iter().map(|&l| (l - m).exp()).sum();
    -logits
        .iter()
        .map(|&l| {
            let p = (l - m).exp() / z;
            if p > 0.0 { p * (p.ln()) } else { 0.0 }
        })
        .sum::<f32>()
}
