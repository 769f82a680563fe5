//! One problem of a task family, its JSON Lines file, and the dispatch to the family's verifier.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    pub family: String,
    pub prompt: String,
    /// A reference answer (one of possibly many the verifier accepts).
    pub answer: String,
    /// The generator's parameters and anything the family needs to judge (e.g. the target).
    #[serde(default)]
    pub meta: serde_json::Value,
}

/// Whether `completion` solves `problem`, by its family's verifier; an unknown family, or an arc
/// problem whose reference answer is not a grid, is an error.
pub fn verify(problem: &Problem, completion: &str) -> Result<bool> {
    match problem.family.as_str() {
        "pathstar" => Ok(super::pathstar::verify(&problem.prompt, completion)),
        "countdown" => Ok(super::countdown::verify(&problem.prompt, completion)),
        "arc" => {
            super::arc::verify(&problem.answer, completion).ok_or_else(|| Error::InvalidArgument {
                op: "tasks::verify",
                detail: format!("an arc problem's answer {:?} is not a grid", problem.answer),
            })
        }
        other => Err(Error::InvalidArgument {
            op: "tasks::verify",
            detail: format!("unknown family {other:?} (known: pathstar, countdown, arc)"),
        }),
    }
}

/// Reads a JSON Lines file of problems; a bad line is an error naming the file and the line.
pub fn read_problems(path: &Path) -> Result<Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data {
                file: path.display().to_string(),
                line: Some(i + 1),
                detail: format!(
                    "not a problem ({e}); expected {{\"family\", \"prompt\", \"answer\", \"meta\"}}"
                ),
            })
        })
        .collect()
}

/// Writes problems as JSON Lines, atomically.
pub fn write_problems(path: &Path, problems: &[Problem]) -> Result<()> {
    let mut text = String::new();
    for p in problems {
        text.push_str(&serde_json::to_string(p).expect("a problem serialises"));
        text.push('\n');
    }
    crate::io::write_atomic(path, text.as_bytes())
}
