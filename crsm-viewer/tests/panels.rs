//! A snapshot per panel from a small real trace (the nano model, async, 23 tokens), rendered by
//! kittest's wgpu renderer (lavapipe in CI), and the interactions: clicking a tree node, scrubbing
//! the replay. `UPDATE_SNAPSHOTS=1 cargo test -p crsm-viewer` rewrites the PNGs under
//! tests/snapshots.

use std::path::{Path, PathBuf};

use crsm::trace::read_trace_file;
use crsm_viewer::app::Source;
use crsm_viewer::panels::{CriticPanel, GatesPanel, SearchTreePanel, StatsPanel, TokenStreamPanel};
use crsm_viewer::{TraceView, ViewerApp};
use egui::Vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn small_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/small.jsonl")
}

fn small() -> TraceView {
    TraceView::from_trace(read_trace_file(&small_path()).expect("the committed trace reads"))
}

/// A harness drawing one panel over the small trace.
fn panel_harness<P: 'static>(
    panel: P,
    size: Vec2,
    mut draw: impl FnMut(&mut P, &mut egui::Ui, &TraceView) + 'static,
) -> Harness<'static, (P, TraceView)> {
    Harness::builder().with_size(size).build_ui_state(
        move |ui, (panel, view): &mut (P, TraceView)| draw(panel, ui, view),
        (panel, small()),
    )
}

#[test]
fn token_stream_snapshot() {
    let mut h = panel_harness(TokenStreamPanel, Vec2::new(480.0, 320.0), |p, ui, v| {
        p.ui(ui, v)
    });
    h.get_by_label_contains("Token stream");
    h.snapshot("token_stream");
}

#[test]
fn search_tree_snapshot() {
    let mut h = panel_harness(
        SearchTreePanel::default(),
        Vec2::new(800.0, 480.0),
        |p, ui, v| p.ui(ui, v),
    );
    h.get_by_label_contains("plan for step 23");
    h.snapshot("search_tree");
}

#[test]
fn gates_snapshot() {
    let mut h = panel_harness(GatesPanel, Vec2::new(600.0, 240.0), |p, ui, v| p.ui(ui, v));
    h.get_by_label_contains("Injection gates");
    h.snapshot("gates");
}

#[test]
fn critic_snapshot() {
    let mut h = panel_harness(CriticPanel, Vec2::new(600.0, 320.0), |p, ui, v| p.ui(ui, v));
    h.snapshot("critic");
}

#[test]
fn stats_snapshot() {
    let mut h = panel_harness(StatsPanel, Vec2::new(420.0, 320.0), |p, ui, v| p.ui(ui, v));
    // 6 plans dropped in the first 23 tokens, all diverged.
    let c = crsm_viewer::panels::PlanCounts::of(&h.state().1);
    assert_eq!((c.posted, c.applied, c.decayed), (17, 5, 1));
    h.snapshot("stats");
}

#[test]
fn clicking_a_tree_node_shows_its_details() {
    let mut h = panel_harness(
        SearchTreePanel::default(),
        Vec2::new(800.0, 480.0),
        |p, ui, v| p.ui(ui, v),
    );
    assert!(h.query_by_label_contains("Node 3: depth").is_none());
    h.get_by_label("node 3").click();
    h.run();
    assert_eq!(h.state().0.selected, Some(3));
    h.get_by_label_contains("Node 3: depth 1");
    h.get_by_label_contains("Path: ");
    h.snapshot("search_tree_selected");
}

fn app_harness(app: ViewerApp) -> Harness<'static, ViewerApp> {
    Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .build_ui_state(|ui, app: &mut ViewerApp| app.ui(ui), app)
}

#[test]
fn scrubbing_changes_the_panels() {
    let mut h = app_harness(ViewerApp::replay(&small_path()));
    h.get_by_label_contains("plan for step 23");
    h.get_by_label("step 23");
    h.snapshot("app_replay");
    // Drag the scrubber back to event 12: fewer tokens, an earlier plan, no gates yet.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "events")
        .set_value_accesskit(12.0);
    h.run();
    assert_eq!(h.state().view.cursor, 12);
    h.get_by_label("step 4");
    h.get_by_label_contains("plan for step 3 (from step 1)");
    h.get_by_label("No plan applied yet.");
    // Step forward one event, then back to the start: no plan at all.
    h.get_by_label(">").click();
    h.run();
    assert_eq!(h.state().view.cursor, 13);
    h.get_by_label("|<").click();
    h.run();
    assert_eq!(h.state().view.cursor, 0);
    assert_eq!(h.get_all_by_label("No plan yet.").count(), 2); // the tree and the critic
}

#[test]
fn a_bad_line_is_an_error_row_and_replay_goes_on() {
    let text = std::fs::read_to_string(small_path()).unwrap();
    let mut lines: Vec<&str> = text.lines().take(14).collect();
    lines[4] = "{\"event\":\"token\",\"step\":";
    let trace = crsm::trace::read_trace(&lines.join("\n"), "bad.jsonl").unwrap();
    assert_eq!(trace.bad_lines.len(), 1);
    let view = TraceView::from_trace(trace);
    let mut h = Harness::builder()
        .with_size(Vec2::new(480.0, 240.0))
        .build_ui_state(
            |ui, (p, v): &mut (TokenStreamPanel, TraceView)| p.ui(ui, v),
            (TokenStreamPanel, view),
        );
    h.get_by_label_contains("line 5: ");
    // The tokens after the bad line are still read (line 13 is token 4).
    assert_eq!(h.state().1.step(), 4);
    h.snapshot("bad_line");
}

#[test]
fn another_schema_version_is_refused_naming_both() {
    let text = std::fs::read_to_string(small_path()).unwrap();
    let dir = std::env::temp_dir().join(format!("crsm-viewer-v2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v2.jsonl");
    std::fs::write(&path, text.replacen("\"version\":1", "\"version\":2", 1)).unwrap();
    let app = ViewerApp::replay(&path);
    let Source::Message(m) = &app.source else {
        panic!("a version-2 trace was accepted");
    };
    assert!(m.contains("version 2") && m.contains("version 1"), "{m}");
    let h = app_harness(app);
    h.get_by_label_contains("schema version 2 is not the version 1");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_missing_model_folder_is_a_message_not_a_crash() {
    let live = crsm_viewer::live::Live::new("/no/such/model".into(), crsm::DeviceRequest::Cpu);
    assert!(live.failed);
    let h = app_harness(ViewerApp::live(live));
    h.get_by_label_contains("no model folder at /no/such/model");
}
