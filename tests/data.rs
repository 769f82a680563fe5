//! The data pipeline: BPE training, corpus reading (plain text and the three JSONL shapes),
//! token shards (u16/u32, loss spans, validation), `prepare`, and the batch streams. Small
//! inline corpora in temp dirs that are removed when each test ends.

use std::path::PathBuf;

use crsm::data::IGNORE;
use crsm::data::{
    BadLinePolicy, BatchStream, Document, Segment, ShardHeader, TokenDType, TokenShard, Tokenized,
    Tokenizer, ValSource, alpaca_prompt, bits_per_byte, eval_batches, for_each_batch, prepare,
    prepare_in_batches, read_corpus, sha256_file, tokenize_documents, train_bpe, write_split,
};

/// A temp dir unique to this process and test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("crsm-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const STORY: &str = "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs \
away into the forest, and the forest is quiet again. Foxes and dogs, dogs and foxes.\n";

/// A tokenizer trained on STORY, saved as `dir/tokenizer.json`.
fn trained_tokenizer(dir: &TempDir) -> (PathBuf, Tokenizer) {
    let corpus = dir.write("tok-corpus/story.txt", STORY.repeat(4));
    let tok = train_bpe(&[corpus], 300).unwrap();
    let path = dir.0.join("tokenizer.json");
    tok.save(&path).unwrap();
    let loaded = Tokenizer::from_file(&path).unwrap();
    (path, loaded)
}

fn seg(text: &str, carries_loss: bool) -> Segment {
    Segment {
        text: text.into(),
        carries_loss,
    }
}

fn err_text<T: std::fmt::Debug>(r: crsm::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---- tokenizer ------------------------------------------------------------------------------

#[test]
fn trained_bpe_round_trips_text_exactly_after_save_and_load() {
    let dir = TempDir::new("bpe-roundtrip");
    let (_, tok) = trained_tokenizer(&dir);
    assert_eq!(tok.eos_id(), Some(0), "<|endoftext|> is id 0");
    assert!(
        tok.vocab_size() > 257 && tok.vocab_size() <= 300,
        "vocab {} should hold merges and stay within the asked size",
        tok.vocab_size()
    );
    for text in [
        STORY,
        "  leading spaces, trailing spaces  ",
        "unseen: héllo 日本語 🎉 \t tabs\r\nCRLF",
        "",
    ] {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text, "round trip of {text:?}");
    }
    // Merges were learned: the corpus text takes fewer tokens than bytes.
    assert!(tok.encode(STORY).unwrap().len() < STORY.len() / 2);
}

#[test]
fn bpe_training_is_deterministic() {
    let dir = TempDir::new("bpe-determinism");
    let corpus = dir.write("story.txt", STORY);
    let a = dir.0.join("a.json");
    let b = dir.0.join("b.json");
    train_bpe(std::slice::from_ref(&corpus), 280)
        .unwrap()
        .save(&a)
        .unwrap();
    train_bpe(&[corpus], 280).unwrap().save(&b).unwrap();
    assert_eq!(sha256_file(&a).unwrap(), sha256_file(&b).unwrap());
}

#[test]
fn bpe_rejects_a_vocab_without_room_for_the_bytes() {
    let dir = TempDir::new("bpe-small");
    let corpus = dir.write("story.txt", STORY);
    assert!(err_text(train_bpe(&[corpus], 100)).contains("below 257"));
}

// ---- corpus ---------------------------------------------------------------------------------

#[test]
fn the_four_jsonl_shapes_become_segments_with_loss_on_responses_only() {
    let dir = TempDir::new("jsonl-shapes");
    let file = dir.write(
        "mix.jsonl",
        concat!(
            r#"{"text": "plain text"}"#,
            "\n\n",
            r#"{"context": ["hi", "hello, how can I help?", "a joke"], "response": "no.", "id": 7}"#,
            "\n",
            r#"{"instruction": "Add.", "input": "2 2", "output": "4"}"#,
            "\n",
            r#"{"instruction": "Greet.", "output": "Hi"}"#,
            "\n",
            r#"{"family": "pathstar", "prompt": "1,2|0,1/0,2=", "answer": "0,1,2", "meta": {}}"#,
            "\n",
        ),
    );
    let corpus = read_corpus(&[file], BadLinePolicy::Fail).unwrap();
    let docs: Vec<Vec<Segment>> = corpus.documents.into_iter().map(|d| d.segments).collect();
    assert_eq!(
        docs,
        vec![
            vec![seg("plain text", true)],
            vec![
                seg("hi\nhello, how can I help?\na joke\n", false),
                seg("no.", true)
            ],
            vec![seg(&alpaca_prompt("Add.", "2 2"), false), seg("4", true)],
            vec![seg(&alpaca_prompt("Greet.", ""), false), seg("Hi", true)],
            vec![seg("1,2|0,1/0,2=", false), seg("0,1,2", true)],
        ]
    );
    assert!(alpaca_prompt("Add.", "2 2").ends_with("### Input:\n2 2\n\n### Response:\n"));
    assert!(!alpaca_prompt("Greet.", "").contains("### Input:"));
    assert_eq!(corpus.report.documents, 5);
    assert_eq!(corpus.report.skipped_lines, 0);
}

#[test]
fn a_directory_is_read_in_sorted_order_txt_and_jsonl_only() {
    let dir = TempDir::new("corpus-dir");
    dir.write("in/b.txt", "second");
    dir.write("in/a.txt", "first");
    dir.write("in/sub/c.jsonl", "{\"text\": \"third\"}\n");
    dir.write("in/notes.md", "ignored");
    dir.write("in/.hidden.txt", "ignored");
    let corpus = read_corpus(&[dir.0.join("in")], BadLinePolicy::Fail).unwrap();
    let texts: Vec<&str> = corpus
        .documents
        .iter()
        .map(|d| d.segments[0].text.as_str())
        .collect();
    assert_eq!(texts, ["first", "second", "third"]);
    assert_eq!(corpus.report.files, 3);
}

#[test]
fn a_bad_jsonl_line_fails_naming_file_and_line() {
    let dir = TempDir::new("bad-line-fail");
    let file = dir.write(
        "data.jsonl",
        "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"text\": 5}\n",
    );
    let msg = err_text(read_corpus(
        std::slice::from_ref(&file),
        BadLinePolicy::Fail,
    ));
    let at = format!("{}:3", file.display());
    assert!(msg.contains(&at), "{msg:?} should name {at}");
    assert!(msg.contains("\"text\" must be a string"), "{msg}");
}

#[test]
fn bad_jsonl_lines_are_skipped_and_reported_under_skip() {
    let dir = TempDir::new("bad-line-skip");
    let file = dir.write(
        "data.jsonl",
        concat!(
            "not json\n",
            "{\"text\": \"kept\"}\n",
            "[1, 2]\n",
            "{\"context\": \"not a list\", \"response\": \"r\"}\n",
            "{\"instruction\": \"i\"}\n",
            "{\"other\": 1}\n",
        ),
    );
    let corpus = read_corpus(std::slice::from_ref(&file), BadLinePolicy::Skip).unwrap();
    assert_eq!(corpus.documents.len(), 1);
    let report = corpus.report;
    assert_eq!(report.skipped_lines, 5);
    let lines: Vec<usize> = report.first_bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(lines, [1, 3, 4, 5, 6]);
    let reasons: Vec<&str> = report
        .first_bad_lines
        .iter()
        .map(|b| b.reason.as_str())
        .collect();
    assert!(reasons[0].starts_with("not valid JSON"), "{reasons:?}");
    assert!(reasons[1].contains("an array"), "{reasons:?}");
    assert!(
        reasons[2].contains("\"context\" must be an array"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("without an \"output\""), "{reasons:?}");
    assert!(reasons[4].starts_with("expected {\"text\"}"), "{reasons:?}");
    assert!(
        report
            .first_bad_lines
            .iter()
            .all(|b| b.file == file.display().to_string())
    );
}

#[test]
fn an_empty_corpus_is_an_error_naming_it() {
    let dir = TempDir::new("empty");
    let empty_file = dir.write("empty.txt", "");
    let msg = err_text(read_corpus(
        std::slice::from_ref(&empty_file),
        BadLinePolicy::Fail,
    ));
    assert!(
        msg.contains("empty corpus") && msg.contains("empty.txt"),
        "{msg}"
    );

    std::fs::create_dir_all(dir.0.join("nothing")).unwrap();
    dir.write("nothing/readme.md", "not a corpus file");
    let msg = err_text(read_corpus(&[dir.0.join("nothing")], BadLinePolicy::Fail));
    assert!(
        msg.contains("empty corpus") && msg.contains("0 file(s)"),
        "{msg}"
    );

    // Only blank lines, or only bad lines skipped, leave no text either.
    let blank = dir.write("blank.jsonl", "\n  \n");
    assert!(err_text(read_corpus(&[blank], BadLinePolicy::Skip)).contains("empty corpus"));
}

#[test]
fn non_utf8_text_is_an_error_with_the_byte_offset() {
    let dir = TempDir::new("utf8");
    let file = dir.write("latin1.txt", b"caf\xe9 au lait\n".as_slice());
    let msg = err_text(read_corpus(
        std::slice::from_ref(&file),
        BadLinePolicy::Fail,
    ));
    assert!(msg.contains("latin1.txt:1"), "{msg}");
    assert!(
        msg.contains("not UTF-8") && msg.contains("byte offset 3"),
        "{msg}"
    );

    let jsonl = dir.write(
        "bad.jsonl",
        b"{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n".as_slice(),
    );
    let msg = err_text(read_corpus(&[jsonl], BadLinePolicy::Skip));
    assert!(
        msg.contains("bad.jsonl:2") && msg.contains("byte offset 25"),
        "{msg}"
    );
}

// ---- shards ---------------------------------------------------------------------------------

fn tokens(ids: Vec<u32>, loss: Vec<bool>, bytes: usize) -> Tokenized {
    Tokenized { ids, loss, bytes }
}

fn read_all(shard: &TokenShard) -> (Vec<u32>, Vec<bool>) {
    let (mut ids, mut loss) = (Vec::new(), Vec::new());
    shard.read(0, shard.len(), &mut ids).unwrap();
    shard.carries_loss(0, shard.len(), &mut loss).unwrap();
    (ids, loss)
}

#[test]
fn shards_are_u16_up_to_65536_ids_and_u32_beyond() {
    let dir = TempDir::new("dtype");
    for (vocab, dtype, top) in [
        (65536, TokenDType::U16, 65535),
        (70000, TokenDType::U32, 69999),
    ] {
        let split = format!("v{vocab}");
        let t = tokens(vec![0, 1, top, 7], vec![true; 4], 10);
        let header = write_split(&dir.0, &split, &t, vocab, "abc", Some(0)).unwrap();
        assert_eq!(header.dtype, dtype);
        assert_eq!(header.loss_spans, None, "all loss is written as null");
        let bin = std::fs::metadata(dir.0.join(format!("{split}.bin"))).unwrap();
        assert_eq!(bin.len() as usize, 4 * dtype.width());
        let shard = TokenShard::open(&dir.0, &split, Some("abc")).unwrap();
        assert_eq!(shard.header(), &header);
        assert_eq!(read_all(&shard), (t.ids.clone(), t.loss.clone()));
        let mut part = Vec::new();
        shard.read(2, 2, &mut part).unwrap();
        assert_eq!(part, [top, 7]);
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("v70000.json")).unwrap()).unwrap();
    assert_eq!(json["format"], "crsm-tokens");
    assert_eq!(json["version"], 1);
    assert_eq!(json["dtype"], "u32");
    assert_eq!(json["eos_id"], 0);
    assert!(json["loss_spans"].is_null());
}

#[test]
fn loss_spans_round_trip_and_answer_any_window() {
    let dir = TempDir::new("spans");
    let loss = vec![false, true, true, false, false, true, false, true];
    let t = tokens((0..8).collect(), loss.clone(), 8);
    let header = write_split(&dir.0, "train", &t, 256, "h", None).unwrap();
    assert_eq!(header.loss_spans, Some(vec![[1, 3], [5, 6], [7, 8]]));
    let shard = TokenShard::open(&dir.0, "train", None).unwrap();
    let mut out = Vec::new();
    for start in 0..8 {
        for len in 0..=8 - start {
            shard.carries_loss(start, len, &mut out).unwrap();
            assert_eq!(out, loss[start..start + len], "window {start}+{len}");
        }
    }
    let msg = err_text(shard.read(6, 3, &mut Vec::new()));
    assert!(
        msg.contains("past the end") && msg.contains("train.bin"),
        "{msg}"
    );
}

#[test]
fn opening_a_shard_checks_length_hash_ids_and_header() {
    let dir = TempDir::new("validate");
    let t = tokens(vec![1, 2, 3], vec![true; 3], 3);
    write_split(&dir.0, "train", &t, 256, "hash-a", None).unwrap();

    let msg = err_text(TokenShard::open(&dir.0, "train", Some("hash-b")));
    assert!(
        msg.contains("train.json") && msg.contains("hash-a"),
        "{msg}"
    );

    // A header that claims a smaller vocabulary than the ids use.
    let json = dir.0.join("train.json");
    let mut header: ShardHeader = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    header.vocab_size = 3;
    std::fs::write(&json, serde_json::to_vec(&header).unwrap()).unwrap();
    let msg = err_text(TokenShard::open(&dir.0, "train", None));
    assert!(
        msg.contains("train.bin") && msg.contains("token 2 is id 3"),
        "{msg}"
    );

    // A truncated id file.
    write_split(&dir.0, "train", &t, 256, "hash-a", None).unwrap();
    std::fs::write(dir.0.join("train.bin"), [1u8, 0, 2]).unwrap();
    let msg = err_text(TokenShard::open(&dir.0, "train", None));
    assert!(
        msg.contains("train.bin") && msg.contains("3 bytes"),
        "{msg}"
    );

    // Unknown or wrong header fields.
    std::fs::write(&json, r#"{"format": "other"}"#).unwrap();
    assert!(err_text(TokenShard::open(&dir.0, "train", None)).contains("not a token shard header"));

    // Writing refuses ids past the vocabulary.
    let msg = err_text(write_split(&dir.0, "x", &t, 3, "h", None));
    assert!(msg.contains("token 2 is id 3"), "{msg}");
}

// ---- prepare --------------------------------------------------------------------------------

#[test]
fn prepare_writes_train_and_val_with_response_masks() {
    let dir = TempDir::new("prepare");
    let (tok_path, tok) = trained_tokenizer(&dir);
    let input = dir.write(
        "corpus/chat.jsonl",
        concat!(
            r#"{"text": "The fox runs."}"#,
            "\n",
            r#"{"context": ["Where is the dog?"], "response": "The dog sleeps."}"#,
            "\n",
            r#"{"instruction": "Name an animal.", "input": "", "output": "fox"}"#,
            "\n",
        ),
    );
    let val_file = dir.write("val.txt", "The lazy dog.");
    let out = dir.0.join("prepared");
    let summary = prepare(
        &input,
        &tok_path,
        &out,
        &ValSource::File(val_file),
        BadLinePolicy::Fail,
    )
    .unwrap();

    let corpus = read_corpus(&[input], BadLinePolicy::Fail).unwrap();
    let expected = tokenize_documents(&tok, &corpus.documents).unwrap();
    let hash = sha256_file(&tok_path).unwrap();
    let train = TokenShard::open(&out, "train", Some(&hash)).unwrap();
    assert_eq!(train.header(), &summary.train);
    let (ids, loss) = read_all(&train);
    assert_eq!(ids, expected.ids);
    assert_eq!(loss, expected.loss);
    assert_eq!(
        train.header().bytes,
        corpus.documents.iter().map(Document::bytes).sum::<usize>()
    );

    // Token by token: each document's tokens, then EOS; loss exactly on the loss segments, and
    // on an EOS after a loss segment (all three documents end in one).
    let mut want_ids = Vec::new();
    let mut want_loss = Vec::new();
    for doc in &corpus.documents {
        for s in &doc.segments {
            let seg_ids = tok.encode(&s.text).unwrap();
            want_loss.extend(std::iter::repeat_n(s.carries_loss, seg_ids.len()));
            want_ids.extend(seg_ids);
        }
        want_ids.push(0);
        want_loss.push(true);
    }
    assert_eq!((ids.clone(), loss.clone()), (want_ids, want_loss));
    assert!(
        loss.contains(&false),
        "the chat and instruction prompts carry no loss"
    );
    let text = tok.decode(&ids).unwrap();
    assert!(text.starts_with("The fox runs.<|endoftext|>Where is the dog?\nThe dog sleeps."));

    let val = TokenShard::open(&out, "val", Some(&hash)).unwrap();
    let (val_ids, val_loss) = read_all(&val);
    assert_eq!(tok.decode(&val_ids).unwrap(), "The lazy dog.<|endoftext|>");
    assert!(val_loss.iter().all(|&l| l) && val.header().loss_spans.is_none());
    assert_eq!(val.header().bytes, 13);
}

#[test]
fn prepare_with_a_fraction_cuts_the_last_tokens_off_as_val() {
    let dir = TempDir::new("prepare-fraction");
    let (tok_path, tok) = trained_tokenizer(&dir);
    let input = dir.write("story.txt", STORY.repeat(3));
    let out = dir.0.join("prepared");
    let s = prepare(
        &input,
        &tok_path,
        &out,
        &ValSource::Fraction(0.25),
        BadLinePolicy::Fail,
    )
    .unwrap();
    let all = tokenize_documents(
        &tok,
        &read_corpus(&[input], BadLinePolicy::Fail)
            .unwrap()
            .documents,
    )
    .unwrap();
    let n = all.ids.len();
    let val_len = (n as f64 * 0.25).round() as usize;
    assert_eq!((s.train.count, s.val.count), (n - val_len, val_len));
    let (train_ids, _) = read_all(&TokenShard::open(&out, "train", None).unwrap());
    let (val_ids, _) = read_all(&TokenShard::open(&out, "val", None).unwrap());
    assert_eq!([train_ids.clone(), val_ids].concat(), all.ids);
    // The bytes are shared out: the train side's are the bytes of its decoded text.
    assert_eq!(s.train.bytes + s.val.bytes, STORY.len() * 3);
    assert_eq!(s.train.bytes, tok.decode(&train_ids).unwrap().len());

    let msg = err_text(prepare(
        &dir.0.join("story.txt"),
        &tok_path,
        &out,
        &ValSource::Fraction(1.5),
        BadLinePolicy::Fail,
    ));
    assert!(msg.contains("between 0 and 1"), "{msg}");
}

/// A directory corpus of several files: plain text and JSONL with prompts.
fn multi_file_corpus(dir: &TempDir) -> PathBuf {
    dir.write("corpus/a.txt", STORY);
    dir.write(
        "corpus/b.jsonl",
        concat!(
            r#"{"context": ["Where is the dog?"], "response": "The dog sleeps."}"#,
            "\n",
            r#"{"instruction": "Name an animal.", "input": "", "output": "fox"}"#,
            "\n",
        ),
    );
    dir.write("corpus/c.txt", STORY.repeat(2));
    dir.write("corpus/d.txt", "The end.");
    dir.0.join("corpus")
}

#[test]
fn corpus_batches_are_whole_files_in_order() {
    let dir = TempDir::new("batches-of-files");
    let corpus = multi_file_corpus(&dir);
    let all = read_corpus(std::slice::from_ref(&corpus), BadLinePolicy::Fail).unwrap();
    // A limit of one byte flushes after every file; no limit keeps one batch.
    for (limit, want) in [(1, vec![1, 2, 1, 1]), (usize::MAX, vec![5])] {
        let mut batches: Vec<Vec<Document>> = Vec::new();
        let report = for_each_batch(
            std::slice::from_ref(&corpus),
            BadLinePolicy::Fail,
            limit,
            |b| {
                batches.push(b);
                Ok(())
            },
        )
        .unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, want, "limit {limit}");
        assert_eq!(batches.concat(), all.documents);
        assert_eq!(report, all.report);
    }
}

#[test]
fn prepare_streamed_in_small_batches_writes_the_same_shards() {
    let dir = TempDir::new("prepare-batches");
    let (tok_path, _) = trained_tokenizer(&dir);
    let corpus = multi_file_corpus(&dir);
    let val_file = dir.write("val.txt", "The lazy dog.");
    for val in [ValSource::Fraction(0.3), ValSource::File(val_file)] {
        let shards = |batch_bytes: usize, name: &str| {
            let out = dir.0.join(name);
            let s = prepare_in_batches(
                &corpus,
                &tok_path,
                &out,
                &val,
                BadLinePolicy::Fail,
                batch_bytes,
            )
            .unwrap();
            let bins: Vec<Vec<u8>> = ["train.bin", "val.bin"]
                .iter()
                .map(|f| std::fs::read(out.join(f)).unwrap())
                .collect();
            (s.train, s.val, bins)
        };
        let (train, val_header, bins) = shards(usize::MAX, "one-batch");
        assert_eq!(shards(1, "file-by-file"), (train.clone(), val_header, bins));
        assert!(train.loss_spans.is_some(), "the prompts carry no loss");
    }
}

#[test]
fn a_failed_prepare_leaves_no_shards_or_temporary_files() {
    let dir = TempDir::new("prepare-fails");
    let (tok_path, _) = trained_tokenizer(&dir);
    let input = dir.write("story.txt", STORY);
    let empty_val = dir.write("empty.txt", "");
    let out = dir.0.join("prepared");
    let msg = err_text(prepare(
        &input,
        &tok_path,
        &out,
        &ValSource::File(empty_val),
        BadLinePolicy::Fail,
    ));
    assert!(
        msg.contains("empty corpus") && msg.contains("empty.txt"),
        "{msg}"
    );
    // The splits were staged beside `out`, which a failure never creates.
    assert!(!out.exists(), "{} was created", out.display());
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".prepared"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---- batches --------------------------------------------------------------------------------

/// A shard of ids 0..n where every third token carries no loss.
fn counting_shard(dir: &TempDir, n: u32) -> TokenShard {
    let ids: Vec<u32> = (0..n).collect();
    let loss: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
    write_split(
        &dir.0,
        "train",
        &tokens(ids, loss, 2 * n as usize),
        1000,
        "h",
        None,
    )
    .unwrap();
    TokenShard::open(&dir.0, "train", None).unwrap()
}

#[test]
fn batches_shift_targets_by_one_and_ignore_tokens_without_loss() {
    let dir = TempDir::new("batch-targets");
    let mut stream = BatchStream::new(counting_shard(&dir, 41), 8, 7).unwrap();
    assert_eq!(stream.windows_per_epoch(), 5);
    let b = stream.next_batch(3);
    assert_eq!(
        (b.batch, b.seq, b.inputs.len(), b.targets.len()),
        (3, 8, 24, 24)
    );
    for row in 0..3 {
        let inputs = &b.inputs[row * 8..row * 8 + 8];
        let start = inputs[0];
        assert_eq!(start % 8, 0, "windows start every seq tokens");
        assert_eq!(inputs, (start..start + 8).collect::<Vec<_>>());
        let targets = &b.targets[row * 8..row * 8 + 8];
        for (j, &t) in targets.iter().enumerate() {
            let next = start + j as u32 + 1;
            assert_eq!(t, if next.is_multiple_of(3) { IGNORE } else { next });
        }
    }
    assert_eq!(
        b.loss_tokens,
        b.targets.iter().filter(|&&t| t != IGNORE).count()
    );
}

#[test]
fn each_epoch_visits_every_window_once_in_a_seeded_order() {
    let dir = TempDir::new("batch-epochs");
    let mut stream = BatchStream::new(counting_shard(&dir, 81), 4, 1).unwrap();
    let starts = |s: &mut BatchStream| -> Vec<u32> {
        let b = s.next_batch(20);
        b.inputs.chunks(4).map(|r| r[0]).collect()
    };
    let epoch0 = starts(&mut stream);
    let epoch1 = starts(&mut stream);
    let mut sorted = epoch0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..20).map(|w| w * 4).collect::<Vec<_>>());
    assert_ne!(epoch0, epoch1, "a new permutation each epoch");
    assert_ne!(epoch0, sorted, "shuffled");
    assert_eq!(stream.position().epoch, 1);
    let other_seed = starts(&mut BatchStream::new(counting_shard(&dir, 81), 4, 2).unwrap());
    assert_ne!(epoch0, other_seed);
}

#[test]
fn a_resumed_stream_yields_the_same_batches() {
    let dir = TempDir::new("batch-resume");
    let mut full = BatchStream::new(counting_shard(&dir, 101), 6, 42).unwrap();
    let mut expected = Vec::new();
    let mut saved = None;
    for step in 0..12 {
        if step == 5 {
            let json = serde_json::to_string(&full.position()).unwrap();
            saved = Some(serde_json::from_str(&json).unwrap());
        }
        let b = full.next_batch(3);
        if step >= 5 {
            expected.push(b);
        }
    }
    let mut resumed = BatchStream::resume(
        TokenShard::open(&dir.0, "train", None).unwrap(),
        6,
        saved.unwrap(),
    )
    .unwrap();
    let got: Vec<_> = (5..12).map(|_| resumed.next_batch(3)).collect();
    assert_eq!(
        got, expected,
        "batches 5..12 cross epoch boundaries (16 windows, 3 a batch)"
    );
}

#[test]
fn a_shard_too_short_for_one_sequence_is_an_error() {
    let dir = TempDir::new("batch-short");
    let msg = err_text(BatchStream::new(counting_shard(&dir, 8), 8, 0));
    assert!(
        msg.contains("train.bin") && msg.contains("8 tokens"),
        "{msg}"
    );
}

#[test]
fn eval_batches_walk_the_first_tokens_in_order() {
    let dir = TempDir::new("eval");
    let shard = counting_shard(&dir, 100);
    let batches: Vec<_> = eval_batches(&shard, 2, 10, 61).collect();
    // 61 tokens hold 6 windows of 11 at stride 10: batches of 2, 2, 2.
    let starts: Vec<u32> = batches
        .iter()
        .flat_map(|b| b.inputs.chunks(10).map(|r| r[0]))
        .collect();
    assert_eq!(starts, [0, 10, 20, 30, 40, 50]);
    assert!(batches.iter().all(|b| b.batch == 2));
    let last: Vec<_> = eval_batches(&shard, 4, 10, 1000).collect();
    assert_eq!(last.iter().map(|b| b.batch).collect::<Vec<_>>(), [4, 4, 1]);
    assert_eq!(*last[2].inputs.last().unwrap(), 89);
}

#[test]
fn bits_per_byte_converts_nats_per_token_by_bytes_per_token() {
    let dir = TempDir::new("bpb");
    let shard = counting_shard(&dir, 100); // 200 bytes over 100 tokens: 2 bytes a token
    // 10 tokens at ln 2 nats each = 10 bits over 20 bytes.
    let bpb = bits_per_byte(10.0 * std::f64::consts::LN_2, 10, shard.header()).unwrap();
    assert!((bpb - 0.5).abs() < 1e-12, "{bpb}");
    assert_eq!(bits_per_byte(1.0, 0, shard.header()), None);
}

/// data/SOURCES.md gives each shipped data file's size and sha256; a file that changes without its
/// note fails here. Every file under data/ that is not a note or a licence must be listed.
#[test]
fn shipped_data_files_match_their_sizes_and_hashes_in_sources_md() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    let notes = std::fs::read_to_string(data.join("SOURCES.md")).unwrap();
    let mut listed = Vec::new();
    for row in notes.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
        let (file, bytes, hash) = (cells[1], cells[2], cells[3]);
        let path = data.join(file);
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size.to_string(), bytes, "{file}: size");
        assert_eq!(sha256_file(&path).unwrap(), hash, "{file}: sha256");
        listed.push(file.to_string());
    }
    let (mut shipped, mut dirs) = (Vec::new(), vec![data.clone()]);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if path.is_dir() {
                dirs.push(path);
            } else if !name.ends_with(".md") && !name.starts_with("LICENSE") {
                shipped.push(
                    path.strip_prefix(&data)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_string(),
                );
            }
        }
    }
    listed.sort();
    shipped.sort();
    assert_eq!(
        listed, shipped,
        "files under data/ vs the rows of data/SOURCES.md"
    );
}
