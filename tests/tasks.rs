//! The evidence study's task families: the path-star format byte for byte on a hand-made graph,
//! verifiers on hand-written right and wrong answers, generators deterministic by seed, and
//! held-out splits disjoint from the training split.

use std::collections::{BTreeMap, HashSet};

use crsm::tasks::pathstar::{Graph, PathStar};
use crsm::tasks::{Problem, make, verify};

#[test]
fn the_pathstar_format_is_exact_on_a_hand_made_graph() {
    // Source 7, arms 7-3-9 and 7-1-4, goal 4.
    let g = Graph {
        edges: vec![(3, 9), (7, 1), (1, 4), (7, 3)],
        source: 7,
        goal: 4,
        path: vec![7, 1, 4],
    };
    assert_eq!(g.prompt(), "3,9|7,1|1,4|7,3/7,4=");
    assert_eq!(g.answer(), "7,1,4");
}

fn pathstar(prompt: &str) -> Problem {
    Problem {
        family: "pathstar".into(),
        prompt: prompt.into(),
        answer: String::new(),
        meta: serde_json::Value::Null,
    }
}

#[test]
fn the_pathstar_verifier_accepts_any_valid_path_and_nothing_else() {
    let p = pathstar("3,9|7,1|1,4|7,3/7,4=");
    for right in ["7,1,4", "7,1,4\n8,8", " 7, 1, 4 "] {
        assert!(verify(&p, right).unwrap(), "{right:?}");
    }
    for wrong in [
        "7,3,9", "7,4", "1,4", "7,1", "7,1,4,", "seven", "", "7,3,1,4",
    ] {
        assert!(!verify(&p, wrong).unwrap(), "{wrong:?}");
    }
}

#[test]
fn the_countdown_verifier_evaluates_exactly_and_counts_the_numbers() {
    let p = Problem {
        family: "countdown".into(),
        prompt: "3,7,25,50/178=".into(),
        answer: String::new(),
        meta: serde_json::Value::Null,
    };
    // Right: any expression reaching 178, each given number at most once, any may stay unused.
    for right in [
        "7*25+3",
        "3+25*7",
        "(50-25)*7+3",
        " 7 * 25 + 3 ",
        "((50-25)*7)+3\nrest",
    ] {
        assert!(verify(&p, right).unwrap(), "{right:?}");
    }
    // Wrong: the value, a number used twice or not given, malformed text.
    for wrong in [
        "7*25+2",
        "7*25+3+3",
        "7*25+3*50/50",
        "178",
        "(50-25)*7+3)",
        "((50-25)*7+3",
        "7*25+",
        "",
        "seven",
    ] {
        assert!(!verify(&p, wrong).unwrap(), "{wrong:?}");
    }
    // Exact rationals in between: 3/4 * 8 = 6; a division by zero is no answer.
    let q = Problem {
        prompt: "3,4,6,2/6=".into(),
        ..p.clone()
    };
    assert!(verify(&q, "3/4*(6+2)").unwrap());
    assert!(!verify(&q, "6/(4-4)").unwrap());
    assert!(!verify(&q, "6/(3-3)+6").unwrap());
}

#[test]
fn generators_are_deterministic_by_seed_and_their_answers_verify() {
    let none = HashSet::new();
    for family in ["pathstar", "countdown"] {
        let a = make(family, 50, 7, &BTreeMap::new(), &none).unwrap();
        let b = make(family, 50, 7, &BTreeMap::new(), &none).unwrap();
        let c = make(family, 50, 8, &BTreeMap::new(), &none).unwrap();
        assert_eq!(a, b, "{family}: same seed, same problems");
        assert_ne!(a, c, "{family}: another seed, other problems");
        let prompts: HashSet<&String> = a.iter().map(|p| &p.prompt).collect();
        assert_eq!(prompts.len(), 50, "{family}: distinct");
        for p in &a {
            assert!(verify(p, &p.answer).unwrap(), "{family}: {p:?}");
        }
    }
}

#[test]
fn held_out_splits_are_disjoint_and_parameters_are_checked() {
    let train = make("pathstar", 200, 1, &BTreeMap::new(), &HashSet::new()).unwrap();
    let exclude: HashSet<String> = train.iter().map(|p| p.prompt.clone()).collect();
    let test = make("pathstar", 200, 1, &BTreeMap::new(), &exclude).unwrap();
    assert!(
        test.iter().all(|p| !exclude.contains(&p.prompt)),
        "same seed, yet no repeats"
    );
    // d = 3 and l = 6: other generator parameters, other graphs.
    let params = BTreeMap::from([
        ("d".to_string(), "3".to_string()),
        ("l".to_string(), "6".to_string()),
    ]);
    let wide = make("pathstar", 20, 3, &params, &HashSet::new()).unwrap();
    for p in &wide {
        assert_eq!(p.prompt.matches('|').count() + 1, 18, "3 arms of 6 edges");
        assert_eq!(p.answer.split(',').count(), 7);
    }
    let bad = BTreeMap::from([("k".to_string(), "3".to_string())]);
    let e = make("pathstar", 5, 0, &bad, &HashSet::new())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no parameter \"k\""), "{e}");
    let too_many = BTreeMap::from([("n".to_string(), "5".to_string())]);
    assert!(make("pathstar", 5, 0, &too_many, &HashSet::new()).is_err());
    assert!(make("sudoku", 5, 0, &BTreeMap::new(), &HashSet::new()).is_err());
    let _ = PathStar::default();
}
