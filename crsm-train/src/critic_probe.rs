//! `crsm-train critic-probe --model DIR --tasks FILE.jsonl --samples K`: whether a CRSM's critic
//! tells a better continuation from a worse one *of the same problem*, which is what a search
//! needs from a leaf value. The backbone answers each problem K times (sampled); at each answer
//! step, every (right, wrong) pair of answers to one problem whose states differ there is a
//! comparison, and the critic's value (the heads' mean) should rank the right one higher. The
//! critic's own report correlates value with reward over all problems, which easy against hard
//! problems can carry alone; this one cannot be carried that way. The policy's certainty on the
//! same pairs is the baseline. One Markdown row per model (95% bootstrap intervals over problems),
//! then the accuracy by answer step, then the best of K without a verifier: the answer whose last
//! state the critic values highest, against one sample, certainty's pick and any of K right.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use crsm::latent::correlation::within_group_pair_accuracy;
use crsm::planner::latent_model::LatentModel;
use crsm::train::task_rewards::{SampledAnswer, task_reward_trace};
use indicatif::{ProgressBar, ProgressStyle};

use crate::device_arg::DeviceArg;
use crate::eval::{command_line, first_problems, load_crsm, share_cell};

/// Rows the critic values at a time.
const CHUNK: usize = 4096;

#[derive(Args)]
pub struct CriticProbeArgs {
    /// An assembled CRSM folder (`crsm-train full`); repeat for several.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Problems as JSON Lines (`crsm-train tasks make`); held-out ones, never the critic's own.
    #[arg(long)]
    tasks: PathBuf,
    /// Only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// Sampled answers per problem.
    #[arg(long, default_value_t = 8)]
    samples: usize,
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    #[arg(long, default_value_t = 64)]
    max_answer_tokens: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Answer steps in the by-step table.
    #[arg(long, default_value_t = 12)]
    steps: usize,
    #[command(flatten)]
    device: DeviceArg,
}

/// One model's comparisons: per problem with a pair, the critic's and certainty's accuracy over
/// all its pairs; per answer step, (pairs, critic accuracy, certainty accuracy) pooled.
struct Probe {
    success: f64,
    critic: Vec<f64>,
    certainty: Vec<f64>,
    pairs: usize,
    by_step: Vec<(usize, f64, f64)>,
    /// Per problem, whether the answer picked by the critic's value at its last state is right;
    /// the same picked by certainty; and whether any of the K is (the ceiling of any picker).
    best_by_critic: Vec<f64>,
    best_by_certainty: Vec<f64>,
    any_right: Vec<f64>,
}

pub fn run(args: CriticProbeArgs) -> Result<()> {
    if args.samples < 2 {
        bail!(
            "--samples {}: comparing answers needs at least 2",
            args.samples
        );
    }
    let problems = first_problems(&args.tasks, args.limit)?;
    let device = args.device.open()?;
    let mut probes = Vec::new();
    for dir in &args.model {
        let (model, tokenizer) = load_crsm(dir, &device)?;
        let bar = ProgressBar::new((problems.len() * args.samples) as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} answers {per_sec} eta {eta}")
                .expect("a valid template"),
        );
        bar.set_message(dir.display().to_string());
        let rewards = task_reward_trace(
            &model.backbone,
            &tokenizer,
            &problems,
            args.samples,
            args.max_answer_tokens,
            args.temperature,
            args.seed,
            |n| bar.set_position(n as u64),
        )?;
        bar.finish_and_clear();
        probes.push(probe(&model, &rewards, args.samples, args.steps)?);
    }
    println!(
        "Within-problem pairs (right, wrong) of sampled answers whose states differ; the first \
         table pools each problem's pairs over its answer steps and averages over problems \
         (95% bootstrap over problems), the second pools pairs by step.\n\nCommand: `{}`\n",
        command_line()
    );
    println!(
        "| model | problems x samples | answers right | pairs (problems) | critic ranks the right answer higher | the policy's certainty alone |"
    );
    println!("|---|---|---|---|---|---|");
    let cell = |xs: &[f64]| match xs.is_empty() {
        true => "no pairs".to_string(),
        false => share_cell(xs),
    };
    for (dir, p) in args.model.iter().zip(&probes) {
        println!(
            "| {} | {} x {} | {:.1}% | {} ({}) | {} | {} |",
            dir.display(),
            problems.len(),
            args.samples,
            100.0 * p.success,
            p.pairs,
            p.critic.len(),
            cell(&p.critic),
            cell(&p.certainty),
        );
    }
    println!("\nBy answer step (pairs: critic / certainty):\n");
    let header: Vec<String> = (0..args.steps).map(|s| s.to_string()).collect();
    println!("| model | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(args.steps));
    for (dir, p) in args.model.iter().zip(&probes) {
        let cells: Vec<String> = (p.by_step.iter())
            .map(|&(n, c, q)| match n {
                0 => "-".into(),
                _ => format!("{n}: {:.0} / {:.0}", 100.0 * c, 100.0 * q),
            })
            .collect();
        println!("| {} | {} |", dir.display(), cells.join(" | "));
    }
    println!(
        "\nBest of {} without a verifier: the answer whose last state (the one its final token \
         is chosen from) the critic values highest, against one sample, the highest certainty \
         and any of the {} right (the ceiling):\n",
        args.samples, args.samples
    );
    println!("| model | one sample | best by the critic | best by certainty | any right |");
    println!("|---|---|---|---|---|");
    for (dir, p) in args.model.iter().zip(&probes) {
        println!(
            "| {} | {:.1}% | {} | {} | {} |",
            dir.display(),
            100.0 * p.success,
            cell(&p.best_by_critic),
            cell(&p.best_by_certainty),
            cell(&p.any_right)
        );
    }
    Ok(())
}

/// Per problem (answers in problem order, `samples` each), whether the answer with the highest
/// `score` is right (ties: the first).
fn best_of(answers: &[SampledAnswer], last: &[Option<f64>], samples: usize) -> Vec<f64> {
    (answers.chunks(samples).zip(last.chunks(samples)))
        .map(|(group, scores)| {
            let best = (0..group.len())
                .filter(|&k| scores[k].is_some())
                .max_by(|&a, &b| {
                    scores[a]
                        .unwrap()
                        .total_cmp(&scores[b].unwrap())
                        .then(b.cmp(&a))
                });
            f64::from(u8::from(best.is_some_and(|k| group[k].correct)))
        })
        .collect()
}

fn hash(x: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

/// The critic's values at every answer state of `rewards`, and the within-problem comparisons.
fn probe(
    model: &LatentModel,
    rewards: &crsm::train::task_rewards::RewardTrace,
    samples: usize,
    steps: usize,
) -> Result<Probe> {
    let trace = &rewards.valued.trace;
    let n = trace.layers * trace.d_model;
    // The positions with a target, in order: answer a's states at steps 0..ids.len().
    let positions: Vec<usize> = (0..rewards.valued.values.len())
        .filter(|&i| rewards.valued.values[i].is_finite())
        .collect();
    let mut value = Vec::with_capacity(positions.len());
    let mut certainty = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(CHUNK) {
        let mut s: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| trace.z[i * n..][..n].iter().copied())
            .collect();
        model.standardizer.apply(&mut s);
        for e in model.evaluate(&s, 1)? {
            value.push(e.value as f64);
            certainty.push(e.certainty as f64);
        }
    }
    let (mut problem, mut step, mut state, mut right) = (vec![], vec![], vec![], vec![]);
    for a in &rewards.answers {
        for s in 0..a.ids.len() {
            problem.push(a.problem as u64);
            step.push(s);
            state.push(hash(&a.ids[..s]));
            right.push(a.correct);
        }
    }
    if problem.len() != value.len() {
        bail!(
            "critic-probe: {} answer states against {} valued positions",
            problem.len(),
            value.len()
        );
    }
    // Groups are (problem, step), numbered exactly; each problem's pairs are then pooled over
    // its steps.
    let span = step.iter().max().map_or(1, |m| m + 1) as u64;
    let group: Vec<u64> = (problem.iter().zip(&step))
        .map(|(&p, &s)| p * span + s as u64)
        .collect();
    let by_group = |score: &[f64]| within_group_pair_accuracy(&group, &state, score, &right);
    let (critic_groups, certainty_groups) = (by_group(&value), by_group(&certainty));
    let mut per_problem: std::collections::BTreeMap<u64, (f64, f64, usize)> = Default::default();
    let mut by_step = vec![(0usize, 0.0, 0.0); steps];
    for (&(g, c, pairs), &(_, q, _)) in critic_groups.iter().zip(&certainty_groups) {
        let (p, s) = (g / span, (g % span) as usize);
        let e = per_problem.entry(p).or_default();
        e.0 += c * pairs as f64;
        e.1 += q * pairs as f64;
        e.2 += pairs;
        if let Some(b) = by_step.get_mut(s) {
            b.0 += pairs;
            b.1 += c * pairs as f64;
            b.2 += q * pairs as f64;
        }
    }
    for b in &mut by_step {
        if b.0 > 0 {
            b.1 /= b.0 as f64;
            b.2 /= b.0 as f64;
        }
    }
    // Each answer's last scored state: the one its final token is chosen from.
    let (mut last_value, mut last_certainty, mut at) = (vec![], vec![], 0);
    for a in &rewards.answers {
        at += a.ids.len();
        let last = (!a.ids.is_empty()).then(|| at - 1);
        last_value.push(last.map(|i| value[i]));
        last_certainty.push(last.map(|i| certainty[i]));
    }
    Ok(Probe {
        best_by_critic: best_of(&rewards.answers, &last_value, samples),
        best_by_certainty: best_of(&rewards.answers, &last_certainty, samples),
        any_right: (rewards.answers.chunks(samples))
            .map(|g| f64::from(u8::from(g.iter().any(|a| a.correct))))
            .collect(),
        success: rewards.success,
        critic: per_problem.values().map(|e| e.0 / e.2 as f64).collect(),
        certainty: per_problem.values().map(|e| e.1 / e.2 as f64).collect(),
        pairs: per_problem.values().map(|e| e.2).sum(),
        by_step,
    })
}
