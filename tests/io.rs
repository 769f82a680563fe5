//! crsm::io: safetensors round trips, half-precision widening, sharded checkpoints, and every way
//! a checkpoint can be broken, each expected to fail with a message naming the file and tensor,
//! never a panic.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

use std::borrow::Cow;
use std::path::Path;

use crsm::io::{
    HostTensor, TensorMap, load_safetensors_dir, load_safetensors_file, save_safetensors,
    write_atomic,
};
use crsm::{Device, Result};
use half::{bf16, f16};
use safetensors::{Dtype, View};

// ---- helpers -------------------------------------------------------------------------------------

/// A fresh, empty directory per test, removed at its end.
fn scratch(name: &str) -> Scratch {
    Scratch::new("io", name)
}

fn t(shape: &[usize], data: &[f32]) -> HostTensor {
    HostTensor::new(shape.to_vec(), data.to_vec()).unwrap()
}

fn map(entries: &[(&str, HostTensor)]) -> TensorMap {
    entries
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

/// Raw bytes of any dtype, to write files crsm itself never writes (f16, bf16, i32, f64).
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn write_raw(path: &Path, tensors: Vec<(&str, Raw)>) {
    std::fs::write(path, safetensors::serialize(tensors, None).unwrap()).unwrap();
}

/// A file from a hand-written header and data, for headers the serializer would never produce.
fn write_handmade(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// The error's message; fails the test if the call succeeded.
fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(
            msg.contains(n),
            "error message {msg:?} should mention {n:?}"
        );
    }
}

fn sample() -> TensorMap {
    map(&[
        (
            "backbone.embeddings.weight",
            t(
                &[3, 4],
                &[
                    0.5, -1.0, 2.25, 1e-8, 3.0e7, -0.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
                ],
            ),
        ),
        (
            "backbone.norm_f.weight",
            t(&[4], &[1.0, 1.5, f32::MIN_POSITIVE, f32::MAX]),
        ),
        ("scalar", t(&[], &[42.0])),
        ("empty", t(&[0, 3], &[])),
    ])
}

// ---- round trips ---------------------------------------------------------------------------------

#[test]
fn f32_round_trip_is_bit_exact() {
    let dir = scratch("roundtrip");
    let path = dir.join("model.safetensors");
    let tensors = sample();
    save_safetensors(&path, &tensors).unwrap();
    let back = load_safetensors_file(&path).unwrap();
    assert_eq!(back.len(), tensors.len());
    for (name, want) in &tensors {
        let got = &back[name];
        assert_eq!(got.shape, want.shape, "{name}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.data), bits(&want.data), "{name}");
    }
    // The directory loader finds the single file too.
    assert_eq!(load_safetensors_dir(&dir).unwrap(), tensors);
}

#[test]
fn host_tensor_checks_element_count_and_uploads() {
    assert!(HostTensor::new(vec![2, 3], vec![0.0; 5]).is_err());
    assert!(HostTensor::new(vec![usize::MAX, 2], vec![]).is_err());
    let h = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let tensor = h.to_tensor(&Device::Cpu).unwrap();
    assert_eq!(tensor.shape(), &[2, 2]);
    assert_eq!(HostTensor::from_tensor(&tensor).unwrap(), h);
}

#[test]
fn f16_and_bf16_widen_to_the_rounded_values() {
    let dir = scratch("half");
    let path = dir.join("half.safetensors");
    let values = [1.0f32, -2.5, 0.1, 65504.0, 1e-3, 3.3333, -7.0e-6, 300.7];
    let f16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    let bf16_bytes: Vec<u8> = values
        .iter()
        .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
        .collect();
    write_raw(
        &path,
        vec![
            (
                "h",
                Raw {
                    dtype: Dtype::F16,
                    shape: vec![2, 4],
                    bytes: f16_bytes,
                },
            ),
            (
                "b",
                Raw {
                    dtype: Dtype::BF16,
                    shape: vec![8],
                    bytes: bf16_bytes,
                },
            ),
        ],
    );
    let got = load_safetensors_file(&path).unwrap();
    let want_h: Vec<f32> = values.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    let want_b: Vec<f32> = values.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
    assert_eq!(got["h"].shape, vec![2, 4]);
    assert_eq!(got["h"].data, want_h);
    assert_eq!(got["b"].data, want_b);
    // The rounding is real (0.1 is not a half value), so the test would catch a wrong decode.
    assert_ne!(got["h"].data[2], 0.1);
    assert_ne!(got["b"].data[2], got["h"].data[2]);
}

#[test]
fn integer_tensors_load_only_when_exact() {
    let dir = scratch("ints");
    let path = dir.join("ids.safetensors");
    let ids: Vec<i32> = vec![0, 1, -5, 50_279, 1 << 24];
    let i64s: Vec<i64> = vec![3, -(1 << 24)];
    write_raw(
        &path,
        vec![
            (
                "ids",
                Raw {
                    dtype: Dtype::I32,
                    shape: vec![5],
                    bytes: ids.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
            ),
            (
                "long",
                Raw {
                    dtype: Dtype::I64,
                    shape: vec![2],
                    bytes: i64s.iter().flat_map(|v| v.to_le_bytes()).collect(),
                },
            ),
        ],
    );
    let got = load_safetensors_file(&path).unwrap();
    assert_eq!(
        got["ids"].data,
        vec![0.0, 1.0, -5.0, 50_279.0, 16_777_216.0]
    );
    assert_eq!(got["long"].data, vec![3.0, -16_777_216.0]);

    let bad = dir.join("big.safetensors");
    let big: Vec<i64> = vec![1, i64::MAX];
    write_raw(
        &bad,
        vec![(
            "counter",
            Raw {
                dtype: Dtype::I64,
                shape: vec![2],
                bytes: big.iter().flat_map(|v| v.to_le_bytes()).collect(),
            },
        )],
    );
    let msg = err_text(load_safetensors_file(&bad));
    assert_mentions(
        &msg,
        &[
            "big.safetensors",
            "'counter'",
            "index 1",
            "not exactly representable",
        ],
    );

    let odd = dir.join("odd.safetensors");
    let v: i32 = (1 << 24) + 1;
    write_raw(
        &odd,
        vec![(
            "ids",
            Raw {
                dtype: Dtype::I32,
                shape: vec![1],
                bytes: v.to_le_bytes().to_vec(),
            },
        )],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&odd)),
        &["odd.safetensors", "'ids'", "16777217"],
    );
}

#[test]
fn unsupported_dtype_names_tensor_and_dtype() {
    let dir = scratch("dtype");
    let path = dir.join("f64.safetensors");
    write_raw(
        &path,
        vec![
            (
                "fine",
                Raw {
                    dtype: Dtype::F32,
                    shape: vec![1],
                    bytes: 1.0f32.to_le_bytes().to_vec(),
                },
            ),
            (
                "layers.0.D",
                Raw {
                    dtype: Dtype::F64,
                    shape: vec![1],
                    bytes: 1.0f64.to_le_bytes().to_vec(),
                },
            ),
        ],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["f64.safetensors", "'layers.0.D'", "F64", "not supported"],
    );
}

// ---- sharded checkpoints -------------------------------------------------------------------------

const SHARD1: &str = "model-00001-of-00002.safetensors";
const SHARD2: &str = "model-00002-of-00002.safetensors";

/// Two shards and an index; returns the tensors they hold together.
fn write_sharded(dir: &Path, index_extra: &[(&str, &str)]) -> TensorMap {
    let a = map(&[
        ("a.weight", t(&[2], &[1.0, 2.0])),
        ("b.weight", t(&[1, 2], &[3.0, 4.0])),
    ]);
    let b = map(&[("c.weight", t(&[3], &[5.0, 6.0, 7.0]))]);
    save_safetensors(&dir.join(SHARD1), &a).unwrap();
    save_safetensors(&dir.join(SHARD2), &b).unwrap();
    let mut weight_map = serde_json::Map::new();
    for name in a.keys() {
        weight_map.insert(name.clone(), SHARD1.into());
    }
    for name in b.keys() {
        weight_map.insert(name.clone(), SHARD2.into());
    }
    for (name, shard) in index_extra {
        weight_map.insert(name.to_string(), (*shard).into());
    }
    let index = serde_json::json!({ "metadata": { "total_size": 28 }, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    a.into_iter().chain(b).collect()
}

#[test]
fn sharded_directory_loads_every_shard() {
    let dir = scratch("sharded");
    let want = write_sharded(&dir, &[]);
    assert_eq!(load_safetensors_dir(&dir).unwrap(), want);
}

#[test]
fn sharded_missing_shard_file() {
    let dir = scratch("missing-shard");
    write_sharded(&dir, &[]);
    std::fs::remove_file(dir.join(SHARD2)).unwrap();
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &[SHARD2, "'c.weight'", "missing"],
    );
}

#[test]
fn sharded_tensor_listed_but_absent() {
    let dir = scratch("absent");
    write_sharded(&dir, &[("ghost.weight", SHARD2)]);
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &[SHARD2, "'ghost.weight'", "does not hold it"],
    );
}

#[test]
fn sharded_duplicate_across_shards() {
    let dir = scratch("duplicate");
    write_sharded(&dir, &[]);
    // Shard 2 also carries a.weight, which the index places in shard 1.
    let b = map(&[
        ("a.weight", t(&[2], &[9.0, 9.0])),
        ("c.weight", t(&[3], &[5.0, 6.0, 7.0])),
    ]);
    save_safetensors(&dir.join(SHARD2), &b).unwrap();
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &[SHARD2, SHARD1, "'a.weight'", "also appears"],
    );
}

#[test]
fn sharded_bad_index() {
    let dir = scratch("bad-index");
    std::fs::write(dir.join("model.safetensors.index.json"), "{ not json").unwrap();
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &["model.safetensors.index.json", "not valid JSON"],
    );
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"metadata": {}}"#,
    )
    .unwrap();
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &["model.safetensors.index.json", "weight_map"],
    );
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"weight_map": {"x": "../x.safetensors"}}"#,
    )
    .unwrap();
    assert_mentions(
        &err_text(load_safetensors_dir(&dir)),
        &["'x'", "../x.safetensors", "plain file name"],
    );
}

#[test]
fn directory_without_checkpoint() {
    let dir = scratch("empty-dir");
    let msg = err_text(load_safetensors_dir(&dir));
    assert_mentions(
        &msg,
        &[
            &dir.display().to_string(),
            "model.safetensors",
            "model.safetensors.index.json",
        ],
    );
}

// ---- broken files --------------------------------------------------------------------------------

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let dir = scratch("nofile");
    let msg = err_text(load_safetensors_file(&dir.join("nope.safetensors")));
    assert_mentions(&msg, &["nope.safetensors"]);
}

#[test]
fn empty_file() {
    let dir = scratch("zero");
    let path = dir.join("zero.safetensors");
    std::fs::write(&path, b"").unwrap();
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["zero.safetensors", "0 bytes", "too short"],
    );
}

#[test]
fn length_prefix_larger_than_file() {
    let dir = scratch("prefix");
    let path = dir.join("prefix.safetensors");
    let mut bytes = 1000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&path, bytes).unwrap();
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["prefix.safetensors", "1000-byte header", "only 2 bytes"],
    );
}

#[test]
fn header_not_json() {
    let dir = scratch("notjson");
    let path = dir.join("notjson.safetensors");
    write_handmade(&path, "this is not json", &[]);
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["notjson.safetensors", "not valid safetensors JSON"],
    );
}

#[test]
fn truncated_file_names_the_cut_tensor() {
    let dir = scratch("truncated");
    let path = dir.join("cut.safetensors");
    save_safetensors(
        &path,
        &map(&[
            ("first", t(&[2], &[1.0, 2.0])),
            ("second", t(&[4], &[1.0, 2.0, 3.0, 4.0])),
        ]),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["cut.safetensors", "'second'", "truncated"],
    );
}

#[test]
fn header_that_lies_about_sizes_or_offsets() {
    let dir = scratch("lies");
    let path = dir.join("lies.safetensors");

    // Shape [2, 3] of F32 needs 24 bytes; the offsets give it 8.
    write_handmade(
        &path,
        r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'w'", "needs 24 bytes", "span 8"],
    );

    // A gap between two tensors.
    write_handmade(
        &path,
        r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
        &[0; 12],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'b'", "gap"],
    );

    // Overlapping tensors.
    write_handmade(
        &path,
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
        &[0; 8],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'b'", "inside the previous tensor"],
    );

    // Offsets past the end of the file.
    write_handmade(
        &path,
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        &[0; 8],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'w'", "only 8 bytes"],
    );

    // Bytes after the last tensor.
    write_handmade(
        &path,
        r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
        &[0; 9],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "accounts for 4 bytes", "holds 9"],
    );

    // An entry that is not a tensor description.
    write_handmade(
        &path,
        r#"{"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'w'", "bad header entry"],
    );

    // A shape whose element count overflows.
    write_handmade(
        &path,
        r#"{"w":{"dtype":"F32","shape":[18446744073709551615,2],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    assert_mentions(
        &err_text(load_safetensors_file(&path)),
        &["lies.safetensors", "'w'", "overflows"],
    );
}

/// Every truncation of a valid file must be an error (never a panic, never a silently shorter
/// checkpoint), and random or bit-flipped bytes must never panic.
#[test]
fn corruptions_never_panic() {
    let dir = scratch("fuzz");
    let path = dir.join("ok.safetensors");
    save_safetensors(&path, &sample()).unwrap();
    let good = std::fs::read(&path).unwrap();
    let probe = dir.join("probe.safetensors");

    for cut in 0..good.len() {
        std::fs::write(&probe, &good[..cut]).unwrap();
        let msg = err_text(load_safetensors_file(&probe));
        assert!(msg.contains("probe.safetensors"), "cut at {cut}: {msg}");
    }

    // Flip each byte of the prefix and header (the data bytes are free-form, any value loads).
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    for at in 0..header_end {
        let mut bad = good.clone();
        bad[at] ^= 0x5a;
        std::fs::write(&probe, &bad).unwrap();
        let _ = load_safetensors_file(&probe);
    }

    // Random bytes, including ones whose prefix is small enough to reach the JSON parser.
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in [1usize, 7, 8, 9, 16, 64, 300] {
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        if len > 8 {
            bytes[..8].copy_from_slice(&((len - 8) as u64 / 2).to_le_bytes());
        }
        std::fs::write(&probe, &bytes).unwrap();
        assert!(
            load_safetensors_file(&probe).is_err(),
            "random {len} bytes loaded"
        );
    }
}

// ---- atomic writes -------------------------------------------------------------------------------

#[test]
fn atomic_write_overwrites_and_leaves_no_temp_file() {
    let dir = scratch("atomic");
    let path = dir.join("model.safetensors");
    std::fs::write(
        &path,
        b"old contents, longer than what replaces them................",
    )
    .unwrap();
    let tensors = map(&[("w", t(&[2], &[1.0, 2.0]))]);
    save_safetensors(&path, &tensors).unwrap();
    assert_eq!(load_safetensors_file(&path).unwrap(), tensors);
    save_safetensors(&path, &tensors).unwrap();

    write_atomic(&dir.join("notes.txt"), b"hello").unwrap();
    write_atomic(&dir.join("notes.txt"), b"bye").unwrap();
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"bye");

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["model.safetensors", "notes.txt"]);
}

#[test]
fn atomic_write_into_missing_directory_fails_cleanly() {
    let dir = scratch("atomic-missing");
    let msg = err_text(write_atomic(&dir.join("no/such/dir/x.bin"), b"x"));
    assert_mentions(&msg, &["x.bin"]);
}

#[test]
fn save_refuses_inconsistent_tensor() {
    let dir = scratch("inconsistent");
    let path = dir.join("bad.safetensors");
    let tensors: TensorMap = [(
        "w".to_string(),
        HostTensor {
            shape: vec![3],
            data: vec![1.0],
        },
    )]
    .into_iter()
    .collect();
    assert_mentions(
        &err_text(save_safetensors(&path, &tensors)),
        &["bad.safetensors", "'w'", "1 values"],
    );
    assert!(!path.exists());
}
