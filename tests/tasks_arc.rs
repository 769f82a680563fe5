//! The arc family (ARC-format grids): the serialisation byte for byte on hand-made grids and a
//! hand-made problem, each transformation against hand-written output, the exact-match verifier on
//! right and wrong completions, the generator deterministic by seed, faithful to its parameters and
//! disjoint from an excluded split, and the ARC-AGI-1 converter on the shipped file.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use crsm::tasks::arc::{parse_prompt, prompt};
use crsm::tasks::arc_agi::convert;
use crsm::tasks::arc_gen::{ArcGrids, Instance};
use crsm::tasks::arc_grid::{Grid, Op};
use crsm::tasks::{Problem, make, verify};

fn grid(text: &str) -> Grid {
    Grid::parse(text).unwrap_or_else(|| panic!("{text:?} is a grid"))
}

#[test]
fn grids_serialise_as_digit_rows_joined_by_slashes() {
    let g = Grid::from_rows(&[vec![1, 2, 0], vec![3, 4, 5]]).unwrap();
    assert_eq!(g.to_string(), "120/345");
    assert_eq!((g.height(), g.width(), g.get(1, 2)), (2, 3, 5));
    assert_eq!(Grid::parse("120/345"), Some(g));
    assert_eq!(Grid::from_rows(&[vec![7]]).unwrap().to_string(), "7");
    let wide = "0".repeat(30);
    assert!(Grid::parse(&wide).is_some(), "30 wide is ARC's largest");
    for bad in [
        "",
        "12/3",
        "12//34",
        "12/34/",
        "1a/23",
        " 12/34",
        "12 /34",
        "12,34",
        &"0".repeat(31),
    ] {
        assert_eq!(Grid::parse(bad), None, "{bad:?}");
    }
    let e = Grid::from_rows(&[vec![1, 2], vec![3]]).unwrap_err();
    assert!(e.contains("row 1 has 1 cells"), "{e}");
    assert!(Grid::from_rows(&[vec![1, 10]]).is_err());
    assert!(Grid::from_rows(&[]).is_err());
}

#[test]
fn each_transformation_matches_hand_written_output() {
    let g = grid("120/345");
    assert_eq!(g.flip_left_right().to_string(), "021/543");
    assert_eq!(g.flip_up_down().to_string(), "345/120");
    // 2 x 3 turns 3 x 2; the first column read bottom to top becomes the first row.
    assert_eq!(g.rotate_clockwise().to_string(), "31/42/50");
    assert_eq!(Op::Rotate { quarters: 2 }.apply(&g).to_string(), "543/021");
    assert_eq!(Op::Rotate { quarters: 3 }.apply(&g).to_string(), "05/24/13");
    // Down 1, left 1: what leaves is lost, what is vacated is 0.
    assert_eq!(g.translate(1, -1).to_string(), "000/200");
    assert_eq!(g.translate(0, 1).to_string(), "012/034");
    assert_eq!(g.translate(-2, 0).to_string(), "000/000");
    assert_eq!(grid("12/34").scale(2).to_string(), "1122/1122/3344/3344");
    let map = [0, 5, 6, 7, 8, 9, 1, 2, 3, 4];
    assert_eq!(g.recolour(&map).to_string(), "560/789");
    assert_eq!(
        Op::Recolour(map).name(),
        "recolour:0567891234",
        "the map of 0..=9"
    );
    assert_eq!(Op::Flip { left_right: true }.apply(&g), g.flip_left_right());
    assert_eq!(Op::Flip { left_right: false }.name(), "flip_ud");
    assert_eq!(Op::Translate { dy: -1, dx: 2 }.name(), "translate(-1,2)");
    assert_eq!(Op::Scale { factor: 2 }.name(), "scale2");
    assert_eq!(Op::Rotate { quarters: 3 }.name(), "rotate270");
}

/// A left-right flip shown twice, then asked of `89/10`.
fn hand_made() -> Instance {
    Instance {
        demos: vec![
            (grid("12/34"), grid("21/43")),
            (grid("506/070"), grid("605/070")),
        ],
        test: grid("89/10"),
        answer: grid("98/01"),
        ops: vec![Op::Flip { left_right: true }],
    }
}

#[test]
fn the_problem_format_is_exact_on_a_hand_made_problem() {
    let inst = hand_made();
    assert_eq!(inst.prompt(), "12/34=21/43|506/070=605/070|89/10=");
    assert_eq!(inst.answer.to_string(), "98/01");
    assert_eq!(inst.transform(), "flip_lr");
    assert_eq!(
        parse_prompt(&inst.prompt()),
        Some((inst.demos.clone(), inst.test.clone()))
    );
    assert_eq!(prompt(&[], &grid("5")), "5=");
    for bad in ["12/34=21/43|89/10", "12/34|89/10=", "12/34=21/4|89/10=", ""] {
        assert_eq!(parse_prompt(bad), None, "{bad:?}");
    }
}

fn arc_problem(answer: &str) -> Problem {
    Problem {
        family: "arc".into(),
        prompt: hand_made().prompt(),
        answer: answer.into(),
        meta: serde_json::Value::Null,
    }
}

#[test]
fn the_arc_verifier_wants_exactly_the_answer_grid() {
    let p = arc_problem("98/01");
    // Right: the grid, ended by the end of the text, a newline or the next pair's `|`.
    for right in [
        "98/01",
        "98/01\n",
        "98/01   ",
        " 98/01",
        "98/01\r\nmore text",
        "98/01|12/34=21/43",
    ] {
        assert!(verify(&p, right).unwrap(), "{right:?}");
    }
    // Wrong: one cell off, another shape, the input, garbage, empty, stray characters.
    for wrong in [
        "98/00", "99/01", "98/01/00", "980/011", "98", "9801", "89/10", "98/01=", "98 /01",
        "98/0l", "garbage", "", "\n98/01", "|98/01",
    ] {
        assert!(!verify(&p, wrong).unwrap(), "{wrong:?}");
    }
    // A reference that is no grid is a broken problem: an error, not a wrong completion.
    let e = verify(&arc_problem("98/0"), "98/0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a grid"), "{e}");
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_arc_generator_is_deterministic_and_its_answers_verify() {
    let none = HashSet::new();
    let a = make("arc", 100, 7, &BTreeMap::new(), &none).unwrap();
    assert_eq!(a, make("arc", 100, 7, &BTreeMap::new(), &none).unwrap());
    assert_ne!(a, make("arc", 100, 8, &BTreeMap::new(), &none).unwrap());
    let prompts: HashSet<&String> = a.iter().map(|p| &p.prompt).collect();
    assert_eq!(prompts.len(), 100, "distinct");
    for p in &a {
        assert!(verify(p, &p.answer).unwrap(), "{p:?}");
        let (demos, test) = parse_prompt(&p.prompt).unwrap();
        assert_eq!(demos.len(), 2);
        for g in demos.iter().map(|(i, _)| i).chain([&test]) {
            assert!((3..=5).contains(&g.height()) && (3..=5).contains(&g.width()));
        }
        assert_eq!(p.meta["ops"], "all");
        assert!(p.meta["transform"].is_string());
    }
}

#[test]
fn generated_outputs_are_the_transformation_of_their_inputs() {
    let g = ArcGrids::default();
    let mut rng = crsm::rng::Rng::new(3);
    for _ in 0..200 {
        let inst = g.sample(&mut rng).unwrap();
        let apply = |x: &Grid| inst.ops.iter().fold(x.clone(), |x, op| op.apply(&x));
        for (input, output) in &inst.demos {
            assert_eq!(&apply(input), output, "{}", inst.transform());
            assert_ne!(input, output, "never trivial");
        }
        assert_eq!(apply(&inst.test), inst.answer);
        assert!((1..=2).contains(&inst.ops.len()));
    }
}

#[test]
fn held_out_arc_splits_differ_in_parameters_and_samples() {
    let train = make("arc", 200, 1, &BTreeMap::new(), &HashSet::new()).unwrap();
    let exclude: HashSet<String> = train.iter().map(|p| p.prompt.clone()).collect();
    let again = make("arc", 200, 1, &BTreeMap::new(), &exclude).unwrap();
    assert!(again.iter().all(|p| !exclude.contains(&p.prompt)));
    // Larger grids than training ever shows.
    let big = make(
        "arc",
        30,
        2,
        &params(&[("min_size", "6"), ("max_size", "6")]),
        &exclude,
    )
    .unwrap();
    for p in &big {
        let (demos, test) = parse_prompt(&p.prompt).unwrap();
        assert!(demos.iter().all(|(i, _)| (i.height(), i.width()) == (6, 6)));
        assert_eq!((test.height(), test.width()), (6, 6));
        assert_eq!(p.meta["min_size"], 6);
    }
    // Single transformations for training, compositions of two held out.
    let single = make("arc", 50, 3, &params(&[("ops", "single")]), &exclude).unwrap();
    assert!(
        single
            .iter()
            .all(|p| !p.meta["transform"].as_str().unwrap().contains('+'))
    );
    let pairs = make("arc", 50, 3, &params(&[("ops", "pair")]), &exclude).unwrap();
    assert!(
        pairs
            .iter()
            .all(|p| p.meta["transform"].as_str().unwrap().contains('+'))
    );
    let chosen = make("arc", 20, 3, &params(&[("ops", "scale+rotate")]), &exclude).unwrap();
    assert!(chosen.iter().all(|p| {
        p.meta["transform"]
            .as_str()
            .unwrap()
            .starts_with("scale2+rotate")
    }));
    // Bad parameters are errors that say why.
    let err = |ps: &[(&str, &str)]| {
        make("arc", 5, 0, &params(ps), &HashSet::new())
            .err()
            .unwrap()
            .to_string()
    };
    assert!(err(&[("ops", "spin")]).contains("ops item \"spin\""));
    assert!(err(&[("ops", "flip+rotate+scale")]).contains("two kinds"));
    assert!(err(&[("min_size", "0")]).contains("min_size"));
    assert!(err(&[("max_size", "16")]).contains("max_size"));
    assert!(err(&[("colors", "10")]).contains("colors"));
    assert!(err(&[("grid", "3")]).contains("no parameter \"grid\""));
    // 1 x 1 grids: a flip changes nothing, so there is no problem to make.
    let e = err(&[("ops", "flip"), ("min_size", "1"), ("max_size", "1")]);
    assert!(e.contains("allow too few"), "{e}");
}

fn arc_agi_1() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/arc/arc_agi_1_aa922be.json")
}

#[test]
fn arc_agi_tasks_that_fit_become_problems_whose_answers_verify() {
    let c = convert(&arc_agi_1(), "evaluation", 2048).unwrap();
    assert_eq!((c.tasks, c.test_pairs), (400, 419), "data/SOURCES.md");
    assert!(!c.problems.is_empty() && c.problems.len() < c.test_pairs);
    assert!(c.tasks_kept <= c.problems.len());
    let mut seen = HashSet::new();
    for p in &c.problems {
        assert_eq!(p.family, "arc");
        assert!(p.prompt.len() + p.answer.len() <= 2048, "{}", p.meta);
        assert!(verify(p, &p.answer).unwrap(), "{}", p.meta);
        assert!(parse_prompt(&p.prompt).is_some(), "{}", p.meta);
        let id = (p.meta["task"].clone(), p.meta["test"].clone());
        assert!(seen.insert(id), "one problem per test pair");
        assert_eq!(p.meta["split"], "evaluation");
    }
    // The first evaluation task, byte for byte: its first demonstration tiles 86/64.
    let first = &c.problems[0];
    assert_eq!(first.meta["task"], "00576224");
    assert!(
        first
            .prompt
            .starts_with("86/64=868686/646464/686868/464646/868686/646464|"),
        "{}",
        first.prompt
    );
    // A larger budget keeps a superset; the training split is there too.
    let more = convert(&arc_agi_1(), "evaluation", 8192).unwrap();
    assert!(more.problems.len() > c.problems.len());
    assert!(c.problems.iter().all(|p| more.problems.contains(&{
        let mut q = p.clone();
        q.meta["max_chars"] = 8192.into();
        q
    })));
    let train = convert(&arc_agi_1(), "training", 2048).unwrap();
    assert_eq!((train.tasks, train.test_pairs), (400, 416));
    let e = convert(&arc_agi_1(), "test", 2048)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("training or evaluation"), "{e}");
}

#[test]
fn a_bad_arc_agi_file_is_an_error_naming_the_task_and_field() {
    let dir = std::env::temp_dir().join(format!("crsm-arc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    let pair = r#"{"input": [[1, 2]], "output": [[2, 1]]}"#;
    let ragged = r#"{"input": [[1, 2], [3]], "output": [[1]]}"#;
    std::fs::write(
        &path,
        format!(
            r#"{{"train": {{}}, "eval": {{"abc": {{"train": [{pair}], "test": [{ragged}]}}}}}}"#
        ),
    )
    .unwrap();
    let e = convert(&path, "evaluation", 2048)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("bad.json") && e.contains("evaluation task abc test[0].input: row 1 has 1"),
        "{e}"
    );
    std::fs::write(&path, r#"{"train": {}, "eval": []}"#).unwrap();
    let e = convert(&path, "evaluation", 2048)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("bad.json:1") && e.contains("not an ARC task file"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
