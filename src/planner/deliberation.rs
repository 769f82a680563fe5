//! The deliberation thread: System 2 beside generation. A real OS thread with its own rayon pool
//! (`planner_threads`), so generation keeps its cores on the cpu device. Generation posts
//! snapshots and never blocks: a newer snapshot replaces one the planner has not taken yet, and
//! plans come back through a channel generation polls without waiting.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::latent_model::LatentModel;
use super::plan::{Plan, Snapshot};
use super::planning::{PlannerConfig, plan};
use crate::error::{Error, Result};

/// The one-slot mailbox: the newest unread snapshot, or a request to stop.
#[derive(Default)]
struct Mailbox {
    slot: Mutex<(Option<Snapshot>, bool)>,
    ready: Condvar,
}

/// The slot, whatever a panicking holder left: it holds plain data (a snapshot and a flag),
/// always whole, so a planner that died mid-search must not take generation down with it.
fn lock(mailbox: &Mailbox) -> MutexGuard<'_, (Option<Snapshot>, bool)> {
    mailbox.slot.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Deliberation {
    mailbox: Arc<Mailbox>,
    plans: Receiver<Result<Plan>>,
    thread: Option<JoinHandle<()>>,
    /// Snapshots that replaced an unread one.
    pub replaced: u64,
}

impl Deliberation {
    /// Starts the planner thread on `threads` threads of its own.
    pub fn start(model: Arc<LatentModel>, config: PlannerConfig, threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("crsm-planner-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument {
                op: "Deliberation::start",
                detail: format!("the planner's thread pool: {e}"),
            })?;
        let mailbox = Arc::new(Mailbox::default());
        let (send, plans) = channel();
        let thread = std::thread::Builder::new()
            .name("crsm-deliberation".into())
            .spawn({
                let mailbox = mailbox.clone();
                move || pool.install(|| serve(&model, &config, &mailbox, send))
            })
            .map_err(|e| Error::InvalidArgument {
                op: "Deliberation::start",
                detail: format!("spawning the planner thread: {e}"),
            })?;
        Ok(Deliberation {
            mailbox,
            plans,
            thread: Some(thread),
            replaced: 0,
        })
    }

    /// Hands the planner a snapshot; never waits for it.
    pub fn post(&mut self, snapshot: Snapshot) {
        let mut slot = lock(&self.mailbox);
        if slot.0.replace(snapshot).is_some() {
            self.replaced += 1;
        }
        self.mailbox.ready.notify_one();
    }

    /// The plans posted since the last call, without waiting; a search that failed is returned
    /// as its error.
    pub fn plans(&self) -> Result<Vec<Plan>> {
        self.plans.try_iter().collect()
    }
}

impl Drop for Deliberation {
    fn drop(&mut self) {
        lock(&self.mailbox).1 = true;
        self.mailbox.ready.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The planner thread's loop: take the newest snapshot, plan, post; until told to stop or the
/// receiving side is gone.
fn serve(
    model: &LatentModel,
    config: &PlannerConfig,
    mailbox: &Mailbox,
    send: Sender<Result<Plan>>,
) {
    loop {
        let snapshot = {
            let mut slot = lock(mailbox);
            loop {
                if slot.1 {
                    return;
                }
                if let Some(s) = slot.0.take() {
                    break s;
                }
                slot = mailbox
                    .ready
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if send.send(plan(model, config, &snapshot)).is_err() {
            return;
        }
    }
}
