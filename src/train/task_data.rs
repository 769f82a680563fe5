//! A reasoning run's data stage (`full` with a `tasks` section): the problem files, a tokenizer
//! trained on the training problems, and the SFT shards (loss on answers only).
//!
//! Held-out splits are drawn first, then `val` never repeating their prompts, then `train`
//! never repeating any of them, then the critic's problems never repeating any, so every split
//! is disjoint from training by construction (the same `--exclude` rule as `tasks make`); the
//! critic's come last so that adding them leaves the other files as they were.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::data::{BadLinePolicy, PrepareSummary, ValSource, prepare, train_bpe};
use crate::error::{Error, Result};
use crate::tasks::{Problem, make, write_problems};
use crate::train::RunConfig;
use crate::train::tasks_config::{TaskSplit, TasksConfig};

/// What the stage wrote.
#[derive(Clone, Debug)]
pub struct TaskData {
    /// Each problem file and its count, in the order written.
    pub files: Vec<(PathBuf, usize)>,
    pub vocab_size: usize,
    pub shards: PrepareSummary,
}

fn draw(t: &TasksConfig, split: &TaskSplit, exclude: &mut HashSet<String>) -> Result<Vec<Problem>> {
    let problems = make(
        &t.family,
        split.n,
        split.seed,
        &split.make_params(),
        exclude,
    )?;
    exclude.extend(problems.iter().map(|p| p.prompt.clone()));
    Ok(problems)
}

/// Writes the problem files, the tokenizer (`training.tokenizer`, `model.vocab_size` ids) and
/// the shards (`training.data`) of `config`'s `tasks` section.
pub fn make_task_data(config: &RunConfig, file: &str) -> Result<TaskData> {
    let t = config.tasks.as_ref().ok_or_else(|| Error::Config {
        file: file.into(),
        field: "tasks".into(),
        detail: "missing section: the data stage makes problems of a task family".into(),
    })?;
    std::fs::create_dir_all(&t.dir).map_err(|source| Error::Io {
        path: t.dir.clone(),
        source,
    })?;
    let mut exclude = HashSet::new();
    let mut files = Vec::new();
    let mut write = |path: String, problems: &[Problem]| -> Result<PathBuf> {
        let path = PathBuf::from(path);
        write_problems(&path, problems)?;
        files.push((path.clone(), problems.len()));
        Ok(path)
    };
    for h in &t.held_out {
        let problems = draw(t, &h.split(), &mut exclude)?;
        write(t.held_out_file(&h.name), &problems)?;
    }
    let val = draw(t, &t.val, &mut exclude)?;
    let val_file = write(t.val_file(), &val)?;
    let train = draw(t, &t.train, &mut exclude)?;
    let train_file = write(t.train_file(), &train)?;
    if let Some(split) = &t.critic {
        let critic = draw(t, split, &mut exclude)?;
        write(t.critic_file(), &critic)?;
    }

    let tokenizer_path = Path::new(&config.training.tokenizer);
    if let Some(dir) = tokenizer_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let tokenizer = train_bpe(std::slice::from_ref(&train_file), config.model.vocab_size)?;
    tokenizer.save(tokenizer_path)?;
    let shards = prepare(
        &train_file,
        tokenizer_path,
        Path::new(&config.training.data),
        &ValSource::File(val_file),
        BadLinePolicy::Fail,
    )?;
    Ok(TaskData {
        files,
        vocab_size: tokenizer.vocab_size(),
        shards,
    })
}
