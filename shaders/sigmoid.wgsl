// The logistic function, one definition for the kernels that gate with it (gru, scan, unary):
// `kernel!` joins this file after each of them (after, so a kernel's own line numbers in shader
// errors stay its file's).
fn sigmoid(v: f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }
