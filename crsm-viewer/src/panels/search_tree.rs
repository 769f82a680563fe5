//! The current plan's search tree, drawn with egui's `Painter` (no graph crate supports egui
//! 0.37). The tree is the trace's flat node list (mctx's layout: the root first, each node naming
//! its parent), laid out top-down: leaves in depth-first order, a parent over its children. Nodes
//! are sized by visits and coloured by value; edges carry the token text; the chosen path (the
//! chosen root action, then the most visited child) is highlighted. Hover shows prior / Q /
//! visits; a click selects a node and shows its details below.

use crsm::trace::NodeSummary;
use egui::{Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2, WidgetInfo, pos2};

use super::value_colour;
use crate::view::{PlanRef, TraceView};

#[derive(Default)]
pub struct SearchTreePanel {
    /// The clicked node's id, in the current plan's tree.
    pub selected: Option<u32>,
}

/// Where each node goes, by index into the node list.
struct Layout {
    pos: Vec<Pos2>,
    depth: Vec<usize>,
    children: Vec<Vec<usize>>,
}

impl SearchTreePanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, view: &TraceView) {
        let Some(plan) = view.current_plan() else {
            ui.heading("Search tree");
            ui.label("No plan yet.");
            return;
        };
        ui.heading(format!(
            "Search tree: plan for step {} (from step {}), {} simulations, {:.1} ms",
            plan.target_step, plan.from_step, plan.simulations, plan.latency_ms
        ));
        let nodes = plan.nodes;
        if nodes.is_empty() {
            ui.label("This plan carries no nodes.");
            return;
        }
        if self
            .selected
            .is_some_and(|s| !nodes.iter().any(|n| n.id == s))
        {
            self.selected = None;
        }
        let details_h = 70.0;
        let size = Vec2::new(
            ui.available_width(),
            (ui.available_height() - details_h).max(120.0),
        );
        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
        let layout = layout(nodes, rect.shrink2(Vec2::new(16.0, 14.0)));
        let chosen = chosen_path(nodes, &layout, plan.chosen);
        let (lo, hi) = nodes.iter().fold((f32::MAX, f32::MIN), |(lo, hi), n| {
            (lo.min(n.value), hi.max(n.value))
        });
        let max_visits = nodes.iter().map(|n| n.visits).max().unwrap_or(1).max(1);
        let radius = |n: &NodeSummary| 3.0 + 9.0 * (n.visits as f32 / max_visits as f32).sqrt();
        let painter = ui.painter_at(rect);
        let text_colour = ui.visuals().text_color();

        // Edges first, so nodes sit on top; each labelled with the token that leads to the child.
        for (i, n) in nodes.iter().enumerate() {
            let Some(p) = parent_index(nodes, n) else {
                continue;
            };
            let on_path = chosen.contains(&i) && chosen.contains(&p);
            let stroke = if on_path {
                Stroke::new(3.0, Color32::from_rgb(90, 170, 255))
            } else {
                Stroke::new(1.0, ui.visuals().weak_text_color())
            };
            let (a, b) = (layout.pos[p], layout.pos[i]);
            painter.line_segment([a, b], stroke);
            if let Some(t) = n.token {
                painter.text(
                    a + (b - a) * 0.6,
                    egui::Align2::LEFT_CENTER,
                    view.token_text(t),
                    FontId::proportional(10.0),
                    text_colour,
                );
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            let centre = layout.pos[i];
            let r = radius(n);
            let hit = Rect::from_center_size(centre, Vec2::splat(2.0 * r.max(6.0)));
            let response = ui
                .interact(hit, ui.scope_id().with(("tree_node", n.id)), Sense::click())
                .on_hover_text(hover_text(view, n, layout.depth[i]));
            response.widget_info(|| {
                WidgetInfo::labeled(egui::Role::Button, true, format!("node {}", n.id))
            });
            if response.clicked() {
                self.selected = Some(n.id);
            }
            painter.circle_filled(centre, r, value_colour(n.value, lo, hi));
            let ring = if self.selected == Some(n.id) {
                Stroke::new(2.5, text_colour)
            } else if chosen.contains(&i) {
                Stroke::new(2.0, Color32::from_rgb(90, 170, 255))
            } else {
                Stroke::NONE
            };
            painter.circle_stroke(centre, r + 1.5, ring);
        }
        self.details_ui(ui, view, plan, &layout);
    }

    fn details_ui(&self, ui: &mut egui::Ui, view: &TraceView, plan: PlanRef<'_>, layout: &Layout) {
        let nodes = plan.nodes;
        let Some(i) = self
            .selected
            .and_then(|s| nodes.iter().position(|n| n.id == s))
        else {
            ui.label(format!(
                "Root value {:.3}, chosen token {:?}. Click a node for its details.",
                plan.value,
                view.token_text(plan.chosen)
            ));
            return;
        };
        let n = &nodes[i];
        // The tokens from the root down to this node.
        let mut path = Vec::new();
        let mut at = Some(i);
        while let Some(k) = at {
            if let Some(t) = nodes[k].token {
                path.push(view.token_text(t));
            }
            at = parent_index(nodes, &nodes[k]);
        }
        path.reverse();
        ui.label(format!(
            "Node {}: depth {}, visits {}, Q {:.3}, prior {:.3}, {} children",
            n.id,
            layout.depth[i],
            n.visits,
            n.value,
            n.prior,
            layout.children[i].len()
        ));
        ui.label(format!("Path: {}", path.join(" | ")));
    }
}

fn hover_text(view: &TraceView, n: &NodeSummary, depth: usize) -> String {
    let token = n.token.map_or("(root)".into(), |t| view.token_text(t));
    format!(
        "node {} {token}\ndepth {depth}\nprior {:.3}\nQ {:.3}\nvisits {}",
        n.id, n.prior, n.value, n.visits
    )
}

fn parent_index(nodes: &[NodeSummary], n: &NodeSummary) -> Option<usize> {
    n.parent.and_then(|p| nodes.iter().position(|m| m.id == p))
}

/// Leaves get equal slots left to right in depth-first order; a parent sits over the middle of
/// its children; depth goes down.
fn layout(nodes: &[NodeSummary], rect: Rect) -> Layout {
    let n = nodes.len();
    let mut children = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        match parent_index(nodes, node) {
            Some(p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    // Most visited child first, so the heavy branch is on the left.
    for c in &mut children {
        c.sort_by_key(|&k| std::cmp::Reverse(nodes[k].visits));
    }
    let mut depth = vec![0; n];
    let mut x = vec![0.0f32; n];
    let mut next_leaf = 0.0f32;
    fn place(
        i: usize,
        d: usize,
        children: &[Vec<usize>],
        depth: &mut [usize],
        x: &mut [f32],
        next_leaf: &mut f32,
    ) {
        depth[i] = d;
        if children[i].is_empty() {
            x[i] = *next_leaf;
            *next_leaf += 1.0;
        } else {
            for &c in &children[i] {
                place(c, d + 1, children, depth, x, next_leaf);
            }
            let (first, last) = (children[i][0], *children[i].last().unwrap());
            x[i] = (x[first] + x[last]) / 2.0;
        }
    }
    for &r in &roots {
        place(r, 0, &children, &mut depth, &mut x, &mut next_leaf);
    }
    let leaves = next_leaf.max(1.0);
    let levels = depth.iter().copied().max().unwrap_or(0).max(1) as f32;
    let pos = (0..n)
        .map(|i| {
            let fx = if leaves > 1.0 {
                x[i] / (leaves - 1.0)
            } else {
                0.5
            };
            pos2(
                rect.left() + fx * rect.width(),
                rect.top() + depth[i] as f32 / levels * rect.height(),
            )
        })
        .collect();
    Layout {
        pos,
        depth,
        children,
    }
}

/// The chosen path, as node indices: the root, its child for the chosen token, then the most
/// visited child at each level.
fn chosen_path(nodes: &[NodeSummary], layout: &Layout, chosen: u32) -> Vec<usize> {
    let Some(root) = nodes.iter().position(|n| n.parent.is_none()) else {
        return Vec::new();
    };
    let mut path = vec![root];
    let mut at = layout.children[root]
        .iter()
        .copied()
        .find(|&c| nodes[c].token == Some(chosen));
    while let Some(i) = at {
        path.push(i);
        at = layout.children[i].first().copied();
    }
    path
}
