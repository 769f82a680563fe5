//! `tasks make`: n distinct problems of a family from a seed and generator parameters, never
//! repeating a prompt of an excluded set (a training split), so held-out splits are disjoint.

use std::collections::{BTreeMap, HashSet};

use super::arc_gen::ArcGrids;
use super::countdown::Countdown;
use super::pathstar::PathStar;
use super::problem::Problem;
use crate::error::{Error, Result};
use crate::rng::Rng;

fn bad(detail: String) -> Error {
    Error::InvalidArgument {
        op: "tasks make",
        detail,
    }
}

/// Reads `key` of `params` (removing it) as a number, or `default`.
fn take(params: &mut BTreeMap<String, String>, key: &str, default: usize) -> Result<usize> {
    match params.remove(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| bad(format!("--param {key}={v}: not a whole number"))),
    }
}

/// Reads `key` of `params` (removing it) as text, or `default`.
fn take_text(params: &mut BTreeMap<String, String>, key: &str, default: &str) -> String {
    params.remove(key).unwrap_or_else(|| default.to_string())
}

/// One problem from the rng, or `None` when the generator found none acceptable in a long run.
type Draw = dyn FnMut(&mut Rng) -> Option<Problem>;

/// `n` problems of `family`; `exclude` holds prompts that must not appear (another split's).
pub fn make(
    family: &str,
    n: usize,
    seed: u64,
    params: &BTreeMap<String, String>,
    exclude: &HashSet<String>,
) -> Result<Vec<Problem>> {
    let mut params = params.clone();
    let mut rng = Rng::new(seed);
    let mut draw: Box<Draw> = match family {
        "pathstar" => {
            let d = PathStar::default();
            let g = PathStar {
                d: take(&mut params, "d", d.d)?,
                l: take(&mut params, "l", d.l)?,
                n: take(&mut params, "n", d.n)?,
            };
            if !g.valid() {
                return Err(bad(format!(
                    "pathstar {g:?} needs d, l >= 1 and 1 + d*l <= n"
                )));
            }
            let meta = serde_json::json!({"d": g.d, "l": g.l, "n": g.n});
            Box::new(move |rng| {
                let graph = g.sample(rng);
                Some(Problem {
                    family: "pathstar".into(),
                    prompt: graph.prompt(),
                    answer: graph.answer(),
                    meta: meta.clone(),
                })
            })
        }
        "countdown" => {
            let d = Countdown::default();
            let c = Countdown {
                max_number: take(&mut params, "max_number", d.max_number as usize)? as u32,
                max_target: take(&mut params, "max_target", d.max_target as usize)? as u32,
            };
            if c.max_number < 1 || c.max_target < 1 {
                return Err(bad(format!("countdown {c:?}: both bounds must be >= 1")));
            }
            let meta = serde_json::json!({"max_number": c.max_number, "max_target": c.max_target});
            Box::new(move |rng| {
                let inst = c.sample(rng);
                Some(Problem {
                    family: "countdown".into(),
                    prompt: inst.prompt(),
                    answer: inst.expression,
                    meta: meta.clone(),
                })
            })
        }
        "arc" => {
            let d = ArcGrids::default();
            let a = ArcGrids::new(
                take(&mut params, "min_size", d.min_size)?,
                take(&mut params, "max_size", d.max_size)?,
                take(&mut params, "demos", d.demos)?,
                take(&mut params, "colors", d.colors)?,
                take(&mut params, "shift", d.shift)?,
                &take_text(&mut params, "ops", &d.ops),
            )
            .map_err(|e| bad(format!("arc: {e}")))?;
            let meta = a.meta();
            Box::new(move |rng| {
                let inst = a.sample(rng)?;
                let mut meta = meta.clone();
                meta["transform"] = inst.transform().into();
                Some(Problem {
                    family: "arc".into(),
                    prompt: inst.prompt(),
                    answer: inst.answer.to_string(),
                    meta,
                })
            })
        }
        other => {
            return Err(bad(format!(
                "unknown family {other:?} (known: pathstar, countdown, arc)"
            )));
        }
    };
    if let Some(key) = params.keys().next() {
        return Err(bad(format!("{family} has no parameter {key:?}")));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut tries = 0usize;
    while out.len() < n {
        tries += 1;
        if tries > 100 * n + 1000 {
            return Err(bad(format!(
                "only {} distinct problems found in {tries} draws: the parameters allow too few",
                out.len()
            )));
        }
        let Some(p) = draw(&mut rng) else {
            return Err(bad(format!(
                "{family}: no acceptable problem in a long run of draws: the parameters allow too few"
            )));
        };
        if !exclude.contains(&p.prompt) && seen.insert(p.prompt.clone()) {
            out.push(p);
        }
    }
    Ok(out)
}
