//! The `arc` family's generator: procedurally made grid transformations in the ARC format
//! (`arc.rs`). A problem draws one transformation spec from `ops`, uniformly (one kind, or a
//! composition of two applied left to right; `all` is 5 single kinds among 25 specs), its
//! parameters (flip axis, rotation, shift, colour map), a palette of `colors` colours besides
//! background 0, and `demos + 1` input grids of min_size..=max_size rows and columns (each cell
//! background with probability 1/2, else a palette colour).
//!
//! A problem is kept only when (a) no output equals its input and (b) its answer is the only one:
//! every composition of at most two flips, rotations, translations (within `shift`) and scalings,
//! each with whatever colour map the demonstrations imply, that maps every demonstration input to
//! its output also maps the test input to the answer. So the test input's colours all appear in
//! the demonstrations and, say, a flip is never confused with a rotation the demonstrations cannot
//! tell apart from it.
//!
//! Held-out splits by parameter, not only by sample: train on `min_size=3,max_size=5` and test on
//! `min_size=6,max_size=6` (larger grids), or train on `ops=single` and test on `ops=pair`
//! (compositions never seen), or hold out some pairs (`ops=flip+rotate,scale+recolour`), or a
//! larger `shift`.

use serde_json::json;

use super::arc;
use super::arc_grid::{Grid, Kind, MAX_SIDE, Op};
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArcGrids {
    /// Input grids have min_size..=max_size rows and, independently, columns.
    pub min_size: usize,
    pub max_size: usize,
    /// Demonstration pairs in the prompt.
    pub demos: usize,
    /// Colours besides background 0 in a problem's inputs, drawn from 1..=9.
    pub colors: usize,
    /// Translations move by dy, dx in -shift..=shift (not both 0).
    pub shift: usize,
    /// The transformation specs, as given: comma-separated, each `single` (the five kinds),
    /// `pair` (every ordered composition of two different kinds), `all` (both), a kind
    /// (`recolour`, `flip`, `rotate`, `translate`, `scale`) or two joined by `+`.
    pub ops: String,
    specs: Vec<Vec<Kind>>,
}

impl Default for ArcGrids {
    fn default() -> Self {
        ArcGrids::new(3, 5, 2, 3, 1, "all").expect("the defaults are valid")
    }
}

/// Expands an `ops` value (see [`ArcGrids::ops`]) into kind sequences.
pub fn parse_ops(ops: &str) -> Result<Vec<Vec<Kind>>, String> {
    let pairs = || {
        Kind::ALL
            .into_iter()
            .flat_map(|a| Kind::ALL.into_iter().map(move |b| vec![a, b]))
            .filter(|s| s[0] != s[1])
    };
    let mut specs = Vec::new();
    for item in ops.split(',').map(str::trim) {
        match item {
            "single" => specs.extend(Kind::ALL.map(|k| vec![k])),
            "pair" => specs.extend(pairs()),
            "all" => {
                specs.extend(Kind::ALL.map(|k| vec![k]));
                specs.extend(pairs());
            }
            _ => {
                let kinds = item
                    .split('+')
                    .map(|k| Kind::from_name(k.trim()))
                    .collect::<Option<Vec<Kind>>>()
                    .filter(|ks| ks.len() <= 2)
                    .ok_or_else(|| {
                        format!(
                            "ops item {item:?}: expected single, pair, all, a kind (recolour, \
                             flip, rotate, translate, scale) or two kinds joined by +"
                        )
                    })?;
                specs.push(kinds);
            }
        }
    }
    specs.sort();
    specs.dedup();
    Ok(specs)
}

impl ArcGrids {
    /// Checks the ranges: 1 <= min_size <= max_size <= 15, 1 <= demos <= 10, 1 <= colors <= 9,
    /// 1 <= shift <= 5, and a valid `ops`.
    pub fn new(
        min_size: usize,
        max_size: usize,
        demos: usize,
        colors: usize,
        shift: usize,
        ops: &str,
    ) -> Result<ArcGrids, String> {
        if !(1 <= min_size && min_size <= max_size && max_size <= MAX_SIDE / 2) {
            return Err(format!(
                "min_size {min_size}, max_size {max_size}: need 1 <= min_size <= max_size <= {}",
                MAX_SIDE / 2
            ));
        }
        if !(1..=10).contains(&demos) || !(1..=9).contains(&colors) || !(1..=5).contains(&shift) {
            return Err(format!(
                "demos {demos}, colors {colors}, shift {shift}: need demos 1..=10, colors 1..=9, \
                 shift 1..=5"
            ));
        }
        Ok(ArcGrids {
            min_size,
            max_size,
            demos,
            colors,
            shift,
            ops: ops.to_string(),
            specs: parse_ops(ops)?,
        })
    }

    /// The generator's parameters, for a problem's `meta`.
    pub fn meta(&self) -> serde_json::Value {
        json!({
            "min_size": self.min_size, "max_size": self.max_size, "demos": self.demos,
            "colors": self.colors, "shift": self.shift, "ops": self.ops,
        })
    }

    /// A problem from `rng`, or `None` when 1000 draws in a row were trivial or ambiguous (the
    /// parameters allow too few problems, e.g. 1 x 1 grids).
    pub fn sample(&self, rng: &mut Rng) -> Option<Instance> {
        let below = |rng: &mut Rng, n: usize| (rng.next_u64() % n as u64) as usize;
        let singles = geometric_singles(self.shift);
        for _ in 0..1000 {
            let spec = &self.specs[below(rng, self.specs.len())];
            let ops: Vec<Op> = spec.iter().map(|&k| self.draw_op(k, rng)).collect();
            let mut palette: Vec<u8> = (1..=9).collect();
            shuffle(&mut palette, rng);
            palette.truncate(self.colors);
            let mut pairs = Vec::with_capacity(self.demos + 1);
            for _ in 0..=self.demos {
                let span = self.max_size - self.min_size + 1;
                let (h, w) = (
                    self.min_size + below(rng, span),
                    self.min_size + below(rng, span),
                );
                let cells = (0..h * w)
                    .map(|_| match rng.next_u64() % 2 {
                        0 => 0,
                        _ => palette[below(rng, palette.len())],
                    })
                    .collect();
                let input = Grid::from_cells(h, w, cells).expect("a valid shape");
                let output = ops.iter().fold(input.clone(), |g, op| op.apply(&g));
                pairs.push((input, output));
            }
            let trivial = pairs.iter().any(|(i, o)| i == o);
            let too_big = pairs
                .iter()
                .any(|(_, o)| o.height() > MAX_SIDE || o.width() > MAX_SIDE);
            if trivial || too_big {
                continue;
            }
            let (test, answer) = pairs.pop().expect("demos + 1 pairs");
            if unambiguous(&pairs, &test, &answer, &singles) {
                return Some(Instance {
                    demos: pairs,
                    test,
                    answer,
                    ops,
                });
            }
        }
        None
    }

    fn draw_op(&self, kind: Kind, rng: &mut Rng) -> Op {
        match kind {
            Kind::Recolour => {
                let mut colours: Vec<u8> = (1..=9).collect();
                shuffle(&mut colours, rng);
                let mut map = [0u8; 10];
                map[1..].copy_from_slice(&colours);
                Op::Recolour(map)
            }
            Kind::Flip => Op::Flip {
                left_right: rng.next_u64().is_multiple_of(2),
            },
            Kind::Rotate => Op::Rotate {
                quarters: 1 + (rng.next_u64() % 3) as u8,
            },
            Kind::Translate => loop {
                let span = 2 * self.shift as u64 + 1;
                let dy = (rng.next_u64() % span) as i32 - self.shift as i32;
                let dx = (rng.next_u64() % span) as i32 - self.shift as i32;
                if (dy, dx) != (0, 0) {
                    break Op::Translate { dy, dx };
                }
            },
            Kind::Scale => Op::Scale { factor: 2 },
        }
    }
}

/// One generated problem: the demonstrations, the test pair and the transformation applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub demos: Vec<(Grid, Grid)>,
    pub test: Grid,
    pub answer: Grid,
    pub ops: Vec<Op>,
}

impl Instance {
    pub fn prompt(&self) -> String {
        arc::prompt(&self.demos, &self.test)
    }

    /// The ops' names joined by `+`, in the order applied (e.g. `rotate90+recolour:0324156789`).
    pub fn transform(&self) -> String {
        self.ops.iter().map(Op::name).collect::<Vec<_>>().join("+")
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
}

/// Every flip, rotation, translation within `shift` and the x2 scaling: the colour-blind ops.
fn geometric_singles(shift: usize) -> Vec<Op> {
    let s = shift as i32;
    let mut ops = vec![
        Op::Flip { left_right: true },
        Op::Flip { left_right: false },
    ];
    ops.extend((1..=3).map(|quarters| Op::Rotate { quarters }));
    for dy in -s..=s {
        for dx in -s..=s {
            if (dy, dx) != (0, 0) {
                ops.push(Op::Translate { dy, dx });
            }
        }
    }
    ops.push(Op::Scale { factor: 2 });
    ops
}

/// Whether every composition of at most two of `singles`, followed by the colour map the
/// demonstrations imply, that fits every demonstration gives `answer` on `test`.
fn unambiguous(demos: &[(Grid, Grid)], test: &Grid, answer: &Grid, singles: &[Op]) -> bool {
    let choices: Vec<Option<&Op>> = std::iter::once(None)
        .chain(singles.iter().map(Some))
        .collect();
    let apply = |g: &Grid, a: Option<&Op>, b: Option<&Op>| {
        let g = a.map_or_else(|| g.clone(), |op| op.apply(g));
        b.map_or(g.clone(), |op| op.apply(&g))
    };
    for &a in &choices {
        for &b in &choices {
            let moved: Vec<(Grid, &Grid)> =
                demos.iter().map(|(i, o)| (apply(i, a, b), o)).collect();
            let Some(map) = implied_colour_map(&moved) else {
                continue;
            };
            let predicted = apply(test, a, b);
            let agrees = predicted.height() == answer.height()
                && predicted.width() == answer.width()
                && predicted
                    .cells()
                    .iter()
                    .zip(answer.cells())
                    .all(|(&p, &want)| map[p as usize] == Some(want));
            if !agrees {
                return false;
            }
        }
    }
    true
}

/// The one colour map (any function of colours) that turns each moved input into its output, on
/// the colours seen; `None` when shapes differ or a colour would need two images.
fn implied_colour_map(pairs: &[(Grid, &Grid)]) -> Option<[Option<u8>; 10]> {
    let mut map = [None; 10];
    for (moved, output) in pairs {
        if moved.height() != output.height() || moved.width() != output.width() {
            return None;
        }
        for (&from, &to) in moved.cells().iter().zip(output.cells()) {
            match map[from as usize] {
                None => map[from as usize] = Some(to),
                Some(seen) if seen != to => return None,
                Some(_) => {}
            }
        }
    }
    Some(map)
}
