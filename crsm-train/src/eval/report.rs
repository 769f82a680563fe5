//! The eval report: per variant, exact match with its 95% bootstrap interval, the paired test
//! against the baseline (the first variant), per-token latency p50 / p99 and its ratio to the
//! baseline's p50, tokens per answer and what became of the plans; as Markdown, JSON and a chart.

use std::path::Path;

use anyhow::{Context, Result};
use crsm::planner::delta_buffer::Counts;
use crsm::tasks::stats::{bootstrap_mean_interval, paired_permutation};
use serde::Serialize;

use super::VariantRun;

/// Bootstrap resamples and sign patterns of the permutation test.
const RESAMPLES: usize = 10_000;

#[derive(Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub run: RunInfo,
    pub variants: Vec<VariantSummary>,
}

/// What was run, and how: the report's header.
#[derive(Serialize)]
pub struct RunInfo {
    /// The command that made it (`eval::command_line`).
    pub command: String,
    pub tasks: String,
    pub models: Vec<String>,
    pub problems: usize,
    pub seeds: u64,
    /// Generation's pool and the planner thread's own pool.
    pub generation_threads: usize,
    pub planner_threads: usize,
    pub minutes: f64,
}

#[derive(Serialize)]
pub struct VariantSummary {
    pub name: String,
    /// Exact match (share of problems, each problem's score averaged over models and seeds).
    pub exact_match: f64,
    pub ci95: (f64, f64),
    /// Each model's exact match (over its seeds).
    pub per_model: Vec<f64>,
    /// Against the baseline (None for the baseline itself): mean difference and two-sided p of
    /// the paired permutation test (the exact McNemar test with one model and one seed).
    pub vs_baseline: Option<(f64, f64)>,
    pub token_ms_p50: f64,
    pub token_ms_p99: f64,
    /// p50 over the baseline's p50.
    pub latency_ratio: f64,
    pub tokens_per_answer: f64,
    pub plans: Counts,
    pub guided: u64,
}

/// Three decimals, or two significant digits below 0.001.
fn p_value(p: f64) -> String {
    if p >= 1e-3 {
        format!("{p:.3}")
    } else {
        format!("{p:.1e}")
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Each problem's score: its share of hits over models and seeds.
fn scores(run: &VariantRun, problems: usize) -> Vec<f64> {
    let mut s = vec![0.0; problems];
    let mut n = 0.0;
    for m in &run.models {
        for seed in &m.hits {
            for (i, &h) in seed.iter().enumerate() {
                s[i] += h as u8 as f64;
            }
            n += 1.0;
        }
    }
    s.iter().map(|v| v / n).collect()
}

impl Report {
    pub fn new(run: RunInfo, runs: &[VariantRun]) -> Self {
        let problems = run.problems;
        let base_scores = scores(&runs[0], problems);
        let mut base_p50 = f64::NAN;
        let variants = runs
            .iter()
            .enumerate()
            .map(|(k, run)| {
                let s = scores(run, problems);
                let (exact_match, lo, hi) = bootstrap_mean_interval(&s, RESAMPLES, 7);
                let mut ms: Vec<f64> = run.models.iter().flat_map(|m| m.token_ms.clone()).collect();
                ms.sort_by(f64::total_cmp);
                let p50 = percentile(&ms, 0.5);
                if k == 0 {
                    base_p50 = p50;
                }
                let mut plans = Counts::default();
                for m in &run.models {
                    plans += m.plans;
                }
                let answers: usize = run.models.iter().map(|m| m.answers).sum();
                let tokens: usize = run.models.iter().map(|m| m.tokens).sum();
                VariantSummary {
                    name: run.name.clone(),
                    exact_match,
                    ci95: (lo, hi),
                    per_model: run
                        .models
                        .iter()
                        .map(|m| {
                            let all: Vec<bool> = m.hits.iter().flatten().copied().collect();
                            all.iter().filter(|&&h| h).count() as f64 / all.len().max(1) as f64
                        })
                        .collect(),
                    vs_baseline: (k > 0)
                        .then(|| paired_permutation(&s, &base_scores, RESAMPLES, 11)),
                    token_ms_p50: p50,
                    token_ms_p99: percentile(&ms, 0.99),
                    latency_ratio: p50 / base_p50,
                    tokens_per_answer: tokens as f64 / answers.max(1) as f64,
                    plans,
                    guided: run.models.iter().map(|m| m.guided).sum(),
                }
            })
            .collect();
        Report { run, variants }
    }

    pub fn markdown(&self) -> String {
        let mut md = format!(
            "Exact match on {} problems of `{}`, {} model(s) x {} seed(s); 95% bootstrap \
             intervals over problems; p: paired permutation test against `{}` (exact McNemar \
             with one model and one seed); latency: ms between consecutive tokens, pooled, the \
             variants interleaved problem by problem, generation (and sync's searches) on {} \
             thread(s), an async planner on {} of its own.\n\nCommand: `{}`\n\n",
            self.run.problems,
            self.run.tasks,
            self.run.models.len(),
            self.run.seeds,
            self.variants[0].name,
            self.run.generation_threads,
            self.run.planner_threads,
            self.run.command
        );
        md.push_str("| variant | exact match | 95% CI | vs baseline | p | per-token p50 / p99 ms | p50 ratio | tokens / answer | plans applied / late / dropped / diverged |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for v in &self.variants {
            let (diff, p) = match v.vs_baseline {
                Some((d, p)) => (format!("{:+.1} pts", 100.0 * d), p_value(p)),
                None => ("baseline".into(), "".into()),
            };
            let plans = if v.plans.received == 0 {
                "".to_string()
            } else {
                format!(
                    "{} / {} / {} / {} of {}",
                    v.plans.applied,
                    v.plans.decayed,
                    v.plans.dropped,
                    v.plans.diverged,
                    v.plans.received
                )
            };
            md.push_str(&format!(
                "| {} | {:.1}% | {:.1}-{:.1} | {} | {} | {:.3} / {:.3} | {:.3} | {:.1} | {} |\n",
                v.name,
                100.0 * v.exact_match,
                100.0 * v.ci95.0,
                100.0 * v.ci95.1,
                diff,
                p,
                v.token_ms_p50,
                v.token_ms_p99,
                v.latency_ratio,
                v.tokens_per_answer,
                plans
            ));
        }
        if self.run.models.len() > 1 {
            md.push_str("\nPer model (training seed), exact match:\n\n");
            for v in &self.variants {
                let each: Vec<String> = v
                    .per_model
                    .iter()
                    .map(|r| format!("{:.1}%", 100.0 * r))
                    .collect();
                md.push_str(&format!("- {}: {}\n", v.name, each.join(", ")));
            }
        }
        md
    }

    /// `out` (Markdown), and beside it the same name with .json and .png.
    pub fn write(&self, out: &Path) -> Result<()> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        crsm::io::write_atomic(out, self.markdown().as_bytes())
            .with_context(|| format!("writing {}", out.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        crsm::io::write_atomic(&out.with_extension("json"), json.as_bytes())?;
        let bars: Vec<(String, f64, f64, f64)> = self
            .variants
            .iter()
            .map(|v| (v.name.clone(), v.exact_match, v.ci95.0, v.ci95.1))
            .collect();
        crate::plot::plot_exact_match(
            &bars,
            &format!("exact match, {} problems", self.run.problems),
            &out.with_extension("png"),
        )
    }
}
