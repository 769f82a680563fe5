//! Latent traces on disk: what stage 2 (`distill`) collects from the frozen backbone and trains
//! the dynamics on, too large to hold in memory at real model sizes (mamba-130m: 73 KB of
//! latents per token). A trace set is a folder:
//!
//! - `traces.json`: [`TraceHeader`], written first: the plan (window length, count, the seed that
//!   picks windows, the source checkpoint's and token shard's hashes, the shapes);
//! - `part-NNNNN.bin`: `windows_per_part` windows each, every window its `len` token ids (u32 LE)
//!   then its latents `[len, layers, d_model]` (f32 LE). Each part is written to a temporary file
//!   and renamed into place, so a part on disk is complete; its size is checked on open;
//! - `pairs-NNNNN.bin` (when `pairs_per_window` > 0), written before its part: the counterfactual
//!   state pairs of the part's windows (`state_pairs`), each pair its window (u32, index in the
//!   part), position and counterfactual token, then z, z' `[layers, d_model]` and h, h'
//!   `[layers, d_inner, d_state]` (f32 LE). The SSM states are what the delta broadcaster learns
//!   from; at real sizes they are 25 times a position's latents, so only a few positions per
//!   window carry them.
//!
//! Collection is deterministic (window i starts where a hash of (seed, i) says) and resumable:
//! a collection that stops after any part and is started again with the same plan skips the
//! parts on disk and writes the rest, byte-identical to an uninterrupted run. A plan that differs
//! (another checkpoint, other shards, other shapes) is refused, naming the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state_pairs::{PairPlan, REPLAY_STEPS, StatePairs, collect_pairs, max_pairs};
use super::trace::LatentTrace;
use crate::data::TokenShard;
use crate::error::{Error, Result};
use crate::io::{AtomicFile, write_atomic};
use crate::model::Backbone;

pub const FORMAT: &str = "crsm-latent-traces";
pub const VERSION: u32 = 2;
const HEADER_FILE: &str = "traces.json";

/// The plan of a trace set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceHeader {
    pub format: String,
    pub version: u32,
    /// Hex SHA-256 of the backbone's weights file the latents come from.
    pub source_hash: String,
    /// The token shard's file and its tokenizer hash.
    pub token_shard: String,
    pub tokenizer_hash: String,
    pub seed: u64,
    pub len: usize,
    pub windows: usize,
    pub windows_per_part: usize,
    /// Windows per forward pass. Part of the plan because it changes the last bits of the
    /// latents (matmuls block differently by batch), and a resumed collection must write the
    /// same bytes.
    pub batch: usize,
    pub layers: usize,
    pub d_model: usize,
    /// Counterfactual state pairs per window (0: none), drawn from the model's `pair_top_k`.
    pub pairs_per_window: usize,
    pub pair_top_k: usize,
    /// The SSM state's shape [d_inner, d_state] (the pairs' h).
    pub d_inner: usize,
    pub d_state: usize,
}

impl TraceHeader {
    pub fn parts(&self) -> usize {
        self.windows.div_ceil(self.windows_per_part)
    }

    fn window_bytes(&self) -> usize {
        self.len * 4 + self.len * self.layers * self.d_model * 4
    }

    pub fn windows_in_part(&self, part: usize) -> usize {
        self.windows_per_part
            .min(self.windows - part * self.windows_per_part)
    }

    /// The exact size of part `part`.
    pub fn part_bytes(&self, part: usize) -> usize {
        self.windows_in_part(part) * self.window_bytes()
    }

    fn pair_bytes(&self) -> usize {
        3 * 4 + 2 * 4 * self.layers * (self.d_model + self.d_inner * self.d_state)
    }

    /// The exact size of part `part`'s pairs file.
    pub fn pairs_bytes(&self, part: usize) -> usize {
        self.windows_in_part(part) * self.pairs_per_window * self.pair_bytes()
    }

    fn pair_plan(&self) -> PairPlan {
        PairPlan {
            per_window: self.pairs_per_window,
            top_k: self.pair_top_k,
            seed: self.seed,
        }
    }
}

fn part_path(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("part-{part:05}.bin"))
}

fn pairs_path(dir: &Path, part: usize) -> PathBuf {
    dir.join(format!("pairs-{part:05}.bin"))
}

/// Whether `path` holds exactly `bytes` bytes (a file that is absent when `bytes` is 0 counts).
fn complete(path: &Path, bytes: usize) -> bool {
    match std::fs::metadata(path) {
        Ok(m) => m.len() == bytes as u64,
        Err(_) => bytes == 0,
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn data_err(path: &Path, detail: String) -> Error {
    Error::Data {
        file: path.display().to_string(),
        line: None,
        detail,
    }
}

/// Where window i of a plan starts in a shard of `n` tokens (splitmix64 of (seed, i)).
fn window_start(seed: u64, i: usize, n: usize, len: usize) -> usize {
    let mut z = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % (n - len + 1) as u64) as usize
}

/// Collects (or finishes collecting) the trace set `header` describes into `dir`, from `model`
/// over `shard`. `on_part(done, total)` is called after each
/// part (a progress bar); `stop_after` ends the call after that many new parts (tests, budgets).
/// Returns how many parts are on disk.
pub fn collect(
    dir: &Path,
    header: &TraceHeader,
    model: &Backbone,
    shard: &TokenShard,
    stop_after: Option<usize>,
    on_part: &mut dyn FnMut(usize, usize),
) -> Result<usize> {
    let header_path = dir.join(HEADER_FILE);
    check_plan(header, model, shard, &header_path)?;
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    if header_path.exists() {
        let on_disk = read_header(&header_path)?;
        if let Some(field) = first_difference(&on_disk, header) {
            return Err(Error::Config {
                file: header_path.display().to_string(),
                field: field.into(),
                detail: "the traces in this folder were collected with another plan; collect \
                         into a new folder or remove this one"
                    .into(),
            });
        }
    } else {
        let text = serde_json::to_string_pretty(header).expect("a header serialises");
        write_atomic(&header_path, text.as_bytes())?;
    }
    let parts = header.parts();
    let mut written = 0;
    for part in 0..parts {
        let path = part_path(dir, part);
        if complete(&path, header.part_bytes(part))
            && complete(&pairs_path(dir, part), header.pairs_bytes(part))
        {
            on_part(part + 1, parts);
            continue;
        }
        if stop_after.is_some_and(|s| written >= s) {
            return Ok(part);
        }
        write_part(dir, header, part, model, shard)?;
        written += 1;
        on_part(part + 1, parts);
    }
    Ok(parts)
}

fn check_plan(h: &TraceHeader, model: &Backbone, shard: &TokenShard, at: &Path) -> Result<()> {
    let bad = |field: &str, detail: String| Error::Config {
        file: at.display().to_string(),
        field: field.into(),
        detail,
    };
    if h.format != FORMAT || h.version != VERSION {
        return Err(bad(
            "format",
            format!("expected {FORMAT} version {VERSION}"),
        ));
    }
    if h.len < 2 || h.windows == 0 || h.windows_per_part == 0 || h.batch == 0 {
        return Err(bad(
            "len",
            format!(
                "len {} (>= 2), windows {}, windows_per_part {} and batch {} (>= 1)",
                h.len, h.windows, h.windows_per_part, h.batch
            ),
        ));
    }
    let c = &model.config;
    let model_shape = (c.applications(), c.hidden_size, c.d_inner(), c.state_size);
    if (h.layers, h.d_model, h.d_inner, h.d_state) != model_shape {
        return Err(bad(
            "layers",
            format!(
                "the plan has {} layers x {} (state {} x {}), the model {:?}",
                h.layers, h.d_model, h.d_inner, h.d_state, model_shape
            ),
        ));
    }
    if h.pairs_per_window > max_pairs(h.len) || (h.pairs_per_window > 0 && h.pair_top_k == 0) {
        return Err(bad(
            "pairs_per_window",
            format!(
                "windows of {} tokens hold at most {} state pairs ({} asked), and pairs need \
                 pair_top_k >= 1 ({})",
                h.len,
                max_pairs(h.len),
                h.pairs_per_window,
                h.pair_top_k
            ),
        ));
    }
    if shard.len() < h.len {
        return Err(bad(
            "len",
            format!(
                "windows of {} tokens, the shard holds {}",
                h.len,
                shard.len()
            ),
        ));
    }
    Ok(())
}

/// Writes part `part` of the plan: its pairs file first, then the part, so a part on disk means
/// both are complete.
fn write_part(
    dir: &Path,
    h: &TraceHeader,
    part: usize,
    model: &Backbone,
    shard: &TokenShard,
) -> Result<()> {
    let path = &part_path(dir, part);
    let first = part * h.windows_per_part;
    let mut tokens = Vec::with_capacity(h.windows_in_part(part) * h.len);
    let mut window = Vec::new();
    for i in first..first + h.windows_in_part(part) {
        shard.read(
            window_start(h.seed, i, shard.len(), h.len),
            h.len,
            &mut window,
        )?;
        tokens.extend_from_slice(&window);
    }
    let trace = LatentTrace::collect(model, &tokens, h.len, h.batch)?;
    if h.pairs_per_window > 0 {
        let pairs = collect_pairs(model, &tokens, h.len, h.batch, h.pair_plan(), first)?;
        write_pairs(&pairs_path(dir, part), &pairs)?;
    }
    if let Some(bad) = trace.z.iter().position(|v| !v.is_finite()) {
        let per_window = h.len * h.layers * h.d_model;
        return Err(data_err(
            path,
            format!(
                "the backbone produced a non-finite latent in window {} (position {}); the \
                 checkpoint is broken",
                first + bad / per_window,
                bad % per_window / (h.layers * h.d_model)
            ),
        ));
    }
    let mut file = AtomicFile::create(path)?;
    let per_window = h.len * h.layers * h.d_model;
    for w in 0..trace.windows {
        let ids = &trace.tokens[w * h.len..][..h.len];
        file.write_all(
            &ids.iter()
                .flat_map(|t| t.to_le_bytes())
                .collect::<Vec<u8>>(),
        )?;
        let z = &trace.z[w * per_window..][..per_window];
        file.write_all(&z.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())?;
    }
    file.commit()
}

fn write_pairs(path: &Path, pairs: &StatePairs) -> Result<()> {
    let values = [&pairs.z, &pairs.z_alt, &pairs.h, &pairs.h_alt];
    if let Some(bad) = values
        .iter()
        .find_map(|v| v.iter().position(|x| !x.is_finite()))
    {
        return Err(data_err(
            path,
            format!(
                "the backbone produced a non-finite latent or state (value {bad}) in a pair; the checkpoint is broken"
            ),
        ));
    }
    let (zn, hn) = (pairs.z_len(), pairs.h_len());
    let mut file = AtomicFile::create(path)?;
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for i in 0..pairs.count {
        let ids = [pairs.window[i], pairs.position[i], pairs.alt_token[i]];
        file.write_all(
            &ids.iter()
                .flat_map(|t| t.to_le_bytes())
                .collect::<Vec<u8>>(),
        )?;
        file.write_all(&f32s(&pairs.z[i * zn..][..zn]))?;
        file.write_all(&f32s(&pairs.z_alt[i * zn..][..zn]))?;
        file.write_all(&f32s(&pairs.h[i * hn..][..hn]))?;
        file.write_all(&f32s(&pairs.h_alt[i * hn..][..hn]))?;
    }
    file.commit()
}

fn read_header(path: &Path) -> Result<TraceHeader> {
    let text = crate::io::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| data_err(path, format!("not a trace header ({e})")))
}

/// The first field in which two plans differ, by name.
fn first_difference(a: &TraceHeader, b: &TraceHeader) -> Option<&'static str> {
    [
        ("format", a.format != b.format || a.version != b.version),
        ("source_hash", a.source_hash != b.source_hash),
        ("token_shard", a.token_shard != b.token_shard),
        ("tokenizer_hash", a.tokenizer_hash != b.tokenizer_hash),
        ("seed", a.seed != b.seed),
        ("len", a.len != b.len),
        ("windows", a.windows != b.windows),
        ("windows_per_part", a.windows_per_part != b.windows_per_part),
        ("batch", a.batch != b.batch),
        ("layers", a.layers != b.layers || a.d_model != b.d_model),
        ("pairs_per_window", a.pairs_per_window != b.pairs_per_window),
        ("pair_top_k", a.pair_top_k != b.pair_top_k),
        ("d_inner", a.d_inner != b.d_inner || a.d_state != b.d_state),
    ]
    .into_iter()
    .find(|(_, differs)| *differs)
    .map(|(name, _)| name)
}

/// A complete trace set, opened for reading: every part present with its exact size.
pub struct TraceSet {
    pub header: TraceHeader,
    dir: PathBuf,
}

impl TraceSet {
    /// Opens `dir`; with `source_hash`, traces of another checkpoint are an error.
    pub fn open(dir: &Path, source_hash: Option<&str>) -> Result<Self> {
        let header_path = dir.join(HEADER_FILE);
        let header = read_header(&header_path)?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(data_err(
                &header_path,
                format!(
                    "format {:?} version {} (expected {FORMAT:?} version {VERSION})",
                    header.format, header.version
                ),
            ));
        }
        if let Some(hash) = source_hash
            && hash != header.source_hash
        {
            return Err(data_err(
                &header_path,
                format!(
                    "these traces come from another checkpoint (source_hash {}, the model's is \
                     {hash}); collect them again from this model",
                    header.source_hash
                ),
            ));
        }
        let files = (0..header.parts()).flat_map(|part| {
            [
                (part_path(dir, part), header.part_bytes(part)),
                (pairs_path(dir, part), header.pairs_bytes(part)),
            ]
        });
        for (path, want) in files {
            let want = want as u64;
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == want => {}
                Err(_) if want == 0 => {}
                Ok(m) => {
                    return Err(data_err(
                        &path,
                        format!("{} bytes, expected {want}: truncated or foreign", m.len()),
                    ));
                }
                Err(e) => {
                    return Err(data_err(
                        &path,
                        format!(
                            "missing ({e}); the collection did not finish: run it again to resume"
                        ),
                    ));
                }
            }
        }
        Ok(TraceSet {
            header,
            dir: dir.to_path_buf(),
        })
    }

    /// Parts `0..parts` (all of them at most) as one `LatentTrace` (held-out traces, a baseline's
    /// fit), so the caller bounds the memory.
    pub fn first_parts(&self, parts: usize) -> Result<LatentTrace> {
        let mut all = self.part(0)?;
        for p in 1..parts.min(self.header.parts()) {
            let next = self.part(p)?;
            all.windows += next.windows;
            all.tokens.extend(next.tokens);
            all.z.extend(next.z);
        }
        Ok(all)
    }

    /// Part `part` as a `LatentTrace`.
    pub fn part(&self, part: usize) -> Result<LatentTrace> {
        let h = &self.header;
        let path = part_path(&self.dir, part);
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        if bytes.len() != h.part_bytes(part) {
            return Err(data_err(
                &path,
                format!("{} bytes, expected {}", bytes.len(), h.part_bytes(part)),
            ));
        }
        let windows = h.windows_in_part(part);
        let per_window = h.len * h.layers * h.d_model;
        let mut tokens = Vec::with_capacity(windows * h.len);
        let mut z = Vec::with_capacity(windows * per_window);
        for chunk in bytes.chunks_exact(h.window_bytes()) {
            let (ids, latents) = chunk.split_at(h.len * 4);
            tokens.extend(
                ids.chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            z.extend(
                latents
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        if let Some(at) = z.iter().position(|v| !v.is_finite()) {
            return Err(data_err(
                &path,
                format!("a non-finite latent at value {at}"),
            ));
        }
        Ok(LatentTrace {
            windows,
            len: h.len,
            layers: h.layers,
            d_model: h.d_model,
            tokens,
            z,
        })
    }
}

impl TraceSet {
    /// The counterfactual state pairs of part `part` (empty when the plan has none); their
    /// `window` is the window's index in the part.
    pub fn pairs(&self, part: usize) -> Result<StatePairs> {
        let h = &self.header;
        let mut pairs = StatePairs::empty(h.layers, h.d_model, h.d_inner, h.d_state);
        let want = h.pairs_bytes(part);
        if want == 0 {
            return Ok(pairs);
        }
        let path = pairs_path(&self.dir, part);
        let bytes = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        if bytes.len() != want {
            return Err(data_err(
                &path,
                format!(
                    "{} bytes, expected {want}: truncated or foreign",
                    bytes.len()
                ),
            ));
        }
        let (zn, hn) = (pairs.z_len(), pairs.h_len());
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        for chunk in bytes.chunks_exact(h.pair_bytes()) {
            let u = |i: usize| {
                u32::from_le_bytes([
                    chunk[4 * i],
                    chunk[4 * i + 1],
                    chunk[4 * i + 2],
                    chunk[4 * i + 3],
                ])
            };
            pairs.window.push(u(0));
            pairs.position.push(u(1));
            pairs.alt_token.push(u(2));
            let mut at = 12;
            let mut take = |n: usize| {
                let v = f32s(&chunk[at..at + 4 * n]);
                at += 4 * n;
                v
            };
            pairs.z.extend(take(zn));
            pairs.z_alt.extend(take(zn));
            pairs.h.extend(take(hn));
            pairs.h_alt.extend(take(hn));
            pairs.count += 1;
        }
        let bad_window = pairs
            .window
            .iter()
            .any(|&w| w as usize >= h.windows_in_part(part));
        let bad_position = pairs
            .position
            .iter()
            .any(|&t| t as usize + REPLAY_STEPS >= h.len);
        if bad_window || bad_position {
            return Err(data_err(
                &path,
                "a pair names a window or position outside its part".into(),
            ));
        }
        let values = [&pairs.z, &pairs.z_alt, &pairs.h, &pairs.h_alt];
        if let Some(at) = values
            .iter()
            .find_map(|v| v.iter().position(|x| !x.is_finite()))
        {
            return Err(data_err(&path, format!("a non-finite value at {at}")));
        }
        Ok(pairs)
    }
}
