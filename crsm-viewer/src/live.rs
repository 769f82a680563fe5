//! Live mode: the one module that touches generation. A worker thread loads the model, runs
//! `crsm::generate::generate` over a `DeliberateSession` (the planner on its own thread in async
//! mode) and writes the session's trace into a sink that turns each line back into a
//! `TraceEvent` and sends it down a channel. The UI drains the channel each frame and never
//! waits on the model or the planner; Stop sets a flag the worker reads between tokens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use crsm::data::Tokenizer;
use crsm::generate::deliberate::{DeliberateSession, Mode, Steering};
use crsm::generate::{GenerateOptions, SamplingConfig, generate};
use crsm::latent::CrsmCheckpoint;
use crsm::planner::config::SearchConfig;
use crsm::planner::delta_buffer::BufferConfig;
use crsm::planner::latent_model::LatentModel;
use crsm::planner::leaf_evaluator::LeafValue;
use crsm::planner::planning::{DynamicsMode, PlannerConfig};
use crsm::trace::{Header, SCHEMA, TraceEvent, TraceWriter, VERSION};
use crsm::{Device, DeviceRequest};

use crate::view::TraceView;

/// The controls: what the next Start runs with.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub prompt: String,
    pub mode: Mode,
    pub injection_rate: f32,
    pub guidance: f32,
    pub lag: u64,
    pub simulations: usize,
    pub temperature: f32,
    pub max_new_tokens: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            prompt: "It is a truth universally acknowledged".into(),
            mode: Mode::Async,
            injection_rate: 0.1,
            guidance: 0.5,
            lag: 1,
            simulations: 16,
            temperature: 0.8,
            max_new_tokens: 64,
        }
    }
}

/// What the worker tells the UI.
enum Msg {
    Header(Header),
    Event(TraceEvent),
    /// A token's text, for the tree's edges.
    Text(u32, String),
    Finished(String),
    Failed(String),
}

struct Worker {
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

pub struct Live {
    pub dir: PathBuf,
    pub device: DeviceRequest,
    pub settings: LiveSettings,
    /// The last thing the worker said, or why the model cannot be opened.
    pub status: String,
    pub failed: bool,
    worker: Option<Worker>,
    /// Event line numbers, as a trace file would number them (the header is line 1).
    line: usize,
}

impl Live {
    /// A missing or incomplete model folder is reported here and in the window, never a panic.
    pub fn new(dir: PathBuf, device: DeviceRequest) -> Self {
        let (status, failed) = match check_model_dir(&dir) {
            Ok(()) => (format!("model {}: press Start", dir.display()), false),
            Err(e) => (format!("{e:#}"), true),
        };
        Live {
            dir,
            device,
            settings: LiveSettings::default(),
            status,
            failed,
            worker: None,
            line: 1,
        }
    }

    pub fn running(&self) -> bool {
        self.worker.is_some()
    }

    pub fn controls_ui(&mut self, ui: &mut egui::Ui, view: &mut TraceView) {
        let idle = self.worker.is_none();
        let mut start = false;
        ui.horizontal(|ui| {
            let s = &mut self.settings;
            let label = ui.label("Prompt");
            ui.add_enabled(
                idle,
                egui::TextEdit::singleline(&mut s.prompt).desired_width(320.0),
            )
            .labelled_by(label.id);
            ui.label("Mode");
            for mode in [Mode::Off, Mode::Async, Mode::Sync] {
                ui.add_enabled_ui(idle, |ui| {
                    ui.selectable_value(&mut s.mode, mode, mode.name())
                });
            }
            if idle {
                start = ui
                    .add_enabled(!self.failed, egui::Button::new("Start"))
                    .clicked();
            } else if ui.button("Stop").clicked() {
                self.stop();
            }
        });
        if start {
            self.start(ui.ctx().clone(), view);
        }
        let s = &mut self.settings;
        ui.add_enabled_ui(idle, |ui| {
            ui.horizontal(|ui| {
                ui.add(egui::Slider::new(&mut s.injection_rate, 0.0..=1.0).text("injection rate"));
                ui.add(egui::Slider::new(&mut s.guidance, 0.0..=1.0).text("guidance"));
                ui.add(egui::Slider::new(&mut s.lag, 0..=4).text("lag"));
                ui.add(egui::Slider::new(&mut s.simulations, 1..=128).text("simulations"));
                ui.add(egui::Slider::new(&mut s.temperature, 0.0..=2.0).text("temperature"));
                ui.add(egui::Slider::new(&mut s.max_new_tokens, 1..=512).text("tokens"));
            });
        });
        let colour = if self.failed {
            ui.visuals().error_fg_color
        } else {
            ui.visuals().text_color()
        };
        ui.colored_label(colour, &self.status);
    }

    /// Starts a generation on a worker thread; the view restarts empty.
    pub fn start(&mut self, ctx: egui::Context, view: &mut TraceView) {
        if self.worker.is_some() || self.failed {
            return;
        }
        *view = TraceView::default();
        self.line = 1;
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, device, settings, flag) = (
            self.dir.clone(),
            self.device,
            self.settings.clone(),
            stop.clone(),
        );
        let handle = std::thread::spawn(move || {
            let done = match run(&dir, device, &settings, &tx, &flag, &ctx) {
                Ok(msg) => Msg::Finished(msg),
                Err(e) => Msg::Failed(format!("{e:#}")),
            };
            let _ = tx.send(done);
            ctx.request_repaint();
        });
        self.status = "loading the model...".into();
        self.worker = Some(Worker {
            rx,
            stop,
            handle: Some(handle),
        });
    }

    pub fn stop(&mut self) {
        if let Some(w) = &self.worker {
            w.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Takes whatever the worker sent since the last frame; never blocks.
    pub fn poll(&mut self, view: &mut TraceView) {
        let Some(w) = &mut self.worker else {
            return;
        };
        let mut ended = false;
        loop {
            match w.rx.try_recv() {
                Ok(Msg::Header(h)) => {
                    self.status = format!("generating ({})...", h.mode);
                    view.header = Some(h);
                }
                Ok(Msg::Event(e)) => {
                    self.line += 1;
                    view.push(self.line, e);
                }
                Ok(Msg::Text(id, t)) => view.set_text(id, t),
                Ok(Msg::Finished(s)) => self.status = s,
                Ok(Msg::Failed(s)) => self.status = format!("failed: {s}"),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    ended = true;
                    break;
                }
            }
        }
        if ended {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
            self.worker = None;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_model_dir(dir: &Path) -> Result<()> {
    anyhow::ensure!(dir.is_dir(), "no model folder at {}", dir.display());
    for f in ["config.json", "model.safetensors"] {
        anyhow::ensure!(
            dir.join(f).is_file(),
            "{} has no {f}: not a model folder",
            dir.display()
        );
    }
    Ok(())
}

/// The worker: load, generate with deliberation, finish. As crsm-train's `generate` builds it.
fn run(
    dir: &Path,
    device: DeviceRequest,
    s: &LiveSettings,
    tx: &Sender<Msg>,
    stop: &AtomicBool,
    ctx: &egui::Context,
) -> Result<String> {
    let device = Device::open(device).context("opening the device")?;
    let tokenizer = load_tokenizer(dir)?;
    let prompt_ids = tokenizer.encode(&s.prompt)?;
    anyhow::ensure!(!prompt_ids.is_empty(), "the prompt is empty");
    let checkpoint = CrsmCheckpoint::load(dir, &device)
        .with_context(|| format!("loading {} (an assembled CRSM folder)", dir.display()))?;
    let model = LatentModel::from_checkpoint(checkpoint)?;
    let mut search = SearchConfig::for_budget(s.simulations, 8);
    search.seed = 0;
    let steering = Steering {
        injection_rate: s.injection_rate,
        guidance: s.guidance,
        buffer: BufferConfig::default(),
        ..Steering::default()
    };
    let planner = PlannerConfig {
        dynamics: DynamicsMode::Learned,
        search,
        lag: s.lag,
        leaf_value: LeafValue::Critic,
        trace_nodes: 64,
    };
    let header = Header {
        schema: SCHEMA.into(),
        version: VERSION,
        model: dir.display().to_string(),
        mode: s.mode.name().into(),
        settings: serde_json::json!({
            "lag": s.lag, "simulations": s.simulations, "injection_rate": s.injection_rate,
            "guidance": s.guidance, "temperature": s.temperature,
        }),
        prompt_ids: prompt_ids.clone(),
        prompt: s.prompt.clone(),
    };
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let sink = ChannelSink {
        pending: Vec::new(),
        tx: tx.clone(),
        tokenizer: load_tokenizer(dir)?,
        ctx: ctx.clone(),
    };
    let mut session = DeliberateSession::new(model, s.mode, steering, planner, 1, generation)?
        .with_trace(
            TraceWriter::to_sink(Box::new(sink), header)?,
            Some(load_tokenizer(dir)?),
        );
    let opts = GenerateOptions {
        max_new_tokens: s.max_new_tokens,
        sampling: SamplingConfig {
            temperature: s.temperature,
            ..SamplingConfig::greedy()
        },
        stop_on_eos: tokenizer.eos_id(),
        stop_strings: Vec::new(),
    };
    let result = generate(&mut session, &prompt_ids, &opts, Some(&tokenizer), |_| {
        if stop.load(Ordering::Relaxed) {
            return Err(crsm::Error::InvalidArgument {
                op: "viewer",
                detail: "stopped".into(),
            });
        }
        Ok(())
    });
    let stats = session.finish()?;
    let p = stats.plans;
    let counts = format!(
        "{} tokens; plans received {} / applied {} / late {} / dropped {} / diverged {}",
        stats.steps, p.received, p.applied, p.decayed, p.dropped, p.diverged
    );
    match result {
        Ok(_) => Ok(format!("done: {counts}")),
        Err(_) if stop.load(Ordering::Relaxed) => Ok(format!("stopped: {counts}")),
        Err(e) => Err(e.into()),
    }
}

/// The folder's tokenizer.json, else bytes as tokens (as crsm-train's `generate`). Loaded once
/// per user (prompt, session, sink): the tokenizer is not `Clone`.
fn load_tokenizer(dir: &Path) -> Result<Tokenizer> {
    let path = dir.join("tokenizer.json");
    Ok(if path.exists() {
        Tokenizer::from_file(&path)?
    } else {
        Tokenizer::byte_level()
    })
}

/// The trace writer's sink: each complete line becomes a `TraceEvent` on the channel, with the
/// texts of a plan's tree tokens, and wakes the UI.
struct ChannelSink {
    pending: Vec<u8>,
    tx: Sender<Msg>,
    tokenizer: Tokenizer,
    ctx: egui::Context,
}

impl Write for ChannelSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let Ok(event) = serde_json::from_slice::<TraceEvent>(&line) else {
                continue;
            };
            if let TraceEvent::PlanPosted { nodes, .. } = &event {
                for t in nodes.iter().filter_map(|n| n.token) {
                    if let Ok(text) = self.tokenizer.decode(&[t]) {
                        let _ = self.tx.send(Msg::Text(t, text));
                    }
                }
            }
            let msg = match event {
                TraceEvent::Header(h) => Msg::Header(h),
                e => Msg::Event(e),
            };
            // The UI may be gone (window closed): generation then just runs out.
            let _ = self.tx.send(msg);
            self.ctx.request_repaint();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A replay whose model folder is still on disk: the texts of every token its trees name, from
/// the folder's tokenizer (the trace itself carries only the generated tokens' texts). Without a
/// tokenizer the tree keeps `#id` labels.
pub fn add_tree_texts(view: &mut TraceView) {
    let Some(dir) = view.header.as_ref().map(|h| PathBuf::from(&h.model)) else {
        return;
    };
    let path = dir.join("tokenizer.json");
    let Ok(tokenizer) = Tokenizer::from_file(&path) else {
        return;
    };
    let ids: std::collections::BTreeSet<u32> = view
        .plans()
        .flat_map(|p| p.nodes.iter().filter_map(|n| n.token).chain([p.chosen]))
        .collect();
    for id in ids {
        if let Ok(text) = tokenizer.decode(&[id]) {
            view.set_text(id, text);
        }
    }
}
