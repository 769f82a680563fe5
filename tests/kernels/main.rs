//! Kernel tests: every op's WGSL kernel against its cpu twin on lavapipe, and every backward
//! against finite differences. One test binary, so lavapipe is opened and shaders compiled once.

mod common;

mod elementwise;
