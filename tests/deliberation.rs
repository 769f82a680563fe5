//! Generation with the planner beside it, on a tiny CRSM: with injection and guidance off the
//! planner changes nothing, bit for bit; the async planner thread really runs and its plans are
//! applied (counted from the trace); sync plans every token; the trace parses back.

#[path = "support/tiny_crsm.rs"]
mod tiny_crsm;

use std::sync::{Arc, Mutex};

use crsm::generate::deliberate::{DeliberateSession, Mode, Steering};
use crsm::generate::{GenerateOptions, NextToken, SamplingConfig, Session, generate};
use crsm::planner::SearchConfig;
use crsm::planner::delta_buffer::BufferConfig;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::{DynamicsMode, PlannerConfig};
use crsm::trace::{Header, SCHEMA, TraceEvent, TraceWriter, VERSION, read_trace};
use tiny_crsm::tiny_crsm;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn planner(lag: u64) -> PlannerConfig {
    PlannerConfig {
        dynamics: DynamicsMode::Learned,
        search: SearchConfig::for_budget(8, 4),
        lag,
        leaf_value: LeafValue::Critic,
        trace_nodes: 16,
    }
}

fn options(n: usize) -> GenerateOptions {
    GenerateOptions {
        max_new_tokens: n,
        sampling: SamplingConfig {
            temperature: 0.9,
            seed: 4,
            ..SamplingConfig::default()
        },
        ..GenerateOptions::default()
    }
}

fn header(mode: &str) -> Header {
    Header {
        schema: SCHEMA.into(),
        version: VERSION,
        model: "tiny".into(),
        mode: mode.into(),
        settings: serde_json::json!({}),
        prompt_ids: vec![1, 2, 3],
        prompt: String::new(),
    }
}

/// A model slowed to `ms` per step: a step as slow as a real model's next to a search, so the
/// test does not depend on how busy the machine is.
struct Slow<'a>(&'a mut DeliberateSession, u64);

impl NextToken for Slow<'_> {
    fn prefill(&mut self, prompt: &[u32]) -> crsm::Result<Vec<f32>> {
        self.0.prefill(prompt)
    }
    fn step(&mut self, id: u32) -> crsm::Result<Vec<f32>> {
        std::thread::sleep(std::time::Duration::from_millis(self.1));
        self.0.step(id)
    }
    fn chosen(&mut self, id: u32) -> crsm::Result<()> {
        self.0.chosen(id)
    }
    fn take_rewind(&mut self) -> Option<usize> {
        self.0.take_rewind()
    }
}

/// Generates `n` tokens in `mode`, returning the ids, the session's counters and the trace.
fn run(
    mode: Mode,
    steering: Steering,
    lag: u64,
    n: usize,
) -> (
    Vec<u32>,
    crsm::generate::deliberate::DeliberationStats,
    crsm::trace::Trace,
) {
    let sink = Sink::default();
    let trace = TraceWriter::to_sink(Box::new(sink.clone()), header(mode.name())).unwrap();
    let mut s = DeliberateSession::new(tiny_crsm(3), mode, steering, planner(lag), 1, 42)
        .unwrap()
        .with_trace(trace, None);
    let slow = if mode == Mode::Async { 5 } else { 0 };
    let ids = generate(
        &mut Slow(&mut s, slow),
        &[1, 2, 3],
        &options(n),
        None,
        |_| Ok(()),
    )
    .unwrap();
    let stats = s.finish().unwrap();
    drop(s);
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (ids, stats, read_trace(&text, "mem").unwrap())
}

#[test]
fn with_injection_and_guidance_off_the_planner_changes_nothing() {
    let quiet = Steering {
        injection_rate: 0.0,
        guidance: 0.0,
        ..Steering::default()
    };
    let model = tiny_crsm(3);
    let mut plain = Session::new(&model.backbone).unwrap();
    let want = generate(&mut plain, &[1, 2, 3], &options(40), None, |_| Ok(())).unwrap();
    for mode in [Mode::Off, Mode::Async, Mode::Sync] {
        let (ids, stats, _) = run(mode, quiet.clone(), 1, 40);
        assert_eq!(ids, want, "{mode:?}");
        if mode == Mode::Sync {
            assert!(stats.plans.received > 0, "the planner ran");
        }
    }
    // And the logits themselves, step by step.
    let mut a = Session::new(&model.backbone).unwrap();
    let mut b = DeliberateSession::new(tiny_crsm(3), Mode::Sync, quiet, planner(0), 1, 1).unwrap();
    assert_eq!(
        a.prefill(&[1, 2, 3]).unwrap(),
        b.prefill(&[1, 2, 3]).unwrap()
    );
    for id in [4, 9, 2, 7] {
        b.chosen(id).unwrap();
        assert_eq!(a.step(id).unwrap(), b.step(id).unwrap());
    }
}

#[test]
fn the_async_planner_thread_runs_and_its_plans_are_applied() {
    // Lag 0 (no projection the random dynamics could get wrong, so no plan diverges) and a
    // generous max_lag: plans land late on a model this fast, and are applied decayed.
    let steering = Steering {
        buffer: BufferConfig {
            max_lag: 16,
            decay: 0.9,
        },
        ..Steering::default()
    };
    let (ids, stats, trace) = run(Mode::Async, steering, 0, 120);
    assert_eq!(ids.len(), 120);
    let count = |f: &dyn Fn(&TraceEvent) -> bool| trace.events.iter().filter(|(_, e)| f(e)).count();
    let posted = count(&|e| matches!(e, TraceEvent::PlanPosted { .. }));
    let applied = count(&|e| {
        matches!(
            e,
            TraceEvent::PlanApplied { .. } | TraceEvent::PlanDecayed { .. }
        )
    });
    let snapshots = count(&|e| matches!(e, TraceEvent::SnapshotSent { .. }));
    assert!(
        posted > 0 && applied > 0,
        "posted {posted}, applied {applied}: {stats:?}"
    );
    assert_eq!(snapshots as u64, stats.snapshots);
    assert_eq!(applied as u64, stats.plans.applied + stats.plans.decayed);
    assert_eq!(count(&|e| matches!(e, TraceEvent::Token { .. })), 120);
    assert!(trace.bad_lines.is_empty());
    // Every applied plan was for a step generation had reached, and is traced with alphas.
    for (_, e) in &trace.events {
        match e {
            TraceEvent::PlanApplied {
                target_step,
                step,
                alphas,
                ..
            } => {
                assert_eq!(target_step, step);
                assert_eq!(alphas.len(), 2);
            }
            TraceEvent::PlanDecayed {
                target_step,
                step,
                late,
                factor,
                ..
            } => {
                assert_eq!(step - target_step, *late);
                assert!((factor - 0.9f32.powi(*late as i32)).abs() < 1e-6);
            }
            _ => {}
        }
    }
}

#[test]
fn sync_plans_and_guides_every_token() {
    let (ids, stats, trace) = run(Mode::Sync, Steering::default(), 0, 30);
    assert_eq!(ids.len(), 30);
    assert_eq!(stats.plans.received, 30, "a plan before every token");
    assert_eq!(stats.guided, 30);
    assert_eq!(stats.plans.applied, 29, "the last token is never read");
    let posted: Vec<u64> = trace
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TraceEvent::PlanPosted {
                target_step,
                from_step,
                nodes,
                ..
            } => {
                assert!(!nodes.is_empty());
                assert_eq!(*target_step, from_step + 1);
                Some(*target_step)
            }
            _ => None,
        })
        .collect();
    assert_eq!(posted, (1..=30).collect::<Vec<u64>>());
}

#[test]
fn rollout_and_mixed_leaf_values_plan_with_finite_values() {
    use crsm::planner::plan::Snapshot;
    use crsm::planner::planning::plan;
    let model = tiny_crsm(5);
    let mut state = model.backbone.new_state(1).unwrap();
    let ids = crsm::Tensor::from_u32(vec![3], &[1], &crsm::Device::Cpu).unwrap();
    let (_, latents) = model.backbone.step_latents(&ids, &mut state).unwrap();
    let latents: Vec<f32> = latents
        .iter()
        .flat_map(|l| l.to_vec_f32().unwrap())
        .collect();
    let mut values = Vec::new();
    for leaf_value in [
        LeafValue::Critic,
        LeafValue::Rollout { depth: 3 },
        LeafValue::Mixed { depth: 3 },
    ] {
        let config = PlannerConfig {
            leaf_value,
            ..planner(1)
        };
        let snapshot = Snapshot {
            generation: 1,
            step: 0,
            latents: latents.clone(),
            state: state.snapshot().unwrap(),
            last_token: 3,
        };
        let p = plan(&model, &config, &snapshot).unwrap();
        assert!(p.value.is_finite() && p.policy.iter().all(|x| x.is_finite()));
        assert_eq!((p.target_step, p.assumed.len()), (2, 1));
        assert!((p.policy.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        values.push(p.value);
        // The same plan again: every draw comes from the counter-based stream.
        let again = plan(&model, &config, &snapshot).unwrap();
        assert_eq!((again.value, again.chosen), (p.value, p.chosen));
    }
    assert_ne!(
        values[0], values[1],
        "rollout returns are not the critic's values"
    );
}

#[test]
fn exact_dynamics_plans_with_the_backbones_own_step() {
    use crsm::planner::plan::Snapshot;
    use crsm::planner::planning::plan;
    let model = tiny_crsm(7);
    let dev = crsm::Device::Cpu;
    let mut state = model.backbone.new_state(1).unwrap();
    let prompt = crsm::Tensor::from_u32(vec![4, 9], &[1, 2], &dev).unwrap();
    model.backbone.prefill(&prompt, &mut state).unwrap();
    let last = crsm::Tensor::from_u32(vec![2], &[1], &dev).unwrap();
    let (_, latents) = model.backbone.step_latents(&last, &mut state).unwrap();
    let latents: Vec<f32> = latents
        .iter()
        .flat_map(|l| l.to_vec_f32().unwrap())
        .collect();
    let config = PlannerConfig {
        dynamics: DynamicsMode::Exact,
        ..planner(0)
    };
    let snapshot = Snapshot {
        generation: 1,
        step: 0,
        latents,
        state: state.snapshot().unwrap(),
        last_token: 2,
    };
    let p = plan(&model, &config, &snapshot).unwrap();
    // The target latent is the backbone's real latent after the chosen token.
    let mut s = state.snapshot().unwrap();
    let id = crsm::Tensor::from_u32(vec![p.chosen], &[1], &dev).unwrap();
    let (_, real) = model.backbone.step_latents(&id, &mut s).unwrap();
    let real: Vec<f32> = real.iter().flat_map(|l| l.to_vec_f32().unwrap()).collect();
    assert_eq!(real.len(), p.target_latent.len());
    for (a, b) in p.target_latent.iter().zip(&real) {
        assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
    // And sync generation runs on it.
    let mut session =
        DeliberateSession::new(model, Mode::Sync, Steering::default(), config, 1, 3).unwrap();
    let ids = generate(&mut session, &[4, 9, 2], &options(6), None, |_| Ok(())).unwrap();
    assert_eq!(ids.len(), 6);
    assert_eq!(session.finish().unwrap().plans.received, 6);
}

#[test]
fn autonomy_rewinds_at_most_its_budget_and_the_loop_keeps_the_text_consistent() {
    use crsm::generate::autonomy::Autonomy;
    let with = |threshold: f32| Steering {
        autonomy: Some(Autonomy {
            threshold,
            patience: 2,
            rewind: 3,
            max_rewinds: 2,
        }),
        ..Steering::default()
    };
    // Every value is "low": the rewind budget is spent, and no more.
    let (ids, stats, trace) = run(Mode::Sync, with(f32::INFINITY), 0, 30);
    assert_eq!(ids.len(), 30, "the loop still generates its budget");
    assert_eq!(stats.rewinds, 2);
    let rewinds: Vec<(u64, u64)> = trace
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TraceEvent::Autonomy { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(rewinds.len(), 2);
    for (from, to) in &rewinds {
        assert!(to < from && from - to <= 3, "{from} -> {to}");
    }
    // The ids returned are the kept ones: the trace's tokens after the last rewind end the text.
    let tokens: Vec<(u64, u32)> = trace
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TraceEvent::Token { step, id, .. } => Some((*step, *id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tokens.len(),
        30 + rewinds.iter().map(|(f, t)| (f - t) as usize).sum::<usize>()
    );
    let last_of_each_step: std::collections::BTreeMap<u64, u32> = tokens.into_iter().collect();
    assert_eq!(
        last_of_each_step.values().copied().collect::<Vec<u32>>(),
        ids
    );
    // No value is low: nothing happens, and the text is the one without autonomy.
    let (never, stats, _) = run(Mode::Sync, with(f32::NEG_INFINITY), 0, 30);
    let (off, _, _) = run(Mode::Sync, Steering::default(), 0, 30);
    assert_eq!((stats.rewinds, never), (0, off));
}

/// A plan over tokens 1 and 3 of a 5-token vocabulary.
fn plan_over(policy: [f32; 2], prior: [f32; 2]) -> crsm::planner::plan::Plan {
    crsm::planner::plan::Plan {
        generation: 0,
        from_step: 0,
        target_step: 1,
        tokens: vec![1, 3],
        policy: policy.to_vec(),
        prior: prior.to_vec(),
        visits: vec![1, 1],
        chosen: 1,
        target_latent: Vec::new(),
        confidences: Vec::new(),
        value: 0.0,
        simulations: 2,
        latency: std::time::Duration::ZERO,
        nodes: Vec::new(),
        assumed: Vec::new(),
    }
}

#[test]
fn guidance_moves_only_the_plans_tokens_by_what_the_search_added() {
    use crsm::generate::deliberate::guide;
    let logits = [0.5f32, 2.0, -1.0, 1.0, 3.0];
    // A search that learned nothing (policy = prior) leaves the model alone.
    assert_eq!(
        guide(&logits, &plan_over([0.7, 0.3], [0.7, 0.3]), 0.5),
        logits
    );
    // Otherwise the plan's tokens move by beta ln(pi / prior); the others keep their logits,
    // so a token the plan did not consider (4, the model's favourite) is never removed.
    let g = guide(&logits, &plan_over([0.9, 0.1], [0.5, 0.5]), 0.5);
    assert_eq!([g[0], g[2], g[4]], [logits[0], logits[2], logits[4]]);
    assert!((g[1] - (2.0 + 0.5 * (0.9f32 / 0.5).ln())).abs() < 1e-6);
    assert!((g[3] - (1.0 + 0.5 * (0.1f32 / 0.5).ln())).abs() < 1e-6);
}
