//! ARC grids: a rectangle of colours 0..=9, its one-line serialisation and the transformations the
//! `arc` generator composes.
//!
//! Serialisation: the rows top to bottom, each row its colours left to right as the digits `0`-`9`
//! with nothing between them, rows joined by `/`. `[[1,2,0],[3,4,5]]` is exactly `120/345`; a 1x1
//! grid of colour 7 is `7`. The shape is implicit (rows counted, digits per row), so every row must
//! have the same number of digits; no spaces, no empty rows, at most 30 x 30 (ARC's largest).

use std::fmt;

/// ARC's largest side.
pub const MAX_SIDE: usize = 30;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grid {
    height: usize,
    width: usize,
    /// Row-major colours, each 0..=9.
    cells: Vec<u8>,
}

impl Grid {
    /// A grid from its rows; an error (naming the row) when ragged, empty, too large or a colour is
    /// above 9.
    pub fn from_rows(rows: &[Vec<u8>]) -> Result<Grid, String> {
        let height = rows.len();
        let width = rows.first().map_or(0, Vec::len);
        if height == 0 || width == 0 {
            return Err("an empty grid".into());
        }
        if height > MAX_SIDE || width > MAX_SIDE {
            return Err(format!(
                "{height} x {width} exceeds {MAX_SIDE} x {MAX_SIDE}"
            ));
        }
        let mut cells = Vec::with_capacity(height * width);
        for (r, row) in rows.iter().enumerate() {
            if row.len() != width {
                return Err(format!(
                    "row {r} has {} cells, row 0 has {width}",
                    row.len()
                ));
            }
            if let Some(c) = row.iter().find(|&&c| c > 9) {
                return Err(format!("row {r} holds colour {c} (colours are 0..=9)"));
            }
            cells.extend_from_slice(row);
        }
        Ok(Grid {
            height,
            width,
            cells,
        })
    }

    /// A grid from row-major cells; `None` unless the shape matches and every colour is 0..=9.
    pub fn from_cells(height: usize, width: usize, cells: Vec<u8>) -> Option<Grid> {
        (height >= 1
            && width >= 1
            && cells.len() == height * width
            && cells.iter().all(|&c| c <= 9))
        .then_some(Grid {
            height,
            width,
            cells,
        })
    }

    /// Parses the serialisation exactly (see the module doc); `None` for anything else.
    pub fn parse(text: &str) -> Option<Grid> {
        let rows: Vec<Vec<u8>> = text
            .split('/')
            .map(|row| {
                row.bytes()
                    .map(|b| b.is_ascii_digit().then(|| b - b'0'))
                    .collect::<Option<Vec<u8>>>()
            })
            .collect::<Option<_>>()?;
        Grid::from_rows(&rows).ok()
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn get(&self, row: usize, col: usize) -> u8 {
        self.cells[row * self.width + col]
    }

    pub fn cells(&self) -> &[u8] {
        &self.cells
    }

    /// Each output cell (r, c) takes the colour at `source(r, c)` of `self`, or 0 where that is
    /// `None` (outside the grid).
    fn build(
        &self,
        height: usize,
        width: usize,
        source: impl Fn(usize, usize) -> Option<(usize, usize)>,
    ) -> Grid {
        let mut cells = Vec::with_capacity(height * width);
        for r in 0..height {
            for c in 0..width {
                cells.push(source(r, c).map_or(0, |(sr, sc)| self.get(sr, sc)));
            }
        }
        Grid {
            height,
            width,
            cells,
        }
    }

    /// Mirrors left to right (each row reversed).
    pub fn flip_left_right(&self) -> Grid {
        let w = self.width;
        self.build(self.height, w, |r, c| Some((r, w - 1 - c)))
    }

    /// Mirrors top to bottom (the row order reversed).
    pub fn flip_up_down(&self) -> Grid {
        let h = self.height;
        self.build(h, self.width, |r, c| Some((h - 1 - r, c)))
    }

    /// Rotates 90 degrees clockwise: an h x w grid becomes w x h, its first column (read bottom to
    /// top) the new first row.
    pub fn rotate_clockwise(&self) -> Grid {
        let h = self.height;
        self.build(self.width, h, |r, c| Some((h - 1 - c, r)))
    }

    /// Shifts the content `dy` rows down and `dx` columns right (negative: up, left), same shape:
    /// what leaves the grid is lost and what is vacated becomes background 0 (not cyclic).
    pub fn translate(&self, dy: i32, dx: i32) -> Grid {
        let (h, w) = (self.height as i64, self.width as i64);
        self.build(self.height, self.width, |r, c| {
            let (sr, sc) = (r as i64 - dy as i64, c as i64 - dx as i64);
            ((0..h).contains(&sr) && (0..w).contains(&sc)).then_some((sr as usize, sc as usize))
        })
    }

    /// Upsamples by `k`: each cell becomes a k x k block (h x w becomes kh x kw).
    pub fn scale(&self, k: usize) -> Grid {
        self.build(self.height * k, self.width * k, |r, c| Some((r / k, c / k)))
    }

    /// Replaces each colour `c` by `map[c]`.
    pub fn recolour(&self, map: &[u8; 10]) -> Grid {
        Grid {
            height: self.height,
            width: self.width,
            cells: self.cells.iter().map(|&c| map[c as usize]).collect(),
        }
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (r, row) in self.cells.chunks(self.width).enumerate() {
            if r > 0 {
                f.write_str("/")?;
            }
            for &c in row {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The five kinds of transformation; a problem applies one or a composition of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Recolour,
    Flip,
    Rotate,
    Translate,
    Scale,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Recolour,
        Kind::Flip,
        Kind::Rotate,
        Kind::Translate,
        Kind::Scale,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Recolour => "recolour",
            Kind::Flip => "flip",
            Kind::Rotate => "rotate",
            Kind::Translate => "translate",
            Kind::Scale => "scale",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One transformation with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A colour map, each image 0..=9; the generator's keep background 0 (so they commute with
    /// translate's fill).
    Recolour([u8; 10]),
    /// `true`: left to right; `false`: top to bottom.
    Flip {
        left_right: bool,
    },
    /// Clockwise quarter turns, 1..=3.
    Rotate {
        quarters: u8,
    },
    Translate {
        dy: i32,
        dx: i32,
    },
    Scale {
        factor: usize,
    },
}

impl Op {
    pub fn apply(&self, grid: &Grid) -> Grid {
        match self {
            Op::Recolour(map) => grid.recolour(map),
            Op::Flip { left_right: true } => grid.flip_left_right(),
            Op::Flip { left_right: false } => grid.flip_up_down(),
            Op::Rotate { quarters } => {
                (0..*quarters).fold(grid.clone(), |g, _| g.rotate_clockwise())
            }
            Op::Translate { dy, dx } => grid.translate(*dy, *dx),
            Op::Scale { factor } => grid.scale(*factor),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Op::Recolour(_) => Kind::Recolour,
            Op::Flip { .. } => Kind::Flip,
            Op::Rotate { .. } => Kind::Rotate,
            Op::Translate { .. } => Kind::Translate,
            Op::Scale { .. } => Kind::Scale,
        }
    }

    /// A short name for `meta`: `recolour:0312456789` (the map of 0..=9), `flip_lr`, `flip_ud`,
    /// `rotate90` (clockwise), `translate(-1,2)` (dy, dx), `scale2`.
    pub fn name(&self) -> String {
        match self {
            Op::Recolour(map) => {
                let digits: String = map.iter().map(|c| char::from(b'0' + c)).collect();
                format!("recolour:{digits}")
            }
            Op::Flip { left_right: true } => "flip_lr".into(),
            Op::Flip { left_right: false } => "flip_ud".into(),
            Op::Rotate { quarters } => format!("rotate{}", 90 * *quarters as u32),
            Op::Translate { dy, dx } => format!("translate({dy},{dx})"),
            Op::Scale { factor } => format!("scale{factor}"),
        }
    }
}
