//! Config errors name the key at fault: a value of the wrong type names its key (not the whole
//! section), and each optimizer setting out of range is reported under its own name.

use crsm::train::RunConfig;

fn run_file(training_extra: &str) -> String {
    format!(
        r#"{{"model": {{"vocab_size": 64, "hidden_size": 8, "num_hidden_layers": 1}},
            "training": {{"data": "d", "tokenizer": "t.json", "out_dir": "o", "max_steps": 10,
                          "lr": 0.001 {training_extra}}}}}"#
    )
}

fn error_of(training_extra: &str) -> String {
    RunConfig::from_json_str(&run_file(training_extra), "run.json")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    RunConfig::from_json_str(&run_file(""), "run.json").expect("the base file is valid");
    let e = error_of(r#", "batch_size": "eight""#);
    assert!(e.contains("training.batch_size"), "{e}");
    let e = error_of(r#", "lr": "fast""#);
    assert!(e.contains("training.lr"), "{e}");
    let e = error_of(r#", "seq_len": -3"#);
    assert!(e.contains("training.seq_len"), "{e}");
}

#[test]
fn eps_and_grad_clip_are_reported_under_their_own_names() {
    let e = error_of(r#", "eps": 0"#);
    assert!(
        e.contains("training.eps") && !e.contains("weight_decay"),
        "{e}"
    );
    let e = error_of(r#", "grad_clip": -1"#);
    assert!(
        e.contains("training.grad_clip") && !e.contains("weight_decay"),
        "{e}"
    );
    let e = error_of(r#", "weight_decay": -0.5"#);
    assert!(e.contains("training.weight_decay"), "{e}");
}

#[test]
fn a_tasks_section_is_checked_field_by_field() {
    let with_tasks = |tasks: &str| -> Result<RunConfig, String> {
        let base = run_file("");
        let text = format!(
            "{}, \"tasks\": {tasks}}}",
            &base[..base.rfind('}').unwrap()]
        );
        RunConfig::from_json_str(&text, "run.json").map_err(|e| e.to_string())
    };
    let ok = r#"{"family": "pathstar", "dir": "t", "train": {"n": 10, "seed": 1, "params": {"d": 2}},
                 "val": {"n": 4, "seed": 2}, "critic_problems": 5, "critic_val_problems": 2,
                 "held_out": [{"name": "d3", "n": 3, "seed": 3, "params": {"d": 3}}]}"#;
    let c = with_tasks(ok).expect("valid");
    assert_eq!(c.tasks.unwrap().held_out[0].split().make_params()["d"], "3");
    let e =
        with_tasks(&ok.replace("\"critic_problems\": 5", "\"critic_problems\": 11")).unwrap_err();
    assert!(
        e.contains("tasks.critic_problems") && e.contains("exceeds train.n"),
        "{e}"
    );
    // With a critic split, the count is of its problems.
    let critic = ok.replace(
        "\"critic_problems\"",
        "\"critic\": {\"n\": 4, \"seed\": 6}, \"critic_problems\"",
    );
    let e = with_tasks(&critic).unwrap_err();
    assert!(
        e.contains("tasks.critic_problems") && e.contains("exceeds critic.n 4"),
        "{e}"
    );
    with_tasks(&critic.replace("\"critic_problems\": 5", "\"critic_problems\": 4")).expect("valid");
    let e = with_tasks(&ok.replace("\"name\": \"d3\"", "\"name\": \"a/b\"")).unwrap_err();
    assert!(e.contains("tasks.held_out[0].name"), "{e}");
    let e = with_tasks(&ok.replace("\"dir\"", "\"folder\"")).unwrap_err();
    assert!(e.contains("tasks") && e.contains("folder"), "{e}");
}
