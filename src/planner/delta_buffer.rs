//! The targeted delta buffer: plans keyed by the generated token they were made for. A plan is
//! used exactly when generation reaches its target step; one that arrives after it is applied
//! with its alphas scaled by `decay^(steps late)`, or dropped past `max_lag`; one from another
//! generation is rejected. When several plans are due at once only the newest target is applied
//! (the older ones are dropped as superseded: injections do not stack). A plan searched from a
//! forward projection assumed the tokens between its snapshot and its target; once generation
//! has chosen otherwise the plan is about a text that will not exist, and it is dropped as
//! diverged. Every outcome is counted.

use std::collections::BTreeMap;

use super::plan::Plan;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BufferConfig {
    pub max_lag: u64,
    pub decay: f32,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_lag: 4,
            decay: 0.5,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub received: u64,
    pub applied: u64,
    pub decayed: u64,
    pub dropped: u64,
    pub diverged: u64,
    pub rejected: u64,
}

impl std::ops::AddAssign for Counts {
    /// Totals over generations (eval sums them per variant).
    fn add_assign(&mut self, c: Counts) {
        self.received += c.received;
        self.applied += c.applied;
        self.decayed += c.decayed;
        self.dropped += c.dropped;
        self.diverged += c.diverged;
        self.rejected += c.rejected;
    }
}

/// Why a plan was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// More than `max_lag` steps late.
    Late,
    /// A newer due plan was applied instead.
    Superseded,
    /// Generation chose other tokens than the plan's projection assumed.
    Diverged,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Late => "late",
            DropReason::Superseded => "superseded",
            DropReason::Diverged => "diverged",
        }
    }
}

/// What happens to a plan.
#[derive(Debug)]
pub enum Outcome {
    /// Due now: apply with alphas scaled by `factor` (1 on time, decay^late when late).
    Apply {
        plan: Box<Plan>,
        late: u64,
        factor: f32,
    },
    Dropped {
        target_step: u64,
        late: u64,
        reason: DropReason,
    },
    Rejected {
        generation: u64,
        target_step: u64,
    },
}

pub struct DeltaBuffer {
    generation: u64,
    config: BufferConfig,
    plans: BTreeMap<u64, Plan>,
    pub counts: Counts,
}

impl DeltaBuffer {
    pub fn new(generation: u64, config: BufferConfig) -> Self {
        DeltaBuffer {
            generation,
            config,
            plans: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Takes a plan in when generation has completed `step` tokens; a foreign one is rejected and
    /// one already past `max_lag` dropped (returned for the trace). A newer plan for the same
    /// target replaces the older.
    pub fn receive(&mut self, plan: Plan, step: u64) -> Option<Outcome> {
        self.counts.received += 1;
        if plan.generation != self.generation {
            self.counts.rejected += 1;
            return Some(Outcome::Rejected {
                generation: plan.generation,
                target_step: plan.target_step,
            });
        }
        let late = step.saturating_sub(plan.target_step);
        if late > self.config.max_lag {
            self.counts.dropped += 1;
            return Some(Outcome::Dropped {
                target_step: plan.target_step,
                late,
                reason: DropReason::Late,
            });
        }
        if self.plans.insert(plan.target_step, plan).is_some() {
            self.counts.dropped += 1;
        }
        None
    }

    /// Drops every plan whose assumed tokens disagree with `generated` (the tokens chosen so far,
    /// token 1 first), once generation has completed `step` tokens.
    pub fn drop_diverged(&mut self, generated: &[u32], step: u64) -> Vec<Outcome> {
        let diverged: Vec<u64> = self
            .plans
            .iter()
            .filter(|(_, p)| {
                // assumed[i] is token from_step + 1 + i, at index from_step + i of `generated`.
                p.assumed.iter().enumerate().any(|(i, &t)| {
                    generated
                        .get(p.from_step as usize + i)
                        .is_some_and(|&g| g != t)
                })
            })
            .map(|(&k, _)| k)
            .collect();
        diverged
            .into_iter()
            .map(|target| {
                self.plans.remove(&target);
                self.counts.diverged += 1;
                Outcome::Dropped {
                    target_step: target,
                    late: step.saturating_sub(target),
                    reason: DropReason::Diverged,
                }
            })
            .collect()
    }

    /// The plan made for the token about to be chosen (`step` = its number), for guidance.
    pub fn plan_for(&self, step: u64) -> Option<&Plan> {
        self.plans.get(&step)
    }

    /// The plans due once generation has completed `step` tokens: the newest with target <=
    /// step is applied (late if its target is earlier), every other due one is dropped.
    pub fn take_due(&mut self, step: u64) -> Vec<Outcome> {
        let later = self.plans.split_off(&(step + 1));
        let due = std::mem::replace(&mut self.plans, later);
        let mut out = Vec::new();
        let newest = due.keys().next_back().copied();
        for (target, plan) in due {
            let late = step - target;
            if Some(target) != newest || late > self.config.max_lag {
                self.counts.dropped += 1;
                let reason = if late > self.config.max_lag {
                    DropReason::Late
                } else {
                    DropReason::Superseded
                };
                out.push(Outcome::Dropped {
                    target_step: target,
                    late,
                    reason,
                });
                continue;
            }
            if late == 0 {
                self.counts.applied += 1;
            } else {
                self.counts.decayed += 1;
            }
            out.push(Outcome::Apply {
                plan: Box::new(plan),
                late,
                factor: self.config.decay.powi(late as i32),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn plan(generation: u64, target_step: u64) -> Plan {
        Plan {
            generation,
            from_step: target_step.saturating_sub(2),
            target_step,
            tokens: vec![1, 2],
            policy: vec![0.6, 0.4],
            prior: vec![0.5, 0.5],
            visits: vec![3, 1],
            chosen: 1,
            target_latent: vec![0.0; 4],
            confidences: vec![0.5; 2],
            value: -1.0,
            simulations: 4,
            latency: Duration::from_millis(1),
            nodes: Vec::new(),
            assumed: Vec::new(),
        }
    }

    fn buffer() -> DeltaBuffer {
        DeltaBuffer::new(
            7,
            BufferConfig {
                max_lag: 2,
                decay: 0.5,
            },
        )
    }

    #[test]
    fn a_plan_is_applied_exactly_at_its_target_step() {
        let mut b = buffer();
        assert!(b.receive(plan(7, 5), 3).is_none());
        assert!(b.plan_for(5).is_some() && b.plan_for(4).is_none());
        assert!(b.take_due(4).is_empty(), "not yet");
        match b.take_due(5).as_slice() {
            [
                Outcome::Apply {
                    plan,
                    late: 0,
                    factor,
                },
            ] => {
                assert_eq!((plan.target_step, *factor), (5, 1.0));
            }
            other => panic!("{other:?}"),
        }
        assert!(b.take_due(6).is_empty(), "used once");
        assert_eq!((b.counts.applied, b.counts.decayed), (1, 0));
    }

    #[test]
    fn a_late_plan_is_decayed_and_a_stale_one_dropped() {
        let mut b = buffer();
        // Arrives when generation has already passed its target by one step.
        assert!(b.receive(plan(7, 5), 6).is_none());
        match b.take_due(7).as_slice() {
            [
                Outcome::Apply {
                    late: 2, factor, ..
                },
            ] => assert_eq!(*factor, 0.25),
            other => panic!("{other:?}"),
        }
        // Past max_lag on arrival: dropped at once.
        match b.receive(plan(7, 5), 8) {
            Some(Outcome::Dropped {
                target_step: 5,
                late: 3,
                reason: DropReason::Late,
            }) => {}
            other => panic!("{other:?}"),
        }
        // Past max_lag by the time it is due: dropped then.
        assert!(b.receive(plan(7, 9), 9).is_none());
        match b.take_due(12).as_slice() {
            [
                Outcome::Dropped {
                    target_step: 9,
                    late: 3,
                    reason: DropReason::Late,
                },
            ] => {}
            other => panic!("{other:?}"),
        }
        assert_eq!((b.counts.decayed, b.counts.dropped), (1, 2));
    }

    #[test]
    fn a_foreign_plan_is_rejected_and_only_the_newest_due_plan_applies() {
        let mut b = buffer();
        match b.receive(plan(6, 5), 3) {
            Some(Outcome::Rejected {
                generation: 6,
                target_step: 5,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(b.plan_for(5).is_none());
        b.receive(plan(7, 4), 3);
        b.receive(plan(7, 5), 3);
        let due = b.take_due(5);
        assert!(
            matches!(
                due[0],
                Outcome::Dropped {
                    target_step: 4,
                    late: 1,
                    reason: DropReason::Superseded,
                }
            ),
            "{due:?}"
        );
        assert!(matches!(due[1], Outcome::Apply { late: 0, .. }), "{due:?}");
        assert_eq!(
            b.counts,
            Counts {
                received: 3,
                applied: 1,
                decayed: 0,
                dropped: 1,
                diverged: 0,
                rejected: 1
            }
        );
    }

    #[test]
    fn a_plan_whose_projection_generation_did_not_follow_is_dropped_as_diverged() {
        let mut b = buffer();
        // Searched from the snapshot after step 2, assuming tokens 3 and 4 would be 10 and 11.
        let mut p = plan(7, 5);
        p.from_step = 2;
        p.assumed = vec![10, 11];
        b.receive(p.clone(), 2);
        assert!(
            b.drop_diverged(&[1, 2, 10], 3).is_empty(),
            "so far as assumed"
        );
        match b.drop_diverged(&[1, 2, 10, 12], 4).as_slice() {
            [
                Outcome::Dropped {
                    target_step: 5,
                    reason: DropReason::Diverged,
                    ..
                },
            ] => {}
            other => panic!("{other:?}"),
        }
        assert!(b.plan_for(5).is_none());
        b.receive(p, 2);
        assert!(b.drop_diverged(&[1, 2, 10, 11], 4).is_empty(), "followed");
        assert_eq!(b.counts.diverged, 1);
    }
}
