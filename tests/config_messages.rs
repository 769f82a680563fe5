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
