//! The deliberation trace: what is written parses back; a bad line is reported with its number
//! and the rest still read; another schema version is refused, naming both.

use crsm::trace::{
    Header, NodeSummary, RootChoice, SCHEMA, TraceEvent, TraceWriter, VERSION, read_trace,
};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn header() -> Header {
    Header {
        schema: SCHEMA.into(),
        version: VERSION,
        model: "runs/nano/crsm".into(),
        mode: "async".into(),
        settings: serde_json::json!({"lag": 2}),
        prompt_ids: vec![5, 6],
        prompt: "It is".into(),
    }
}

fn events() -> Vec<TraceEvent> {
    vec![
        TraceEvent::Token {
            step: 1,
            id: 9,
            text: " a".into(),
            entropy: 2.5,
        },
        TraceEvent::SnapshotSent {
            generation: 1,
            step: 1,
        },
        TraceEvent::PlanPosted {
            generation: 1,
            from_step: 1,
            target_step: 3,
            latency_ms: 4.5,
            simulations: 8,
            value: -3.1,
            confidences: vec![0.2, 0.4],
            chosen: 11,
            root_policy: vec![RootChoice {
                token: 11,
                prob: 0.7,
                visits: 6,
            }],
            nodes: vec![NodeSummary {
                id: 0,
                parent: None,
                token: None,
                visits: 8,
                value: -3.1,
                prior: 1.0,
            }],
        },
        TraceEvent::PlanApplied {
            target_step: 3,
            step: 3,
            alphas: vec![0.01, 0.0],
            norm_before: vec![1.0, 2.0],
            norm_after: vec![1.1, 2.0],
            guided: true,
        },
        TraceEvent::PlanDropped {
            target_step: 4,
            step: 9,
            late: 5,
            reason: "late".into(),
        },
        TraceEvent::PlanRejected {
            generation: 0,
            expected: 1,
            target_step: 2,
        },
        TraceEvent::Autonomy {
            from: 9,
            to: 6,
            value: -5.0,
        },
    ]
}

#[test]
fn written_events_parse_back() {
    let sink = Sink::default();
    let mut w = TraceWriter::to_sink(Box::new(sink.clone()), header()).unwrap();
    for e in events() {
        w.write(&e).unwrap();
    }
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    let trace = read_trace(&text, "t.jsonl").unwrap();
    assert_eq!(trace.header, header());
    assert!(trace.bad_lines.is_empty());
    let got: Vec<TraceEvent> = trace.events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(got, events());
    assert_eq!(trace.events[0].0, 2, "line numbers count the header");
}

#[test]
fn a_bad_line_is_reported_with_its_number_and_skipped() {
    let mut lines: Vec<String> =
        std::iter::once(serde_json::to_string(&TraceEvent::Header(header())).unwrap())
            .chain(events().iter().map(|e| serde_json::to_string(e).unwrap()))
            .collect();
    lines.insert(
        3,
        "{\"event\": \"token\", \"step\": \"not a number\"}".into(),
    );
    lines.insert(5, "not json at all".into());
    let trace = read_trace(&lines.join("\n"), "t.jsonl").unwrap();
    assert_eq!(
        trace.events.len(),
        events().len(),
        "every good line is kept"
    );
    let bad: Vec<usize> = trace.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(bad, vec![4, 6]);
}

#[test]
fn another_schema_version_is_refused_naming_both() {
    let mut h = serde_json::to_value(TraceEvent::Header(header())).unwrap();
    h["version"] = serde_json::json!(VERSION + 1);
    let e = read_trace(&h.to_string(), "old.jsonl")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("old.jsonl")
            && e.contains(&format!("version {}", VERSION + 1))
            && e.contains(&format!("version {VERSION}")),
        "{e}"
    );
    let e = read_trace("{\"event\":\"token\"}", "x.jsonl")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a crsm trace"), "{e}");
}
