//! Path-star graphs (Bachmann & Nagarajan, "The pitfalls of next-token prediction", 2024): a
//! source with `d` arms of `l` nodes each, labels drawn without repeats from 0..n, the goal at the
//! end of one arm, the edges shuffled. Prompt exactly `u,v|u,v|...|u,v/s,g=`, answer `s,a1,...,g`.
//! Only the first arm node needs lookahead: a teacher-forced next-token model stays near 1/d.

use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathStar {
    /// Arms, nodes per arm (after the source), label range.
    pub d: usize,
    pub l: usize,
    pub n: usize,
}

impl Default for PathStar {
    fn default() -> Self {
        PathStar { d: 2, l: 5, n: 50 }
    }
}

/// One graph: the edge list in prompt order, the source, the goal and the goal's arm (the answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub edges: Vec<(u32, u32)>,
    pub source: u32,
    pub goal: u32,
    pub path: Vec<u32>,
}

impl Graph {
    pub fn prompt(&self) -> String {
        let edges: Vec<String> = self.edges.iter().map(|(u, v)| format!("{u},{v}")).collect();
        format!("{}/{},{}=", edges.join("|"), self.source, self.goal)
    }

    pub fn answer(&self) -> String {
        path_text(&self.path)
    }
}

impl PathStar {
    /// Needs 1 + d l distinct labels below n.
    pub fn valid(&self) -> bool {
        self.d >= 1 && self.l >= 1 && self.d * self.l < self.n
    }

    /// A graph from `rng`: labels a partial shuffle of 0..n, arms in label order, edges shuffled.
    pub fn sample(&self, rng: &mut Rng) -> Graph {
        let mut labels: Vec<u32> = (0..self.n as u32).collect();
        let need = 1 + self.d * self.l;
        for i in 0..need {
            let j = i + (rng.next_u64() % (self.n - i) as u64) as usize;
            labels.swap(i, j);
        }
        let source = labels[0];
        let arms: Vec<&[u32]> = labels[1..need].chunks(self.l).collect();
        let mut edges = Vec::with_capacity(self.d * self.l);
        for arm in &arms {
            edges.push((source, arm[0]));
            edges.extend(arm.windows(2).map(|w| (w[0], w[1])));
        }
        for i in (1..edges.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            edges.swap(i, j);
        }
        let goal_arm = arms[(rng.next_u64() % self.d as u64) as usize];
        let mut path = vec![source];
        path.extend_from_slice(goal_arm);
        Graph {
            edges,
            source,
            goal: *goal_arm.last().expect("l >= 1"),
            path,
        }
    }
}

/// A parsed prompt: the edges, the source and the goal.
pub type Query = (Vec<(u32, u32)>, u32, u32);

/// Parses a prompt `u,v|...|u,v/s,g=`.
pub fn parse_prompt(prompt: &str) -> Option<Query> {
    let body = prompt.strip_suffix('=')?;
    let (edges, query) = body.split_once('/')?;
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (a, b) = s.split_once(',')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    let edges = edges.split('|').map(pair).collect::<Option<Vec<_>>>()?;
    let (s, g) = pair(query)?;
    Some((edges, s, g))
}

/// Nodes as an answer writes them: `s,a1,...,g`.
pub fn path_text(nodes: &[u32]) -> String {
    nodes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The nodes of an answer (its first line), or None when it is not comma-separated labels.
pub fn parse_path(completion: &str) -> Option<Vec<u32>> {
    let line = completion.lines().next().unwrap_or("").trim();
    line.split(',').map(|t| t.trim().parse().ok()).collect()
}

/// Whether `completion` (its first line, up to any end marker) is a path from the source to the
/// goal along the prompt's edges: any valid path counts.
pub fn verify(prompt: &str, completion: &str) -> bool {
    let Some((edges, s, g)) = parse_prompt(prompt) else {
        return false;
    };
    let Some(path) = parse_path(completion) else {
        return false;
    };
    path.first() == Some(&s)
        && path.last() == Some(&g)
        && path.windows(2).all(|w| edges.contains(&(w[0], w[1])))
}
