//! The deliberation trace: what generation and the planner did, one JSON event per line
//! (`docs/TRACE.md` is the schema). The planner writes it; `crsm-viewer` and the evidence study
//! read it. It imports nothing from the crate but `error`, so a reader of traces never pulls in
//! backends or the model.

mod events;
mod reader;
mod writer;

pub use events::{Header, NodeSummary, RootChoice, SCHEMA, TraceEvent, VERSION};
pub use reader::{BadLine, Trace, read_trace, read_trace_file};
pub use writer::TraceWriter;
