//! crsm-viewer as a library, so the panels can be tested without a window: the trace view the
//! panels read, the panels, replay and live sources, and the app that lays them out.

pub mod app;
pub mod frame_times;
pub mod live;
pub mod panels;
pub mod player;
pub mod view;

pub use app::{Panels, ViewerApp};
pub use view::TraceView;
