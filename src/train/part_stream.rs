//! The sample order of a stage task whose data lies on disk in parts (trace parts, state pairs):
//! an epoch visits the parts in a seeded order and the samples of each part in a seeded order,
//! so one part at a time is in memory and `DataPosition` (seed, epoch, index) resumes the exact
//! stream.

use crate::data::{DataPosition, permutation};
use crate::error::{Error, Result};

pub struct PartStream {
    /// Samples per part.
    sizes: Vec<usize>,
    position: DataPosition,
    /// The parts in this epoch's order, the first sample index of each in it, and the total.
    order: Vec<usize>,
    starts: Vec<usize>,
    /// The current part and its samples in their order.
    current: Option<(usize, Vec<usize>)>,
}

impl PartStream {
    /// `sizes[p]` samples in part p; the stream continues from `position`. No sample at all is
    /// an error (there would be nothing to draw).
    pub fn new(sizes: Vec<usize>, position: DataPosition) -> Result<Self> {
        if sizes.iter().sum::<usize>() == 0 {
            return Err(Error::InvalidArgument {
                op: "PartStream::new",
                detail: format!("{} parts and no sample in any of them", sizes.len()),
            });
        }
        let mut stream = PartStream {
            sizes,
            position,
            order: Vec::new(),
            starts: Vec::new(),
            current: None,
        };
        stream.plan_epoch();
        Ok(stream)
    }

    fn plan_epoch(&mut self) {
        let p = self.position;
        self.order = permutation(self.sizes.len(), p.seed, p.epoch);
        let mut start = 0;
        self.starts = self
            .order
            .iter()
            .map(|&part| {
                let s = start;
                start += self.sizes[part];
                s
            })
            .collect();
        self.starts.push(start);
        self.current = None;
    }

    /// The next sample: (part, sample index within the part).
    pub fn next_sample(&mut self) -> (usize, usize) {
        if self.position.index >= *self.starts.last().expect("planned") {
            self.position.epoch += 1;
            self.position.index = 0;
            self.plan_epoch();
        }
        let rank = self.starts.partition_point(|&s| s <= self.position.index) - 1;
        let part = self.order[rank];
        if self.current.as_ref().is_none_or(|(p, _)| *p != part) {
            // A per-part order, distinct per (seed, epoch, part).
            let seed = self.position.seed ^ (part as u64 + 1) << 32;
            self.current = Some((
                part,
                permutation(self.sizes[part], seed, self.position.epoch),
            ));
        }
        let (_, order) = self.current.as_ref().expect("set above");
        let sample = order[self.position.index - self.starts[rank]];
        self.position.index += 1;
        (part, sample)
    }

    pub fn position(&self) -> DataPosition {
        self.position
    }
}
