//! The backbone against HF transformers' `MambaForCausalLM` (the fixture in
//! tests/fixtures/mamba-tiny, made by tests/fixtures/make_mamba_fixture.py; its README says what
//! each reference tensor is), on the cpu and on lavapipe: logits, hidden states, recurrent states,
//! greedy decoding, batching; then the CRSM additions (fusion, recursive depth), checkpoints and
//! the errors a bad checkpoint or config gives.

#[path = "support/scratch.rs"]
mod scratch;
use scratch::Scratch;

#[path = "kernels/common.rs"]
#[allow(dead_code)]
mod common;

use std::path::Path;

use common::{
    assert_close, check_gradients, lavapipe, lavapipe_with_binding_limits, perturbed_crsm_model,
};
use crsm::backend::BindingLimits;
use crsm::io::{self, HostTensor, TensorMap};
use crsm::model::{Backbone, CrsmConfig};
use crsm::{Device, Error, Tensor};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mamba-tiny");
/// f32 against HF's f32 (whose own float64 re-implementation agrees to 4.4e-6).
const LOGIT_TOL: f32 = 1e-4;
const STATE_TOL: f32 = 1e-5;

// ---- helpers ---------------------------------------------------------------------------------------

/// reference.safetensors (crsm::io loads its int32 ids exactly as f32).
struct Reference(TensorMap);

impl Reference {
    fn load() -> Self {
        Reference(
            io::load_safetensors_file(&Path::new(FIXTURE).join("reference.safetensors")).unwrap(),
        )
    }
    fn f32(&self, name: &str) -> &[f32] {
        &self.0[name].data
    }
    fn shape(&self, name: &str) -> &[usize] {
        &self.0[name].shape
    }
    fn ids(&self, name: &str) -> Vec<u32> {
        self.f32(name).iter().map(|&v| v as u32).collect()
    }
}

fn fixture(device: &Device) -> Backbone {
    Backbone::load(Path::new(FIXTURE), device).unwrap()
}

fn ids(values: &[u32], shape: &[usize], device: &Device) -> Tensor {
    Tensor::from_u32(values.to_vec(), shape, device).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(row: &[f32]) -> u32 {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0 as u32
}

/// A fresh directory for this test, removed at its end.
fn temp_dir(name: &str) -> Scratch {
    Scratch::new("model-test", name)
}

/// Both devices the tests run on: the cpu always, lavapipe when present (required under CI).
fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    d.extend(lavapipe());
    d
}

// ---- against HF transformers -----------------------------------------------------------------------

fn logits_and_hidden_states_match_hf(device: &Device) {
    let r = Reference::load();
    let model = fixture(device);
    let prompt = ids(&r.ids("prompt_ids"), &[1, 11], device);
    let _off = crsm::no_grad();
    let logits = model.forward(&prompt).unwrap();
    assert_eq!(logits.shape(), [1, 11, 61]);
    let got = logits.to_vec_f32().unwrap();
    println!(
        "{}: logits max |diff| vs HF {:.2e}",
        device.name(),
        max_abs_diff(&got, r.f32("logits"))
    );
    assert_close("logits vs HF", &got, r.f32("logits"), 0.0, LOGIT_TOL);
    // HF's hidden_states[i] is the residual stream after layer i (README "hidden_states semantics").
    let residuals = model.residuals(&prompt).unwrap();
    assert_eq!(residuals.len(), 3);
    for (i, h) in residuals.iter().enumerate() {
        assert_close(
            &format!("hidden_states.{i}"),
            &h.to_vec_f32().unwrap(),
            r.f32(&format!("hidden_states.{i}")),
            0.0,
            LOGIT_TOL,
        );
    }
}

#[test]
fn logits_and_hidden_states_match_hf_on_cpu() {
    logits_and_hidden_states_match_hf(&Device::Cpu);
}

#[test]
fn logits_and_hidden_states_match_hf_on_lavapipe() {
    let Some(gpu) = lavapipe() else { return };
    logits_and_hidden_states_match_hf(&gpu);
}

/// Prefill the prompt, then 15 steps, each taking the argmax of the previous logits: the same 16
/// tokens as HF's `generate(do_sample=False)` (whose smallest top-1/top-2 gap is 0.09, far above
/// any f32 difference, so an equal sequence is a fair demand).
fn greedy_continuation_matches_hf(device: &Device) {
    let r = Reference::load();
    let model = fixture(device);
    let _off = crsm::no_grad();
    let mut state = model.new_state(1).unwrap();
    let logits = model
        .prefill(&ids(&r.ids("prompt_ids"), &[1, 11], device), &mut state)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let mut next = argmax(&logits[10 * 61..]);
    let mut got = vec![next];
    while got.len() < 16 {
        let step = model.step(&ids(&[next], &[1], device), &mut state).unwrap();
        assert_eq!(step.shape(), [1, 61]);
        next = argmax(&step.to_vec_f32().unwrap());
        got.push(next);
    }
    assert_eq!(
        got,
        r.ids("greedy_ids"),
        "greedy continuation differs from HF's"
    );
    assert_eq!(state.position, 11 + 15);
}

#[test]
fn greedy_continuation_matches_hf_on_cpu() {
    greedy_continuation_matches_hf(&Device::Cpu);
}

#[test]
fn greedy_continuation_matches_hf_on_lavapipe() {
    let Some(gpu) = lavapipe() else { return };
    greedy_continuation_matches_hf(&gpu);
}

/// A binding limit under the fixture's [61, 24] embedding (5856 bytes) and over everything else
/// its forward binds, at lavapipe's own offset alignment.
const SPLIT_TABLE: BindingLimits = BindingLimits {
    max_binding_bytes: 4352,
    offset_alignment: 16,
};

/// Under a 4352-byte binding limit the fixture's embedding / tied lm_head weight [61, 24] (5856
/// bytes) no longer fits one binding, so the embedding gather runs per chunk of table rows and the
/// lm_head matmul per block of vocabulary columns, while every other buffer of the forward (the
/// largest, in_proj's output [1, 11, 96], is 4224 bytes) still fits: the logits still match HF's
/// and the cpu's, and greedy decoding still gives HF's tokens.
#[test]
fn logits_match_hf_and_cpu_with_the_embedding_and_lm_head_split_across_bindings() {
    let Some(ctx) = lavapipe_with_binding_limits(SPLIT_TABLE) else {
        return;
    };
    let table_chunks = ctx.row_chunks("embedding", 61, &[24 * 4]).unwrap();
    assert!(
        table_chunks.len() > 1,
        "the table must split: {table_chunks:?}"
    );
    let gpu = Device::Wgpu(ctx);
    logits_and_hidden_states_match_hf(&gpu);
    greedy_continuation_matches_hf(&gpu);
    let r = Reference::load();
    let _off = crsm::no_grad();
    let logits = |device: &Device| {
        fixture(device)
            .forward(&ids(&r.ids("prompt_ids"), &[1, 11], device))
            .unwrap()
            .to_vec_f32()
            .unwrap()
    };
    assert_close(
        "split lavapipe logits vs cpu",
        &logits(&gpu),
        &logits(&Device::Cpu),
        0.0,
        LOGIT_TOL,
    );
}

/// Training under the same limit: the loss's gradient for every parameter matches the cpu's, with
/// the embedding's scatter-add, both lm_head products (dW along the vocabulary, dX summed over
/// vocabulary blocks) and the tied weight's sum of the two running in chunks.
#[test]
fn loss_gradients_match_cpu_with_the_embedding_and_lm_head_split_across_bindings() {
    let Some(ctx) = lavapipe_with_binding_limits(SPLIT_TABLE) else {
        return;
    };
    let gpu = Device::Wgpu(ctx);
    let prompt = Reference::load().ids("prompt_ids");
    let grads = |device: &Device| {
        let model = fixture(device);
        let x = ids(&prompt[..10], &[1, 10], device);
        let targets = ids(&prompt[1..], &[10], device);
        let logits = model.forward(&x).unwrap().reshape(&[10, 61]).unwrap();
        let loss = crsm::ops::cross_entropy(&logits, &targets, None).unwrap();
        let g = loss.backward().unwrap();
        model
            .named_parameters()
            .into_iter()
            .map(|(name, p)| (name, g.get(p).unwrap().to_vec_f32().unwrap()))
            .collect::<Vec<_>>()
    };
    for ((name, got), (_, want)) in grads(&gpu).iter().zip(grads(&Device::Cpu).iter()) {
        println!("{name}: max |diff| {:.2e}", max_abs_diff(got, want));
        assert_close(&format!("d loss / d {name}"), got, want, 1e-3, 1e-5);
    }
}

/// At lavapipe's real limits (128 MiB a binding): a one-layer model with mamba-130m's width and
/// vocabulary, whose [50280, 768] embedding / tied lm_head (147 MiB) takes two chunks, gives the
/// cpu's logits for a short prompt (a sum of 768 products per logit, hence LOGIT_TOL's 1e-4).
#[test]
fn a_mamba_130m_vocabulary_runs_on_lavapipe_and_matches_the_cpu() {
    let Some(gpu) = lavapipe() else { return };
    let (v, d) = (50280, 768);
    if let Device::Wgpu(ctx) = &gpu {
        let chunks = ctx.row_chunks("embedding", v, &[d as u64 * 4]).unwrap();
        assert_eq!(chunks.len(), 2, "lavapipe's 128 MiB limit splits the table");
    }
    let _off = crsm::no_grad();
    let logits = |device: &Device| {
        let model = Backbone::init(CrsmConfig::new(v, d, 1), 7, device).unwrap();
        // Ids in both chunks (rows 0..43690 and 43690..50280 of 3072 bytes each).
        let prompt = ids(&[0, 49999, 50279, 25140], &[1, 4], device);
        model.forward(&prompt).unwrap().to_vec_f32().unwrap()
    };
    let (got, want) = (logits(&gpu), logits(&Device::Cpu));
    println!("max |diff| {:.2e}", max_abs_diff(&got, &want));
    assert_close("logits at vocab 50280", &got, &want, 0.0, LOGIT_TOL);
}

/// After prefilling the prompt, every layer's states equal HF's cache. HF's conv state is
/// [E, K], the last K pre-conv inputs, oldest first, *including* the newest; ours is [B, K-1, E]
/// without HF's oldest column, which HF's own update rolls out before reading
/// (`causal_conv1d_update`). So ours[0, j, e] = HF[e, j + 1] for j in 0..K-1.
fn states_after_prompt_match_hf(device: &Device) {
    let r = Reference::load();
    let model = fixture(device);
    let _off = crsm::no_grad();
    let mut state = model.new_state(1).unwrap();
    model
        .prefill(&ids(&r.ids("prompt_ids"), &[1, 11], device), &mut state)
        .unwrap();
    let (e, k, n) = (48, 3, 5);
    for (i, layer) in state.layers.iter().enumerate() {
        assert_eq!(layer.conv.shape(), [1, k - 1, e]);
        assert_eq!(layer.ssm.shape(), [1, e, n]);
        assert_eq!(r.shape(&format!("conv_state.{i}")), [e, k]);
        let hf = r.f32(&format!("conv_state.{i}"));
        let want: Vec<f32> = (0..k - 1)
            .flat_map(|j| (0..e).map(move |c| hf[c * k + j + 1]))
            .collect();
        assert_close(
            &format!("conv state {i}"),
            &layer.conv.to_vec_f32().unwrap(),
            &want,
            0.0,
            STATE_TOL,
        );
        let ssm = layer.ssm.to_vec_f32().unwrap();
        println!(
            "{}: layer {i} ssm state max |diff| vs HF {:.2e}",
            device.name(),
            max_abs_diff(&ssm, r.f32(&format!("ssm_state.{i}")))
        );
        assert_close(
            &format!("ssm state {i}"),
            &layer.ssm.to_vec_f32().unwrap(),
            r.f32(&format!("ssm_state.{i}")),
            0.0,
            STATE_TOL,
        );
    }
}

#[test]
fn states_after_prompt_match_hf_on_cpu() {
    states_after_prompt_match_hf(&Device::Cpu);
}

#[test]
fn states_after_prompt_match_hf_on_lavapipe() {
    let Some(gpu) = lavapipe() else { return };
    states_after_prompt_match_hf(&gpu);
}

/// The two prompts as one batch give HF's batch logits, and each row equals that prompt run
/// alone, through the parallel forward and through prefill + steps.
fn batch_rows_match_single_runs(device: &Device) {
    let r = Reference::load();
    let model = fixture(device);
    let _off = crsm::no_grad();
    let prompts = r.ids("batch_prompt_ids");
    let both = model
        .forward(&ids(&prompts, &[2, 7], device))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_close(
        "batch logits vs HF",
        &both,
        r.f32("batch_logits"),
        0.0,
        LOGIT_TOL,
    );
    // Prefill 4 tokens of both rows, then step the last 3 as a batch.
    let mut state = model.new_state(2).unwrap();
    let head: Vec<u32> = prompts.chunks(7).flat_map(|p| p[..4].to_vec()).collect();
    let pre = model
        .prefill(&ids(&head, &[2, 4], device), &mut state)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let mut stepped = [Vec::new(), Vec::new()];
    for t in 4..7 {
        let out = model
            .step(
                &ids(&[prompts[t], prompts[7 + t]], &[2], device),
                &mut state,
            )
            .unwrap()
            .to_vec_f32()
            .unwrap();
        for b in 0..2 {
            stepped[b].extend_from_slice(&out[b * 61..(b + 1) * 61]);
        }
    }
    for b in 0..2 {
        let alone = model
            .forward(&ids(&prompts[b * 7..(b + 1) * 7], &[1, 7], device))
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let row = &both[b * 7 * 61..(b + 1) * 7 * 61];
        assert_close(&format!("batch row {b} vs alone"), row, &alone, 0.0, 1e-5);
        let mut decoded = pre[b * 4 * 61..(b + 1) * 4 * 61].to_vec();
        decoded.extend_from_slice(&stepped[b]);
        assert_close(
            &format!("batch row {b}: prefill + steps vs alone"),
            &decoded,
            &alone,
            0.0,
            LOGIT_TOL,
        );
    }
}

#[test]
fn batch_rows_match_single_runs_on_cpu() {
    batch_rows_match_single_runs(&Device::Cpu);
}

#[test]
fn batch_rows_match_single_runs_on_lavapipe() {
    let Some(gpu) = lavapipe() else { return };
    batch_rows_match_single_runs(&gpu);
}

// ---- prefill / step agreement ------------------------------------------------------------------------

/// For every split point s, prefill(ids[..s]) then step(ids[s]), step(ids[s+1]), ... gives the
/// full forward's logits at every position (s = 0 is pure stepping from an empty state).
fn prefill_then_step_matches_forward(model: &Backbone, tokens: &[u32], what: &str) {
    let device = model.device();
    let v = model.config.vocab_size;
    let _off = crsm::no_grad();
    let full = model
        .forward(&ids(tokens, &[1, tokens.len()], &device))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    for split in [0, 1, 2, tokens.len() - 1] {
        let mut state = model.new_state(1).unwrap();
        let mut got = Vec::new();
        if split > 0 {
            got = model
                .prefill(&ids(&tokens[..split], &[1, split], &device), &mut state)
                .unwrap()
                .to_vec_f32()
                .unwrap();
        }
        for &t in &tokens[split..] {
            got.extend(
                model
                    .step(&ids(&[t], &[1], &device), &mut state)
                    .unwrap()
                    .to_vec_f32()
                    .unwrap(),
            );
        }
        assert_eq!(got.len(), tokens.len() * v);
        assert_close(
            &format!("{what}: prefill {split} then step vs forward"),
            &got,
            &full,
            0.0,
            LOGIT_TOL,
        );
        assert_eq!(state.position, tokens.len());
    }
}

#[test]
fn prefill_then_step_matches_forward_on_the_hf_fixture() {
    let r = Reference::load();
    for device in devices() {
        prefill_then_step_matches_forward(&fixture(&device), &r.ids("prompt_ids"), &device.name());
    }
}

/// A small model with every CRSM addition on (fusion over 2 layers x 3 passes, adapters) and HF's
/// optional biases, its identity-initialised adapters and even fusion perturbed so each matters.
fn crsm_config() -> CrsmConfig {
    let mut c = CrsmConfig::new(29, 16, 2);
    c.state_size = 4;
    c.conv_kernel = 4;
    c.use_bias = true;
    c.tie_word_embeddings = false;
    c.crsm_fusion = true;
    c.crsm_recurrent_depth = 3;
    c
}

#[test]
fn fusion_and_recursive_depth_keep_prefill_and_step_in_agreement() {
    let tokens: Vec<u32> = (0..9).map(|t| (t * 11 + 3) % 29).collect();
    for device in devices() {
        let model = perturbed_crsm_model(crsm_config(), &device);
        assert_eq!(
            model.new_state(1).unwrap().layers.len(),
            6,
            "one state per block application"
        );
        prefill_then_step_matches_forward(
            &model,
            &tokens,
            &format!("fusion + depth 3 on {}", device.name()),
        );
    }
}

#[test]
fn fusion_and_adapters_change_the_logits() {
    // A test of the test above: with fusion and adapters the model is not the plain stack.
    let model = perturbed_crsm_model(crsm_config(), &Device::Cpu);
    let mut plain = model.clone();
    plain.fusion = None;
    plain.adapters.clear();
    let x = ids(&[1, 2, 3], &[1, 3], &Device::Cpu);
    let _off = crsm::no_grad();
    let (a, b) = (
        model.forward(&x).unwrap().to_vec_f32().unwrap(),
        plain.forward(&x).unwrap().to_vec_f32().unwrap(),
    );
    let diff = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max);
    assert!(
        diff > 1e-2,
        "fusion and adapters made no difference (max |diff| {diff})"
    );
}

/// Finite differences through a whole tiny model with fusion, depth 2, adapters and biases, for
/// every parameter: the one physical block runs twice, so its weights get two contributions, and
/// the fusion logits and adapters get theirs through layer_mix and the elementwise affine maps.
/// At init dt is 1e-3..1e-1 and B, C are small, so the A_log and dt_bias gradients (1e-5..1e-4)
/// would pass whatever their sign: dt near 1, a larger x_proj (so B, C) and out_proj, and 8
/// tokens lift every parameter's gradient past `check_gradients`' floor (the smallest, dt_proj's,
/// to 3.4e-2).
#[test]
fn gradients_through_fusion_and_recursive_depth_match_finite_differences() {
    let mut c = CrsmConfig::new(5, 4, 1);
    c.state_size = 2;
    c.expand = 2;
    c.conv_kernel = 3;
    c.use_bias = true;
    c.crsm_fusion = true;
    c.crsm_recurrent_depth = 2;
    let cpu = &Device::Cpu;
    let mut model = perturbed_crsm_model(c, cpu);
    let b = &mut model.blocks[0];
    b.dt_bias = common::rand_tensor(7, &[8], 0.5, 1.5, cpu).as_variable();
    b.x_proj = common::rand_tensor(8, &[5, 8], -3.0, 3.0, cpu).as_variable();
    b.out_proj = common::rand_tensor(9, &[4, 8], -1.0, 1.0, cpu).as_variable();
    let tokens = ids(&[1, 4, 2, 3, 0, 4, 1, 2], &[1, 8], cpu);
    let names: Vec<String> = model
        .named_parameters()
        .iter()
        .enumerate()
        .map(|(k, (name, _))| format!("{k} {name}"))
        .collect();
    let inputs: Vec<Tensor> = model.parameters().into_iter().cloned().collect();
    let what = format!("tiny CRSM model (inputs: {})", names.join(", "));
    check_gradients(&what, &inputs, |xs| {
        let mut m = model.clone();
        for (p, x) in m.parameters_mut().into_iter().zip(xs) {
            *p = x.clone();
        }
        m.forward(&tokens).unwrap()
    });
}

// ---- state ---------------------------------------------------------------------------------------------

#[test]
fn snapshot_and_restore_replay_the_same_logits() {
    for device in devices() {
        let model = fixture(&device);
        let _off = crsm::no_grad();
        let mut state = model.new_state(1).unwrap();
        model
            .prefill(&ids(&[1, 17, 42], &[1, 3], &device), &mut state)
            .unwrap();
        let snap = state.snapshot().unwrap();
        let first = model
            .step(&ids(&[5], &[1], &device), &mut state)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        model.step(&ids(&[9], &[1], &device), &mut state).unwrap();
        state.restore(&snap).unwrap();
        assert_eq!(state.position, 3);
        let again = model
            .step(&ids(&[5], &[1], &device), &mut state)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        assert_eq!(
            first,
            again,
            "{}: restore did not bring back the snapshot",
            device.name()
        );
        let wrong = fixture(&device).new_state(2).unwrap();
        assert!(matches!(state.restore(&wrong), Err(Error::Shape { .. })));
    }
}

#[test]
fn a_state_of_the_wrong_batch_is_refused() {
    let model = fixture(&Device::Cpu);
    let mut state = model.new_state(2).unwrap();
    let err = model
        .step(&ids(&[1], &[1], &Device::Cpu), &mut state)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Backbone::step") && err.contains("batch 2") && err.contains("batch 1"),
        "{err}"
    );
    assert_eq!(state.position, 0);
}

// ---- checkpoints ---------------------------------------------------------------------------------------

fn assert_same_weights(a: &Backbone, b: &Backbone) {
    let (na, nb) = (a.named_parameters(), b.named_parameters());
    let names = |n: &[(String, &Tensor)]| n.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(names(&na), names(&nb));
    for ((name, x), (_, y)) in na.iter().zip(&nb) {
        assert_eq!(x.shape(), y.shape(), "{name}");
        let (x, y) = (x.to_vec_f32().unwrap(), y.to_vec_f32().unwrap());
        assert!(
            x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
            "{name} changed in the round trip"
        );
    }
}

#[test]
fn save_then_load_is_bit_identical() {
    // Untied, biased, fused, deep: every optional tensor exists.
    let model = perturbed_crsm_model(crsm_config(), &Device::Cpu);
    let dir = temp_dir("roundtrip-crsm");
    model.save(&dir).unwrap();
    let back = Backbone::load(&dir, &Device::Cpu).unwrap();
    assert_eq!(back.config, model.config);
    assert_same_weights(&model, &back);
    let names: Vec<String> = io::load_safetensors_file(&dir.join("model.safetensors"))
        .unwrap()
        .into_keys()
        .collect();
    for want in [
        "lm_head.weight",
        "crsm.fusion.logits",
        "crsm.adapters.2.scale",
        "backbone.layers.1.mixer.in_proj.bias",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from the saved checkpoint"
        );
    }
    // The HF fixture (tied) through save and load, on the cpu and from lavapipe.
    for device in devices() {
        let hf = fixture(&device);
        let dir = temp_dir("roundtrip-hf");
        hf.save(&dir).unwrap();
        let saved = io::load_safetensors_file(&dir.join("model.safetensors")).unwrap();
        assert!(
            !saved.contains_key("lm_head.weight"),
            "a tied model saved lm_head.weight"
        );
        assert_eq!(
            saved["backbone.layers.0.mixer.conv1d.weight"].shape,
            [48, 1, 3],
            "conv weight not in HF layout"
        );
        let back = Backbone::load(&dir, &Device::Cpu).unwrap();
        assert_eq!(back.config, hf.config);
        assert_same_weights(&hf, &back);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(json["bos_token_id"], 1, "accepted HF keys are written back");
    }
}

#[test]
fn parameter_names_and_parameters_mut_agree() {
    let mut model = perturbed_crsm_model(crsm_config(), &Device::Cpu);
    let named: Vec<_> = model
        .named_parameters()
        .iter()
        .map(|(_, t)| t.id())
        .collect();
    let mutable: Vec<_> = model.parameters_mut().iter().map(|t| t.id()).collect();
    assert_eq!(named, mutable);
}

/// Writes a checkpoint dir from the fixture's config text and a (modified) tensor map.
fn write_checkpoint(name: &str, config: &str, map: &TensorMap) -> Scratch {
    let dir = temp_dir(name);
    std::fs::write(dir.join("config.json"), config).unwrap();
    io::save_safetensors(&dir.join("model.safetensors"), map).unwrap();
    dir
}

fn fixture_parts() -> (String, TensorMap) {
    let config = std::fs::read_to_string(Path::new(FIXTURE).join("config.json")).unwrap();
    (
        config,
        io::load_safetensors_file(&Path::new(FIXTURE).join("model.safetensors")).unwrap(),
    )
}

fn load_err(dir: &Path) -> (String, String) {
    match Backbone::load(dir, &Device::Cpu) {
        Err(Error::Checkpoint { tensor, detail, .. }) => (tensor, detail),
        Err(e) => panic!("expected Error::Checkpoint, got {e}"),
        Ok(_) => panic!("a bad checkpoint loaded"),
    }
}

#[test]
fn a_missing_tensor_is_named() {
    let (config, mut map) = fixture_parts();
    map.remove("backbone.layers.1.mixer.dt_proj.bias");
    let (tensor, detail) = load_err(&write_checkpoint("missing", &config, &map));
    assert_eq!(tensor, "backbone.layers.1.mixer.dt_proj.bias");
    assert!(
        detail.contains("missing") && detail.contains("[48]"),
        "{detail}"
    );
}

#[test]
fn an_extra_tensor_is_named() {
    let (config, mut map) = fixture_parts();
    map.insert(
        "backbone.layers.3.norm.weight".into(),
        HostTensor {
            shape: vec![24],
            data: vec![1.0; 24],
        },
    );
    let (tensor, detail) = load_err(&write_checkpoint("extra", &config, &map));
    assert_eq!(tensor, "backbone.layers.3.norm.weight");
    assert!(detail.contains("unexpected"), "{detail}");
}

#[test]
fn a_wrong_shape_names_both_shapes() {
    let (config, mut map) = fixture_parts();
    map.insert(
        "backbone.layers.0.mixer.A_log".into(),
        HostTensor {
            shape: vec![48, 4],
            data: vec![0.0; 192],
        },
    );
    let (tensor, detail) = load_err(&write_checkpoint("shape", &config, &map));
    assert_eq!(tensor, "backbone.layers.0.mixer.A_log");
    assert!(
        detail.contains("[48, 4]") && detail.contains("[48, 5]"),
        "{detail}"
    );
}

#[test]
fn a_tied_head_that_differs_from_the_embeddings_is_refused() {
    let (config, mut map) = fixture_parts();
    let mut head = map["backbone.embeddings.weight"].data.clone();
    head[0] += 1.0;
    map.insert(
        "lm_head.weight".into(),
        HostTensor {
            shape: vec![61, 24],
            data: head,
        },
    );
    let (tensor, detail) = load_err(&write_checkpoint("tied-head", &config, &map));
    assert_eq!(tensor, "lm_head.weight");
    assert!(detail.contains("tie_word_embeddings"), "{detail}");
}

#[test]
fn the_old_embedding_name_loads_and_a_copy_of_the_tied_head_is_accepted() {
    let (config, mut map) = fixture_parts();
    let emb = map.remove("backbone.embeddings.weight").unwrap();
    map.insert(
        "lm_head.weight".into(),
        HostTensor {
            shape: emb.shape.clone(),
            data: emb.data.clone(),
        },
    );
    map.insert("backbone.embedding.weight".into(), emb);
    let model = Backbone::load(&write_checkpoint("old-name", &config, &map), &Device::Cpu).unwrap();
    assert_same_weights(&model, &fixture(&Device::Cpu));
}

fn config_err(text: &str) -> (String, String) {
    match CrsmConfig::from_json_str(text, "test/config.json") {
        Err(Error::Config {
            file,
            field,
            detail,
        }) => {
            assert_eq!(file, "test/config.json");
            (field, detail)
        }
        Err(e) => panic!("expected Error::Config, got {e}"),
        Ok(_) => panic!("a bad config parsed"),
    }
}

#[test]
fn an_unknown_config_key_is_named() {
    let (config, map) = fixture_parts();
    let bad = config.replacen('{', "{\n  \"hiden_size\": 24,", 1);
    let (field, detail) = config_err(&bad);
    assert_eq!(field, "hiden_size");
    assert!(detail.contains("unknown key"), "{detail}");
    // Through Backbone::load too.
    match Backbone::load(&write_checkpoint("bad-config", &bad, &map), &Device::Cpu) {
        Err(Error::Config { field, .. }) => assert_eq!(field, "hiden_size"),
        other => panic!("expected Error::Config, got {:?}", other.err()),
    }
}

#[test]
fn config_values_are_checked_by_key() {
    let base = r#"{"vocab_size": 10, "hidden_size": 40, "num_hidden_layers": 2"#;
    let (field, detail) = config_err(&format!("{base}, \"state_size\": \"16\"}}"));
    assert_eq!(field, "state_size");
    assert!(detail.contains("integer"), "{detail}");
    assert_eq!(
        config_err(r#"{"vocab_size": 10, "num_hidden_layers": 2}"#).0,
        "hidden_size"
    );
    assert_eq!(
        config_err(&format!("{base}, \"hidden_act\": \"gelu\"}}")).0,
        "hidden_act"
    );
    assert_eq!(
        config_err(&format!("{base}, \"crsm_recurrent_depth\": 0}}")).0,
        "crsm_recurrent_depth"
    );
    assert_eq!(
        config_err(&format!("{base}, \"conv_kernel\": 1}}")).0,
        "conv_kernel"
    );
    // "auto" = ceil(40 / 16); HF defaults fill the rest; adapters default on with depth > 1.
    let c = CrsmConfig::from_json_str(
        &format!("{base}, \"time_step_rank\": \"auto\", \"crsm_recurrent_depth\": 2}}"),
        "x",
    )
    .unwrap();
    assert_eq!(
        (c.dt_rank(), c.d_inner(), c.state_size, c.conv_kernel),
        (3, 80, 16, 4)
    );
    assert!(
        c.depth_adapters()
            && !c.crsm_fusion
            && c.tie_word_embeddings
            && c.use_conv_bias
            && !c.use_bias
    );
}

#[test]
fn the_fixture_config_reads_as_hf_wrote_it() {
    let c = CrsmConfig::from_json_file(&Path::new(FIXTURE).join("config.json")).unwrap();
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.d_inner(),
            c.state_size,
            c.dt_rank(),
            c.conv_kernel
        ),
        (61, 24, 48, 5, 4, 3)
    );
    assert_eq!(c.applications(), 3);
    assert!(!c.depth_adapters() && !c.crsm_fusion);
    // Written back and read again: the same config.
    assert_eq!(
        CrsmConfig::from_json_str(&c.to_json_string().unwrap(), "again").unwrap(),
        c
    );
}

/// `prefill_last` is `prefill`'s last row, computed without the other rows' head.
#[test]
fn prefill_last_is_the_last_row_of_prefill() {
    let r = Reference::load();
    let tokens = r.ids("prompt_ids");
    for device in devices() {
        let model = fixture(&device);
        let v = model.config.vocab_size;
        let _off = crsm::no_grad();
        let prompt = ids(&tokens, &[1, tokens.len()], &device);
        let mut full_state = model.new_state(1).unwrap();
        let all = model
            .prefill(&prompt, &mut full_state)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let mut state = model.new_state(1).unwrap();
        let last = model.prefill_last(&prompt, &mut state).unwrap();
        assert_eq!(last.shape(), [1, v]);
        assert_close(
            &format!("{}: prefill_last", device.name()),
            &last.to_vec_f32().unwrap(),
            &all[(tokens.len() - 1) * v..],
            0.0,
            LOGIT_TOL,
        );
        assert_eq!(state.position, full_state.position);
    }
}

/// bf16 weights (`with_bf16_weights`) keep the logits of a prompt and the steps after it within
/// 1% of the f32 logits' scale (relative L2 error; measured 0.39% on this fixture), and the
/// inference copy is not a checkpoint.
#[test]
fn bf16_weights_keep_logits_near_f32() {
    let r = Reference::load();
    let tokens = r.ids("prompt_ids");
    let model = fixture(&Device::Cpu);
    let bf16 = model.with_bf16_weights().unwrap();
    let _off = crsm::no_grad();
    let run = |m: &Backbone| -> Vec<f32> {
        let mut state = m.new_state(1).unwrap();
        let n = tokens.len() - 4;
        let mut out = m
            .prefill_last(&ids(&tokens[..n], &[1, n], &Device::Cpu), &mut state)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        for &t in &tokens[n..] {
            out.extend(
                m.step(&ids(&[t], &[1], &Device::Cpu), &mut state)
                    .unwrap()
                    .to_vec_f32()
                    .unwrap(),
            );
        }
        out
    };
    let (want, got) = (run(&model), run(&bf16));
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let diff: Vec<f32> = got.iter().zip(&want).map(|(g, w)| g - w).collect();
    let rel = norm(&diff) / norm(&want);
    eprintln!("bf16 weights: relative L2 error of the logits {rel:.2e}");
    assert!(
        rel < 1e-2,
        "bf16 logits differ from f32 by {rel:.2e} (relative L2)"
    );
    assert!(
        rel > 0.0,
        "bf16 weights changed nothing: the bf16 path did not run"
    );
    let dir = temp_dir("bf16-save");
    let e = bf16.save(&dir).unwrap_err();
    assert!(e.to_string().contains("with_bf16_weights"), "{e}");
}

/// The fused step (`Backend::mamba_step`, taken under no_grad where the device has it) and the
/// step composed from ops (taken while recording) give the same logits and states, for a batch of
/// sequences at different points, with every CRSM addition on; and an in-place step never
/// changes a state someone else holds.
#[test]
fn the_fused_step_matches_the_composed_step_and_leaves_shared_states_alone() {
    let model = perturbed_crsm_model(crsm_config(), &Device::Cpu);
    let v = model.config.vocab_size as u32;
    let dev = Device::Cpu;
    let prompt: Vec<u32> = (0..15).map(|t| (t * 7 + 3) % v).collect();
    let mut fused = model.new_state(3).unwrap();
    {
        let _off = crsm::no_grad();
        model
            .prefill(&ids(&prompt, &[3, 5], &dev), &mut fused)
            .unwrap();
    }
    let mut composed = fused.snapshot().unwrap();
    let shared = fused.clone(); // the same handles
    let before: Vec<Vec<f32>> = shared
        .layers
        .iter()
        .map(|l| l.ssm.to_vec_f32().unwrap())
        .collect();
    for step in 0..4u32 {
        let tokens = ids(&[step % v, (step + 5) % v, (step + 9) % v], &[3], &dev);
        let got = {
            let _off = crsm::no_grad();
            model
                .step(&tokens, &mut fused)
                .unwrap()
                .to_vec_f32()
                .unwrap()
        };
        // Recording: the composed path (the fused kernel has no backward).
        let want = model
            .step(&tokens, &mut composed)
            .unwrap()
            .to_vec_f32()
            .unwrap();
        assert_close(
            &format!("step {step}: fused vs composed logits"),
            &got,
            &want,
            0.0,
            LOGIT_TOL,
        );
    }
    for (i, (f, c)) in fused.layers.iter().zip(&composed.layers).enumerate() {
        let (fs, cs) = (f.ssm.to_vec_f32().unwrap(), c.ssm.to_vec_f32().unwrap());
        assert_close(&format!("application {i}: ssm state"), &fs, &cs, 0.0, 1e-5);
        let (fc, cc) = (f.conv.to_vec_f32().unwrap(), c.conv.to_vec_f32().unwrap());
        assert_close(&format!("application {i}: conv state"), &fc, &cc, 0.0, 1e-6);
    }
    let after: Vec<Vec<f32>> = shared
        .layers
        .iter()
        .map(|l| l.ssm.to_vec_f32().unwrap())
        .collect();
    assert_eq!(before, after, "a step changed a state another handle holds");
    assert_ne!(
        after[0],
        fused.layers[0].ssm.to_vec_f32().unwrap(),
        "the fused steps did nothing"
    );
}
