//! ARC-format grids: the prompt and answer format of the `arc` family and its exact-match
//! verifier, shared by the generated transformations (`arc_gen.rs`) and the ARC-AGI-1 tasks
//! (`arc_agi.rs`).
//!
//! Format, byte for byte. A grid is its rows top to bottom joined by `/`, each row its colours as
//! the digits `0`-`9` with nothing between them (`[[1,2,0],[3,4,5]]` is `120/345`; `arc_grid.rs`).
//! A demonstration pair is `INPUT=OUTPUT`. The prompt is the k demonstration pairs, then the test
//! input followed by `=`, all joined by `|`: `IN1=OUT1|IN2=OUT2|TEST=`. The answer is the test
//! output grid alone, e.g. `21/43`. Nothing else appears: no spaces, no newlines, so the prompt
//! ends in `=` as in the other families and a completion that goes on in the demonstrations'
//! pattern ends its grid with `|`.
//!
//! Verifier: exact match of the one test output grid, shape and every cell. The completion's grid
//! is its text up to the first `|` or newline (or its end), surrounding whitespace ignored;
//! anything that is not exactly the reference grid there is wrong. Attempts: 1 attempt counts (the
//! first completion is judged; ARC-AGI's official rule allows 2 attempts per test output, so
//! scores here are not comparable with pass@2 leaderboards). Unlike path-star and countdown, the
//! verifier needs the reference answer: a grid transformation is not recoverable from the prompt
//! in general (the generator makes it the only one among its own transformations; see
//! `arc_gen.rs`).

use super::arc_grid::Grid;

/// `IN1=OUT1|...|INk=OUTk|TEST=` (see the module doc).
pub fn prompt(demos: &[(Grid, Grid)], test: &Grid) -> String {
    let mut text = String::new();
    for (input, output) in demos {
        text.push_str(&format!("{input}={output}|"));
    }
    text.push_str(&format!("{test}="));
    text
}

/// The demonstration pairs and the test input of a prompt; `None` unless it is exactly the format.
pub fn parse_prompt(prompt: &str) -> Option<(Vec<(Grid, Grid)>, Grid)> {
    let mut parts: Vec<&str> = prompt.strip_suffix('=')?.split('|').collect();
    let test = Grid::parse(parts.pop()?)?;
    let demos = parts
        .into_iter()
        .map(|pair| {
            let (input, output) = pair.split_once('=')?;
            Some((Grid::parse(input)?, Grid::parse(output)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((demos, test))
}

/// The grid a completion gives: its text up to the first `|` or newline, trimmed.
pub fn completion_grid(completion: &str) -> Option<Grid> {
    let end = completion.find(['|', '\n']).unwrap_or(completion.len());
    Grid::parse(completion[..end].trim())
}

/// Whether the completion's grid is exactly the reference `answer`; `None` when the reference
/// itself is not a grid (a broken problem, not a wrong completion).
pub fn verify(answer: &str, completion: &str) -> Option<bool> {
    let reference = Grid::parse(answer)?;
    Some(completion_grid(completion).as_ref() == Some(&reference))
}
