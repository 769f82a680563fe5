//! Planner throughput (`cargo bench --bench planner`): simulations per second of one search on a
//! random CRSM of the nano quickstart's shape (vocab 2048, 256 x 4), with the leaves evaluated
//! one at a time (the one-leaf loop) and in waves of W = 1, 8 and 64 (one batched dynamics step, head
//! and critic pass per wave). Rounds are interleaved and each figure is the pooled median of this
//! run; every variant runs on the same rayon pool (`CRSM_BENCH_THREADS`, default 1) and the same
//! root, seed and budget.

use std::time::Instant;

use crsm::Device;
use crsm::model::CrsmConfig;
use crsm::planner::latent_model::LatentModel;
use crsm::planner::leaf_evaluator::{LeafValue, ModelEvaluator};
use crsm::planner::{Search, SearchConfig};

fn main() {
    let threads = std::env::var("CRSM_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| run(threads));
}

fn run(threads: usize) {
    let _off = crsm::no_grad();
    let model = LatentModel::random(CrsmConfig::new(2048, 256, 4), 1, &Device::Cpu).unwrap();
    let (layers, d) = (model.layers(), model.d_model());
    let root_latent: Vec<f32> = (0..layers * d)
        .map(|i| ((i * 7919) % 997) as f32 / 500.0 - 1.0)
        .collect();
    let simulations = 64;
    // (label, wave; 0 = the one-leaf loop)
    let variants = [
        ("one-leaf loop", 0usize),
        ("waves of 8", 8),
        ("waves of 64", 64),
    ];
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..6 {
        for (v, &(_, wave)) in variants.iter().enumerate() {
            let mut config = SearchConfig::for_budget(simulations, 8);
            config.gumbel = false;
            config.max_depth = 16;
            config.wave = wave.max(1);
            let root = model.evaluate(&root_latent, 8).unwrap().remove(0);
            let root = root.into_evaluation(root_latent.clone());
            let search = Search::new(root, config).unwrap();
            let mut evaluator = ModelEvaluator::new(&model, LeafValue::Critic, 8, 0);
            let t = Instant::now();
            if wave == 0 {
                search.run_one_leaf(&mut evaluator).unwrap();
            } else {
                search.run(&mut evaluator).unwrap();
            }
            if round > 0 {
                seconds[v].push(t.elapsed().as_secs_f64());
            }
        }
    }
    println!(
        "planner: {simulations} simulations (PUCT), random CRSM of nano's shape, cpu, {threads} thread(s), pooled median of 5 rounds"
    );
    let base = median(&seconds[0]);
    for (v, &(label, _)) in variants.iter().enumerate() {
        let m = median(&seconds[v]);
        println!(
            "  {label:<14} {:>8.2} ms/search {:>9.0} simulations/s  {:>5.1}x the one-leaf loop",
            m * 1e3,
            simulations as f64 / m,
            base / m
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}
