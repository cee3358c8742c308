//! AdamW against `torch.optim.AdamW(fused=True)`: both update paths (the fused host loop on
//! flex's buffers and, in place, on libtorch's CPU buffers; tensor operations elsewhere), on
//! every backend compiled in, with transformers' decay groups.
//!
//! Reference, from torch 2.9.0:
//! ```python
//! w = Parameter(tensor([[1.,2.],[3.,4.],[5.,6.]])); b = Parameter(tensor([0.5,-0.5]))
//! opt = AdamW([{"params":[w],"weight_decay":0.01},{"params":[b],"weight_decay":0.0}],
//!             lr=0.1, eps=1e-8, fused=True)
//! for step in range(3):
//!     w.grad = tensor([[0.1,-0.2],[0.3,0.4],[-0.5,0.6]]) * (step+1)
//!     b.grad = tensor([1.0,-2.0]) * (step+1); opt.step()
//! ```

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use ft_trainer::{AdamW, AdamWConfig, CheckpointProblem, Clipping, TrainerError};

const TORCH_WEIGHT: [f32; 6] = [
    0.704_981_15,
    2.286_028,
    2.698_987,
    3.695_99,
    5.277_036,
    5.689_996_7,
];
const TORCH_BIAS: [f32; 2] = [0.207_681_7, -0.207_681_7];

fn linear(device: &Device) -> Linear {
    Linear {
        weight: Param::from_data(
            TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]),
            device,
        ),
        bias: Some(Param::from_data(
            TensorData::new(vec![0.5f32, -0.5], [2]),
            device,
        )),
    }
}

fn run(mut optimizer: AdamW, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let mut model = linear(device);
    for step in 1..=3 {
        let mut grads = GradientsParams::new();
        let scale = step as f32;
        let gw: Vec<f32> = [0.1f32, -0.2, 0.3, 0.4, -0.5, 0.6]
            .iter()
            .map(|g| g * scale)
            .collect();
        grads.register(
            model.weight.id,
            Tensor::<2>::from_data(TensorData::new(gw, [3, 2]), device),
        );
        let bias_id = model.bias.as_ref().unwrap().id;
        let gb = vec![1.0f32 * scale, -2.0 * scale];
        grads.register(
            bias_id,
            Tensor::<1>::from_data(TensorData::new(gb, [2]), device),
        );
        model = optimizer.step(model, grads, 0.1, 1.0);
    }
    let read = |t: Tensor<2>| t.into_data().try_into_vec_as::<f32>().unwrap();
    let weight = read(model.weight.val());
    let bias = model
        .bias
        .unwrap()
        .val()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    let _ = model.weight.val().num_params();
    (weight, bias)
}

/// PyTorch's AdamW defaults with `weight_decay`, as every test here uses them.
fn adamw_config(weight_decay: f64) -> AdamWConfig {
    AdamWConfig {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay,
    }
}

fn assert_close(ours: &[f32], torch: &[f32], what: &str) {
    assert_eq!(
        ours.len(),
        torch.len(),
        "{what}: {ours:?} vs torch {torch:?}"
    );
    for (a, b) in ours.iter().zip(torch) {
        assert!((a - b).abs() < 2e-6, "{what}: {ours:?} vs torch {torch:?}");
    }
}

#[test]
fn both_update_paths_match_torch_fused_adamw() {
    let config = adamw_config(0.01);
    for (backend, device) in test_support::devices!() {
        for (path, optimizer) in [
            ("tensor operations", AdamW::new(config)),
            ("the device's own path", AdamW::for_device(config, &device)),
        ] {
            let (weight, bias) = run(optimizer, &device);
            // The bias is in the no-decay group, as transformers puts it.
            let name = format!("{path} on {backend}");
            assert_close(&weight, &TORCH_WEIGHT, &name);
            assert_close(&bias, &TORCH_BIAS, &name);
        }
    }
}

#[test]
fn the_state_survives_a_save_and_load() {
    let config = adamw_config(0.01);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let mut optimizer = AdamW::for_device(config, &device);
    let model = linear(&device);
    let mut grads = GradientsParams::new();
    let grad = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2., 3., 4., 5., 6.], [3, 2]),
        &device,
    );
    grads.register(model.weight.id, grad);
    let model = optimizer.step(model, grads, 0.1, 1.0);
    let path = dir.path().join("optimizer.safetensors");
    optimizer.save(&path).unwrap();
    let mut reloaded = AdamW::new(config);
    reloaded.load(&path, &model).unwrap();
    assert_eq!(reloaded.steps(), 1);
    let (exp_avg, exp_avg_sq) = reloaded
        .moments("weight")
        .unwrap()
        .expect("weight's moments");
    // One step from zero: m = (1 − β1)·g, v = (1 − β2)·g².
    let g = [1.0f32, 2., 3., 4., 5., 6.];
    assert_close(&exp_avg, &g.map(|g| 0.1 * g), "exp_avg");
    assert_close(&exp_avg_sq, &g.map(|g| 0.001 * g * g), "exp_avg_sq");
    assert_eq!(
        reloaded.moments("weight").unwrap(),
        optimizer.moments("weight").unwrap()
    );
    assert_eq!(
        reloaded.moments("bias").unwrap(),
        None,
        "the bias had no gradient"
    );

    std::fs::write(&path, b"not safetensors").unwrap();
    assert!(reloaded.load(&path, &model).is_err());
}

#[test]
fn moments_that_do_not_fit_the_model_are_refused_by_name() {
    let config = adamw_config(0.0);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let mut optimizer = AdamW::for_device(config, &device);
    let model = linear(&device);
    let mut grads = GradientsParams::new();
    grads.register(model.weight.id, Tensor::<2>::ones([3, 2], &device));
    let _ = optimizer.step(model, grads, 0.1, 1.0);
    let path = dir.path().join("optimizer.safetensors");
    optimizer.save(&path).unwrap();

    let narrower = Linear {
        weight: Param::from_data(TensorData::new(vec![0.0f32; 4], [2, 2]), &device),
        bias: None,
    };
    let error = AdamW::new(config).load(&path, &narrower).unwrap_err();
    assert_eq!(
        problem(&error),
        Some(&CheckpointProblem::MomentSize {
            kind: "exp_avg",
            name: "weight".into(),
            found: 6,
            expected: 4
        }),
        "{error}"
    );

    // Under a tuple, the parameters' paths are `0.weight`, `1.weight`: none is `weight`.
    let linear = || burn::nn::LinearConfig::new(3, 2).init(&device);
    let renamed = (linear(), linear());
    let error = AdamW::new(config).load(&path, &renamed).unwrap_err();
    assert!(
        matches!(
            problem(&error),
            Some(CheckpointProblem::UnknownParameter { name }) if name == "weight"
        ),
        "{error}"
    );
}

/// The problem our own checks found in a checkpoint, under the error that names its file.
fn problem(error: &TrainerError) -> Option<&CheckpointProblem> {
    std::error::Error::source(error)?.downcast_ref()
}

/// Deterministic gradients for every parameter of `model` at `step` but the one at `skip`,
/// so that two models built alike get the same ones.
fn gradients<M: Module>(model: &M, step: usize, skip: Option<&str>) -> GradientsParams {
    struct Fill<'a> {
        grads: GradientsParams,
        step: usize,
        index: usize,
        path: Vec<String>,
        skip: Option<&'a str>,
    }
    impl burn::module::ModuleVisitor for Fill<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let index = self.index;
            self.index += 1;
            if self.skip == Some(self.path.join(".").as_str()) {
                return;
            }
            let value = param.val();
            let n = value.shape().num_elements();
            let values: Vec<f32> = (0..n)
                .map(|i| ((i * 7 + index * 13 + self.step * 31) as f32 * 0.37).sin() * 0.05)
                .collect();
            let grad = Tensor::<1>::from_data(TensorData::new(values, [n]), &value.device())
                .reshape::<D, _>(value.shape());
            self.grads.register(param.id, grad);
        }
    }
    let mut fill = Fill {
        grads: GradientsParams::new(),
        step,
        index: 0,
        path: Vec::new(),
        skip,
    };
    model.visit(&mut fill);
    assert!(
        skip.is_none() || fill.grads.len() + 1 == fill.index,
        "{skip:?} skipped"
    );
    fill.grads
}

/// A parameter of the no-decay group that the third step leaves without a gradient, as a
/// frozen or unused one.
const SKIPPED: &str = "bert.embeddings.layer_norm.gamma";

/// Five steps of a tiny BERT with `optimizer`, the third without [`SKIPPED`].
fn train_tiny_bert(mut optimizer: AdamW, device: &Device) -> (Vec<Vec<f32>>, AdamW) {
    use ft_bert::prelude::*;
    let config = crate::common::tiny_config();
    let mut model = ft_bert::BertForSequenceClassification::from_config(&config, 7, device)
        .expect("the tiny config is valid");
    for step in 1..=5 {
        let grads = gradients(&model, step, (step == 3).then_some(SKIPPED));
        model = optimizer.step(model, grads, 1e-3, 0.8);
    }
    (crate::common::weights(&model), optimizer)
}

#[test]
fn flat_tensor_operations_match_the_fused_host_loop() {
    let config = adamw_config(0.01);
    let (reference, host) =
        train_tiny_bert(AdamW::for_device(config, &Device::flex()), &Device::flex());
    for (backend, device) in test_support::devices!() {
        let (weights, flat) = train_tiny_bert(AdamW::new(config), &device);
        assert_eq!(weights.len(), reference.len());
        let worst = weights
            .iter()
            .flatten()
            .zip(reference.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-6,
            "{backend}: the flat update is {worst} from the host loop's"
        );
        for name in [
            SKIPPED,
            "classifier.weight",
            "bert.encoder.layer.1.output.layer_norm.gamma",
        ] {
            let (m, v) = flat.moments(name).unwrap().expect(name);
            let (m_ref, v_ref) = host.moments(name).unwrap().expect(name);
            assert_close(&m, &m_ref, &format!("{backend}: exp_avg of {name}"));
            assert_close(&v, &v_ref, &format!("{backend}: exp_avg_sq of {name}"));
        }
    }
}

/// A checkpoint's moments, loaded into a fresh device-path optimizer, continue the flat
/// groups where they were: two steps, a save and a load, then a third step, equal the same
/// three steps without the break.
#[test]
fn flat_moments_resume_from_a_saved_state() {
    use ft_bert::prelude::*;
    let config = adamw_config(0.01);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optimizer.safetensors");
    let build = || {
        ft_bert::BertForSequenceClassification::from_config(
            &crate::common::tiny_config(),
            7,
            &device,
        )
        .unwrap()
    };
    let (mut straight, mut broken) = (build(), build());
    let mut uninterrupted = AdamW::new(config);
    let mut before_save = AdamW::new(config);
    for step in 1..=2 {
        let grads = gradients(&straight, step, None);
        straight = uninterrupted.step(straight, grads, 1e-3, 1.0);
        let grads = gradients(&broken, step, None);
        broken = before_save.step(broken, grads, 1e-3, 1.0);
    }
    before_save.save(&path).unwrap();
    let mut resumed = AdamW::new(config);
    resumed.load(&path, &broken).unwrap();
    assert_eq!(resumed.steps(), 2);
    let grads = gradients(&straight, 3, None);
    straight = uninterrupted.step(straight, grads, 1e-3, 1.0);
    let grads = gradients(&broken, 3, None);
    broken = resumed.step(broken, grads, 1e-3, 1.0);
    assert_eq!(
        crate::common::weights(&broken),
        crate::common::weights(&straight)
    );
    assert_eq!(
        resumed.moments("classifier.weight").unwrap(),
        uninterrupted.moments("classifier.weight").unwrap()
    );
}

/// `step_clipped` on every backend: the clipping coefficient it computes on the device gives
/// the update `step` gives with the host's coefficient, and a step whose loss or gradient is
/// not finite leaves every weight and moment as it was, bit for bit, until it is retracted.
#[test]
fn a_clipped_step_applies_only_when_everything_is_finite() {
    use ft_bert::BertForSequenceClassification;
    use ft_bert::prelude::*;
    let config = adamw_config(0.01);
    for (backend, device) in test_support::devices!() {
        let build = || {
            BertForSequenceClassification::from_config(&crate::common::tiny_config(), 7, &device)
                .unwrap()
        };
        let clipping = |loss: f32| Clipping {
            max_grad_norm: 0.1,
            unscale: 2.0,
            must_be_finite: Tensor::from_data(TensorData::new(vec![loss], [1]), &device),
        };
        let (mut expected, mut reference) = (build(), AdamW::new(config));
        let (mut model, mut optimizer) = (build(), AdamW::new(config));
        for step in 1..=2 {
            let grads = gradients(&expected, step, None);
            let host_norm = norm_on_the_host(&expected, &grads);
            let per_parameter = AdamW::grad_norm(&expected, &grads).unwrap();
            let per_parameter = per_parameter.into_scalar::<f64>();
            assert!(
                (per_parameter - host_norm).abs() < 1e-5 * host_norm,
                "{backend}: grad_norm {per_parameter}, {host_norm} on the host"
            );
            let scale = clipping(0.5).host_scale(host_norm);
            assert!(
                scale < 0.5,
                "{backend}: the gradients are clipped ({scale})"
            );
            expected = reference.step(expected, grads, 1e-3, scale);
            let grads = gradients(&model, step, None);
            let (next, norm) = optimizer.step_clipped(model, grads, 1e-3, clipping(0.5));
            let ours = norm.unwrap().into_scalar::<f64>();
            assert!(
                (ours - host_norm).abs() < 1e-5 * host_norm,
                "{backend}: step {step}: the norm {ours} on the device, {host_norm} on the host"
            );
            model = next;
        }
        let (ours, theirs) = (
            crate::common::weights(&model),
            crate::common::weights(&expected),
        );
        let worst = ours
            .iter()
            .flatten()
            .zip(theirs.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-6,
            "{backend}: clipped on the device, {worst} from the host's clipping"
        );

        let moments = |optimizer: &AdamW| optimizer.moments("classifier.weight").unwrap();
        let before = (crate::common::weights(&model), moments(&optimizer));
        let mut nan_gradient = gradients(&model, 3, None);
        let id = model.classifier.weight.id;
        nan_gradient.register(
            id,
            model.classifier.weight.val().inner().mul_scalar(f32::NAN),
        );
        let cases = [
            (gradients(&model, 3, None), f32::NAN, "a NaN loss"),
            (nan_gradient, 0.5, "a NaN gradient"),
        ];
        for (grads, loss, what) in cases {
            let (next, _) = optimizer.step_clipped(model, grads, 1e-3, clipping(loss));
            model = next;
            let after = (crate::common::weights(&model), moments(&optimizer));
            let bits = |(weights, moments): &(Vec<Vec<f32>>, _)| {
                let weights: Vec<u32> = weights.iter().flatten().map(|w| w.to_bits()).collect();
                (weights, format!("{moments:?}"))
            };
            assert!(
                bits(&after) == bits(&before),
                "{backend}: {what} changed the weights"
            );
            assert_eq!(optimizer.steps(), 3, "{backend}: {what}");
            optimizer.retract_step();
            assert_eq!(optimizer.steps(), 2, "{backend}: {what}");
        }
    }
}

/// The gradients' global L2 norm, read to the host and summed in f64.
fn norm_on_the_host<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct SumOfSquares<'a>(&'a GradientsParams, f64);
    impl burn::module::ModuleVisitor for SumOfSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.0.get::<D>(param.id) {
                let values = grad.into_data().try_into_vec_as::<f32>().unwrap();
                self.1 += values.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>();
            }
        }
    }
    let mut sum = SumOfSquares(grads, 0.0);
    model.visit(&mut sum);
    sum.1.sqrt()
}
