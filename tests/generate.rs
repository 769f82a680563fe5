//! Tokenizer, streaming decode, sampling and the generation loop: all host code, no device.
//! The GPT-NeoX tokenizer (the one mamba-*-hf uses) ships in data/; its known encodings come
//! from the Python `tokenizers` package (see data/SOURCES.md: "Hello world" -> [12092, 1533]).

use std::path::{Path, PathBuf};

use crsm::Error;
use crsm::data::Tokenizer;
use crsm::generate::{GenerateOptions, NextToken, Sampler, SamplingConfig, argmax, generate};

fn neox() -> Tokenizer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/gpt-neox-20b_tokenizer.json");
    Tokenizer::from_file(&path).expect("the shipped GPT-NeoX tokenizer loads")
}

/// A file in the temp dir, unique to this test process.
fn temp_file(name: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("crsm-generate-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

/// Text whose characters take 1 to 4 UTF-8 bytes, so byte-level BPE splits some across tokens.
const MIXED: &str = "Café au lait, 日本語のテキスト, and 🦀🎉 emoji! naïve ☃";

// ---- tokenizer ------------------------------------------------------------------------------

#[test]
fn neox_known_encodings_and_round_trip() {
    let tok = neox();
    assert_eq!(tok.encode("Hello world").unwrap(), [12092, 1533]);
    let line = "It is a truth universally acknowledged, that a single man in possession";
    let ids = tok.encode(line).unwrap();
    assert_eq!(
        ids,
        [
            1147, 310, 247, 5083, 35114, 14969, 13, 326, 247, 2014, 637, 275, 10023
        ]
    );
    assert_eq!(tok.decode(&ids).unwrap(), line);
    assert_eq!(tok.decode(&tok.encode(MIXED).unwrap()).unwrap(), MIXED);
}

#[test]
fn neox_vocab_and_eos() {
    let tok = neox();
    // 50,254 BPE entries + added tokens -> ids 0..50277 (mamba-*-hf pads the model to 50,280).
    assert_eq!(tok.vocab_size(), 50277);
    assert_eq!(tok.eos_id(), Some(0));
    assert_eq!(tok.decode(&[0]).unwrap(), "<|endoftext|>");
    // A special token written in the text is recognised, even though none is added.
    let ids = tok.encode("a<|endoftext|>").unwrap();
    assert_eq!((ids.len(), ids[1]), (2, 0), "{ids:?}");
}

#[test]
fn byte_level_is_utf8_bytes() {
    let tok = Tokenizer::byte_level();
    assert_eq!(tok.vocab_size(), 256);
    assert_eq!(tok.eos_id(), None);
    assert_eq!(tok.encode("hé").unwrap(), [104, 0xC3, 0xA9]);
    assert_eq!(tok.decode(&tok.encode(MIXED).unwrap()).unwrap(), MIXED);
    // Bytes that are not UTF-8 decode lossily.
    assert_eq!(
        tok.decode(&[b'a' as u32, 0xFF, b'b' as u32]).unwrap(),
        "a\u{FFFD}b"
    );
}

#[test]
fn tokenizer_can_be_shared_across_threads() {
    // The planner's thread and the generator both read it (docs/ARCHITECTURE.md, The backbone).
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Tokenizer>();
}

#[test]
fn missing_tokenizer_file_names_the_file() {
    let path = std::env::temp_dir().join("crsm-no-such-dir/tokenizer.json");
    let err = Tokenizer::from_file(&path).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("crsm-no-such-dir/tokenizer.json"),
        "{err}"
    );
}

#[test]
fn malformed_tokenizer_file_names_the_file() {
    for (name, contents) in [
        ("truncated.json", "{\"version\": \"1.0\", \"model\": {"),
        ("not-a-tokenizer.json", "{\"a\": 1}"),
    ] {
        let path = temp_file(name, contents);
        let err = Tokenizer::from_file(&path).unwrap_err();
        std::fs::remove_file(&path).ok();
        assert!(matches!(err, Error::Tokenizer { .. }), "{err:?}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn decoding_an_unknown_id_is_an_error_naming_it() {
    let err = neox().decode(&[12092, 50277]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdOutOfRange {
                id: 50277,
                position: 1,
                limit: 50277,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("50277"), "{err}");
    let err = Tokenizer::byte_level().decode(&[256]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdOutOfRange {
                id: 256,
                position: 0,
                limit: 256,
                ..
            }
        ),
        "{err:?}"
    );
    let err = neox().stream_decoder().push(99999).unwrap_err();
    assert!(
        matches!(err, Error::IdOutOfRange { id: 99999, .. }),
        "{err:?}"
    );
}

// ---- streaming decode -----------------------------------------------------------------------

/// Streams `ids` one at a time; returns the pieces (finish's last).
fn stream(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    let mut dec = tok.stream_decoder();
    let mut pieces: Vec<String> = ids.iter().map(|&id| dec.push(id).unwrap()).collect();
    pieces.push(dec.finish().unwrap());
    pieces
}

fn check_stream(tok: &Tokenizer, text: &str) {
    let ids = tok.encode(text).unwrap();
    let pieces = stream(tok, &ids);
    assert_eq!(pieces.concat(), text);
    assert_eq!(
        pieces.last().unwrap(),
        "",
        "nothing should be left for finish"
    );
    // Only complete characters are ever emitted, and some token really did split a character
    // (otherwise this test would not exercise the hold-back).
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert!(
        pieces[..ids.len()].iter().any(String::is_empty),
        "no character was split: {pieces:?}"
    );
}

#[test]
fn stream_decode_holds_back_split_characters_neox() {
    let tok = neox();
    check_stream(&tok, MIXED);
    // Each of these alone is split by GPT-NeoX's byte-level BPE.
    for s in ["🦀", "日本", "é🎉x"] {
        let ids = tok.encode(s).unwrap();
        assert_eq!(stream(&tok, &ids).concat(), s);
    }
}

#[test]
fn stream_decode_holds_back_split_characters_byte_level() {
    let tok = Tokenizer::byte_level();
    check_stream(&tok, MIXED);
    // Invalid bytes stream exactly as the lossy full decode renders them; a character cut off
    // at the end is flushed by finish as U+FFFD.
    let ids = [b'a' as u32, 0xFF, 0xE6, 0x97, b'b' as u32, 0xF0, 0x9F];
    let pieces = stream(&tok, &ids);
    assert_eq!(pieces.concat(), tok.decode(&ids).unwrap());
    assert_eq!(pieces.last().unwrap(), "\u{FFFD}");
}

#[test]
fn stream_decode_after_a_prompt_prints_only_the_continuation() {
    let tok = neox();
    let prompt = tok.encode("Hello").unwrap();
    let all = tok.encode("Hello world, café 🦀").unwrap();
    assert_eq!(all[..prompt.len()], prompt[..]);
    let mut dec = tok.stream_decoder_after(&prompt);
    let mut text: String = all[prompt.len()..]
        .iter()
        .map(|&id| dec.push(id).unwrap())
        .collect();
    text += &dec.finish().unwrap();
    assert_eq!(text, " world, café 🦀");
}

// ---- sampling -------------------------------------------------------------------------------

fn sampler(config: SamplingConfig) -> Sampler {
    Sampler::new(config).unwrap()
}

fn sampling(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> SamplingConfig {
    SamplingConfig {
        temperature,
        top_k,
        top_p,
        repetition_penalty: 1.0,
        seed,
    }
}

/// Pseudo-random logits in [-4, 4).
fn random_logits(n: usize, seed: u64) -> Vec<f32> {
    crsm::rng::Rng::new(seed).uniform_vec(n, 4.0)
}

#[test]
fn greedy_is_argmax() {
    let mut s = sampler(SamplingConfig::greedy());
    for seed in 0..20 {
        let logits = random_logits(100, seed);
        let best = (0..100)
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap() as u32;
        assert_eq!(s.sample(&logits, &[]).unwrap(), best);
        assert_eq!(argmax(&logits).unwrap(), best);
    }
    // Ties go to the first index, as torch.argmax; -inf entries are fine.
    assert_eq!(
        s.sample(&[f32::NEG_INFINITY, 2.0, 1.0, 2.0], &[]).unwrap(),
        1
    );
}

#[test]
fn top_k_1_is_greedy() {
    for seed in 0..20 {
        let logits = random_logits(50, 100 + seed);
        let want = argmax(&logits).unwrap();
        for temperature in [0.5, 1.0, 5.0] {
            let mut s = sampler(sampling(temperature, 1, 1.0, seed));
            assert_eq!(s.sample(&logits, &[]).unwrap(), want);
        }
    }
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let logits = vec![0.0; 50];
    let draw = |seed| {
        let mut s = sampler(sampling(1.0, 0, 1.0, seed));
        (0..64)
            .map(|_| s.sample(&logits, &[]).unwrap())
            .collect::<Vec<_>>()
    };
    let a = draw(7);
    assert_eq!(a, draw(7));
    // 64 draws from 50 equally likely ids: equal sequences have probability 50^-64.
    assert_ne!(a, draw(8));
    // And the draws are spread over the vocabulary, not stuck.
    let mut distinct = a.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 20, "{a:?}");
}

#[test]
fn top_p_keeps_the_minimal_nucleus() {
    // Probabilities 0.5, 0.3, 0.15, 0.05 (ids shuffled). HF's TopPLogitsWarper with top_p = 0.75
    // removes tokens whose ascending cumulative mass is <= 0.25: 0.05 and 0.05+0.15 = 0.20, so
    // {0.5, 0.3} remain, renormalised to 0.625, 0.375. top_p = 0.85 removes only 0.05 (<= 0.15).
    let logits = [0.15f32.ln(), 0.5f32.ln(), 0.05f32.ln(), 0.3f32.ln()];
    let close = |got: Vec<(u32, f32)>, want: &[(u32, f32)]| {
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 && (g.1 - w.1).abs() < 1e-5,
                "{got:?} != {want:?}"
            );
        }
    };
    let probs = |top_p| {
        sampler(sampling(1.0, 0, top_p, 0))
            .probabilities(&logits, &[])
            .unwrap()
    };
    close(probs(0.75), &[(1, 0.625), (3, 0.375)]);
    close(
        probs(0.85),
        &[(1, 0.5 / 0.95), (3, 0.3 / 0.95), (0, 0.15 / 0.95)],
    );
    close(probs(1.0), &[(1, 0.5), (3, 0.3), (0, 0.15), (2, 0.05)]);
    // A top token above top_p is kept alone.
    close(probs(0.4), &[(1, 1.0)]);
    // And draws only ever come from the nucleus.
    let mut s = sampler(sampling(1.0, 0, 0.75, 3));
    let draws: Vec<u32> = (0..500).map(|_| s.sample(&logits, &[]).unwrap()).collect();
    assert!(draws.iter().all(|&id| id == 1 || id == 3));
    assert!(draws.contains(&1) && draws.contains(&3));
}

#[test]
fn top_k_keeps_ties_with_the_kth() {
    // HF's TopKLogitsWarper removes scores strictly below the k-th largest.
    let probs = sampler(sampling(1.0, 2, 1.0, 0))
        .probabilities(&[1.0, 0.0, 1.0, 1.0], &[])
        .unwrap();
    let ids: Vec<u32> = probs.iter().map(|p| p.0).collect();
    assert_eq!(ids, [0, 2, 3]);
    assert!(probs.iter().all(|p| (p.1 - 1.0 / 3.0).abs() < 1e-6));
}

#[test]
fn temperature_scales_logits() {
    // softmax([ln 4, 0] / 2) = softmax([ln 2, 0]) = [2/3, 1/3].
    let probs = sampler(sampling(2.0, 0, 1.0, 0))
        .probabilities(&[4f32.ln(), 0.0], &[])
        .unwrap();
    assert!(
        (probs[0].1 - 2.0 / 3.0).abs() < 1e-6 && (probs[1].1 - 1.0 / 3.0).abs() < 1e-6,
        "{probs:?}"
    );
}

#[test]
fn repetition_penalty_as_hf() {
    // ids 0 and 1 were seen (1 twice: penalised once). 2.0 / 2 = 1.0; -1.0 * 2 = -2.0.
    // softmax([1.0, -2.0, 0.5, 3.0]) computed in Python.
    let cfg = SamplingConfig {
        temperature: 1.0,
        repetition_penalty: 2.0,
        ..SamplingConfig::default()
    };
    let probs = sampler(cfg)
        .probabilities(&[2.0, -1.0, 0.5, 3.0], &[0, 1, 1])
        .unwrap();
    let want = [
        (3, 0.816_887_9),
        (0, 0.110_553_75),
        (2, 0.067_054_24),
        (1, 0.005_504_147),
    ];
    for (g, w) in probs.iter().zip(&want) {
        assert!(g.0 == w.0 && (g.1 - w.1).abs() < 1e-6, "{probs:?}");
    }
    // Greedy applies it too: 3.0 seen -> 1.5 loses to 2.0.
    let cfg = SamplingConfig {
        repetition_penalty: 2.0,
        ..SamplingConfig::greedy()
    };
    assert_eq!(sampler(cfg).sample(&[3.0, 2.0], &[0]).unwrap(), 1);
}

#[test]
fn bad_logits_and_configs_are_clear_errors() {
    let mut s = sampler(sampling(1.0, 0, 1.0, 0));
    let cases: [(&[f32], &str); 4] = [
        (&[], "empty"),
        (&[0.0, f32::NAN], "logit 1 of 2 is NaN"),
        (&[f32::INFINITY, 0.0], "logit 0 of 2 is inf"),
        (&[f32::NEG_INFINITY; 3], "all 3 logits are -inf"),
    ];
    for (logits, want) in cases {
        let err = s.sample(logits, &[]).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert!(argmax(logits).is_err());
    }
    let cfg = SamplingConfig {
        repetition_penalty: 1.5,
        ..SamplingConfig::default()
    };
    let err = sampler(cfg).sample(&[0.0; 4], &[1, 9]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdOutOfRange {
                id: 9,
                position: 1,
                limit: 4,
                ..
            }
        ),
        "{err:?}"
    );

    for cfg in [
        sampling(-1.0, 0, 1.0, 0),
        sampling(f32::NAN, 0, 1.0, 0),
        sampling(1.0, 0, 0.0, 0),
        sampling(1.0, 0, 1.5, 0),
        SamplingConfig {
            repetition_penalty: 0.0,
            ..SamplingConfig::default()
        },
    ] {
        assert!(
            matches!(
                Sampler::new(cfg.clone()),
                Err(Error::InvalidArgument { op: "sampling", .. })
            ),
            "{cfg:?}"
        );
    }
}

// ---- the generation loop ---------------------------------------------------------------------

/// A bigram model: the logits after id i are row i of the table. Counts its calls.
struct Bigram {
    table: Vec<Vec<f32>>,
    last: Option<u32>,
    prefills: usize,
    steps: usize,
}

impl Bigram {
    /// Successor of i is (i + 3) % 8, by a clear margin.
    fn chain() -> Self {
        let table = (0..8)
            .map(|i| {
                (0..8)
                    .map(|j| if j == (i + 3) % 8 { 5.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        Bigram {
            table,
            last: None,
            prefills: 0,
            steps: 0,
        }
    }

    fn row(&self, id: u32) -> crsm::Result<Vec<f32>> {
        Ok(self.table[id as usize].clone())
    }
}

impl NextToken for Bigram {
    fn prefill(&mut self, prompt: &[u32]) -> crsm::Result<Vec<f32>> {
        self.prefills += 1;
        self.last = prompt.last().copied();
        self.row(prompt[prompt.len() - 1])
    }
    fn step(&mut self, id: u32) -> crsm::Result<Vec<f32>> {
        self.steps += 1;
        self.last = Some(id);
        self.row(id)
    }
}

/// Ignores its input and emits a fixed script of ids, one-hot over `vocab`.
struct Script {
    ids: Vec<u32>,
    pos: usize,
    vocab: usize,
}

impl Script {
    fn logits(&mut self) -> crsm::Result<Vec<f32>> {
        let mut row = vec![0.0; self.vocab];
        row[self.ids[self.pos] as usize] = 10.0;
        self.pos += 1;
        Ok(row)
    }
}

impl NextToken for Script {
    fn prefill(&mut self, _: &[u32]) -> crsm::Result<Vec<f32>> {
        self.logits()
    }
    fn step(&mut self, _: u32) -> crsm::Result<Vec<f32>> {
        self.logits()
    }
}

fn opts(max_new_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_new_tokens,
        ..GenerateOptions::default()
    }
}

#[test]
fn greedy_follows_the_bigram_chain_and_streams_each_token() {
    let mut model = Bigram::chain();
    let mut seen = Vec::new();
    let out = generate(&mut model, &[1], &opts(6), None, |id| {
        seen.push(id);
        Ok(())
    })
    .unwrap();
    assert_eq!(out, [4, 7, 2, 5, 0, 3]);
    assert_eq!(seen, out, "on_token sees every id, in order");
    // One prefill, then a step for every id but the last.
    assert_eq!((model.prefills, model.steps, model.last), (1, 5, Some(0)));
}

#[test]
fn max_new_tokens_is_respected() {
    for max in [1, 2, 20] {
        let mut model = Bigram::chain();
        assert_eq!(
            generate(&mut model, &[1], &opts(max), None, |_| Ok(()))
                .unwrap()
                .len(),
            max
        );
    }
    let mut model = Bigram::chain();
    assert!(
        generate(&mut model, &[1], &opts(0), None, |_| Ok(()))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        model.prefills, 0,
        "max_new_tokens = 0 does not run the model"
    );
}

#[test]
fn stops_at_eos_which_is_returned_last() {
    let mut model = Bigram::chain();
    let o = GenerateOptions {
        stop_on_eos: Some(2),
        ..opts(100)
    };
    assert_eq!(
        generate(&mut model, &[1], &o, None, |_| Ok(())).unwrap(),
        [4, 7, 2]
    );
    assert_eq!(model.steps, 2);
}

#[test]
fn stops_at_a_stop_string_spanning_tokens() {
    // Byte level: every byte is a token, so "STOP" spans four and "日本" six.
    let tok = Tokenizer::byte_level();
    for (script, stop, want) in [
        ("Hello, world! STOP here", "STOP", "Hello, world! STOP"),
        ("abc日本def", "日本", "abc日本"),
        ("no stop in here", "STOP", "no stop in here"),
    ] {
        let mut model = Script {
            ids: tok.encode(script).unwrap(),
            pos: 0,
            vocab: 256,
        };
        let o = GenerateOptions {
            stop_strings: vec!["zzz".into(), stop.into()],
            ..opts(script.len())
        };
        let out = generate(&mut model, &[b'>' as u32], &o, Some(&tok), |_| Ok(())).unwrap();
        assert_eq!(tok.decode(&out).unwrap(), want);
    }
}

#[test]
fn stop_string_with_a_real_tokenizer_ends_on_the_completing_token() {
    let tok = neox();
    let script = tok.encode(" The end. More text follows here").unwrap();
    let mut model = Script {
        ids: script.clone(),
        pos: 0,
        vocab: tok.vocab_size(),
    };
    let o = GenerateOptions {
        stop_strings: vec!["end.".into()],
        ..opts(script.len())
    };
    let out = generate(
        &mut model,
        &tok.encode("Story:").unwrap(),
        &o,
        Some(&tok),
        |_| Ok(()),
    )
    .unwrap();
    let text = tok.decode(&out).unwrap();
    assert!(text.ends_with("end."), "{text:?}");
    assert!(
        !tok.decode(&out[..out.len() - 1]).unwrap().contains("end."),
        "stopped late: {text:?}"
    );
}

#[test]
fn sampled_generation_is_reproducible_from_the_seed() {
    let mut model = Bigram::chain();
    model.table = (0..8).map(|i| random_logits(8, 50 + i)).collect();
    let run = |model: &mut Bigram, seed| {
        let o = GenerateOptions {
            sampling: sampling(1.0, 0, 0.95, seed),
            ..opts(40)
        };
        generate(model, &[0], &o, None, |_| Ok(())).unwrap()
    };
    let a = run(&mut model, 11);
    assert_eq!(a, run(&mut model, 11));
    assert_ne!(a, run(&mut model, 12));
}

#[test]
fn generation_errors_are_clear() {
    let mut model = Bigram::chain();
    let err = generate(&mut model, &[], &opts(5), None, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("prompt is empty"), "{err}");

    let o = GenerateOptions {
        stop_strings: vec!["x".into()],
        ..opts(5)
    };
    let err = generate(&mut model, &[1], &o, None, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("need a tokenizer"), "{err}");
    let o = GenerateOptions {
        stop_strings: vec![String::new()],
        ..opts(5)
    };
    assert!(
        generate(
            &mut model,
            &[1],
            &o,
            Some(&Tokenizer::byte_level()),
            |_| Ok(())
        )
        .is_err()
    );

    // An error from on_token stops generation and comes back as is.
    let mut calls = 0;
    let err = generate(&mut model, &[1], &opts(10), None, |_| {
        calls += 1;
        if calls == 3 {
            Err(Error::InvalidArgument {
                op: "client",
                detail: "hung up".into(),
            })
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "client", .. }) && calls == 3,
        "{err:?}"
    );

    // A model whose step returns a row of another size.
    let model = Script {
        ids: vec![1, 2, 3],
        pos: 0,
        vocab: 4,
    };
    struct Shrinking(Script);
    impl NextToken for Shrinking {
        fn prefill(&mut self, p: &[u32]) -> crsm::Result<Vec<f32>> {
            self.0.prefill(p)
        }
        fn step(&mut self, id: u32) -> crsm::Result<Vec<f32>> {
            self.0.vocab = 3;
            self.0.step(id)
        }
    }
    let err = generate(&mut Shrinking(model), &[0], &opts(3), None, |_| Ok(())).unwrap_err();
    assert!(
        matches!(err, Error::Shape { op: "generate", .. }),
        "{err:?}"
    );
}
