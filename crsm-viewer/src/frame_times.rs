//! Frame times, kept by the app and summarised on exit (p50 / p99): how the UI holds up while a
//! live run generates beside it.

use std::time::{Duration, Instant};

#[derive(Default)]
pub struct FrameTimes {
    /// Time spent building each frame's UI, in ms.
    pub build_ms: Vec<f32>,
    /// Time from one frame's start to the next's, in ms.
    pub interval_ms: Vec<f32>,
    last_start: Option<Instant>,
}

impl FrameTimes {
    pub fn start(&mut self) -> Instant {
        let now = Instant::now();
        if let Some(last) = self.last_start {
            self.interval_ms.push(ms(now - last));
        }
        self.last_start = Some(now);
        now
    }

    pub fn end(&mut self, start: Instant) {
        self.build_ms.push(ms(start.elapsed()));
    }

    pub fn summary(&self) -> String {
        format!(
            "{} frames: UI build p50 {:.2} ms p99 {:.2} ms; frame interval p50 {:.2} ms p99 {:.2} ms",
            self.build_ms.len(),
            percentile(&self.build_ms, 0.50),
            percentile(&self.build_ms, 0.99),
            percentile(&self.interval_ms, 0.50),
            percentile(&self.interval_ms, 0.99),
        )
    }
}

fn ms(d: Duration) -> f32 {
    d.as_secs_f32() * 1000.0
}

/// The nearest-rank percentile (0 when empty).
pub fn percentile(xs: &[f32], q: f32) -> f32 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f32::total_cmp);
    v[((q * v.len() as f32).ceil() as usize).clamp(1, v.len()) - 1]
}
