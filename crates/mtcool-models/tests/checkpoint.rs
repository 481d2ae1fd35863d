//! Checkpoints: round trips (parameters and running statistics), names, and the errors for
//! files that do not fit the model.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

use candle_core::{Device, Tensor};
use mtcool_models::checkpoint::{self, CheckpointError};
use mtcool_models::{
    LeNetMt, MultiTaskModel, PsiNet, PsiNetConfig, Sharing, SliceView, UNetConfig, UNetMt,
};

const SMALL: [usize; 5] = [4, 8, 16, 32, 64];

fn unet(sharing: Sharing, config: UNetConfig, seed: u64) -> UNetMt {
    UNetMt::new(&Device::Cpu, sharing, config.with_widths(&SMALL), seed).unwrap()
}

fn input(seed: u64) -> Tensor {
    let x = Tensor::arange(0f32, (2 * 3 * 32 * 32) as f32, &Device::Cpu)
        .unwrap()
        .reshape((2, 3, 32, 32))
        .unwrap();
    ((x * (0.37 + seed as f64)).unwrap().sin().unwrap() + 0.5).unwrap()
}

fn outputs(net: &impl MultiTaskModel, x: &Tensor) -> Vec<Vec<f32>> {
    net.forward_tasks(x, &SliceView::all())
        .unwrap()
        .iter()
        .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

/// A few SGD steps on squared outputs, so that parameters and running statistics leave their
/// initial values.
fn train_a_little(net: &impl MultiTaskModel, x: &Tensor) {
    for _ in 0..2 {
        let loss = net
            .forward_tasks(x, &SliceView::all())
            .unwrap()
            .iter()
            .map(|y| y.sqr().unwrap().mean_all().unwrap())
            .reduce(|a, b| (a + b).unwrap())
            .unwrap();
        let grads = loss.backward().unwrap();
        for v in net.all_params() {
            if let Some(g) = grads.get(&v) {
                v.set(&(v.as_tensor() - (g * 0.05).unwrap()).unwrap())
                    .unwrap();
            }
        }
    }
}

fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(tag).tempdir().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let dir = temp_dir("mtcool-ckpt");
    let x = input(1);
    for sharing in [Sharing::Partitioned, Sharing::Shared, Sharing::Independent] {
        let path = dir.path().join(format!("unet-{sharing}.safetensors"));
        let mut trained = unet(sharing, UNetConfig::seg_cls(3, 2), 1);
        train_a_little(&trained, &x);
        checkpoint::save(&trained, &path).unwrap();
        let mut fresh = unet(sharing, UNetConfig::seg_cls(3, 2), 2);
        trained.set_training(false);
        fresh.set_training(false);
        assert_ne!(outputs(&trained, &x), outputs(&fresh, &x));
        checkpoint::load(&fresh, &path).unwrap();
        // evaluation mode reads the running statistics: they came back too
        assert_eq!(outputs(&trained, &x), outputs(&fresh, &x), "{sharing}");
    }
    // Psi-Net and LeNet go through the same functions
    let path = dir.path().join("psinet.safetensors");
    let config = PsiNetConfig::all_tasks().with_widths(&SMALL);
    let mut a = PsiNet::new(&Device::Cpu, Sharing::Shared, config.clone(), 1).unwrap();
    train_a_little(&a, &x);
    checkpoint::save(&a, &path).unwrap();
    let mut b = PsiNet::new(&Device::Cpu, Sharing::Shared, config, 3).unwrap();
    checkpoint::load(&b, &path).unwrap();
    a.set_training(false);
    b.set_training(false);
    assert_eq!(outputs(&a, &x), outputs(&b, &x));
    let lenet = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 0).unwrap();
    let path = dir.path().join("lenet.safetensors");
    checkpoint::save(&lenet, &path).unwrap();
    checkpoint::load(&lenet, &path).unwrap();
    // only the final files remain: no temporary left behind
    assert_eq!(
        files_in(dir.path()),
        vec![
            "lenet.safetensors",
            "psinet.safetensors",
            "unet-independent.safetensors",
            "unet-partitioned.safetensors",
            "unet-shared.safetensors",
        ]
    );
}

#[test]
fn the_file_holds_parameters_and_buffers_under_their_module_names() {
    let dir = temp_dir("mtcool-ckpt-names");
    let path = dir.path().join("hrfav.safetensors");
    let net = unet(Sharing::Partitioned, UNetConfig::seg_seg(&[2, 3]), 0);
    checkpoint::save(&net, &path).unwrap();
    let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    let expected = net.vars().all_vars().len() + net.buffers().unwrap().all_vars().len();
    assert_eq!(tensors.len(), expected);
    for name in [
        "encoder.down1.conv1.task0.weight",
        "encoder.down1.bn1.task1.running_var",
        "encoder.bottom.conv2.task1.bias",
        "decoder.up2.upconv.task1.weight",
        "decoder.up2.bn2.task1.running_mean",
        "decoder.out.task0.bias",
    ] {
        assert!(tensors.contains_key(name), "{name} missing");
    }
    assert_eq!(
        tensors["encoder.down1.conv1.task0.weight"].dims(),
        &[2, 3, 3, 3]
    );
    // saving again replaces the file
    checkpoint::save(&net, &path).unwrap();
    assert_eq!(files_in(dir.path()), vec!["hrfav.safetensors"]);
}

#[test]
fn a_model_of_another_shape_is_refused_with_the_tensor_named() {
    let dir = temp_dir("mtcool-ckpt-shape");
    let path = dir.path().join("small.safetensors");
    let x = input(2);
    let net = unet(Sharing::Shared, UNetConfig::seg_seg(&[2, 3]), 0);
    checkpoint::save(&net, &path).unwrap();

    // other widths: same names, other shapes
    let wider = UNetMt::new(
        &Device::Cpu,
        Sharing::Shared,
        UNetConfig::seg_seg(&[2, 3]).with_widths(&[8, 8, 16, 32, 64]),
        0,
    )
    .unwrap();
    let before = outputs(&wider, &x);
    let err = checkpoint::load(&wider, &path).unwrap_err();
    assert!(matches!(err, CheckpointError::Shape { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(
            "`decoder.out.task0.weight` has shape [2, 4, 1, 1] in the file but [2, 8, 1, 1] in the model"),
        "{msg}"
    );
    assert!(
        msg.contains("small.safetensors") && !msg.contains('\n'),
        "{msg}"
    );
    // nothing was changed by the failed load
    assert_eq!(before, outputs(&wider, &x));

    // a model with one more task: the file lacks its decoder
    let more = unet(Sharing::Shared, UNetConfig::seg_seg(&[2, 3, 4]), 0);
    let msg = checkpoint::load(&more, &path).unwrap_err().to_string();
    assert!(
        msg.contains("decoder.") && msg.contains("is missing"),
        "{msg}"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    // a model with one task fewer: the file has a decoder the model lacks
    let fewer = unet(Sharing::Shared, UNetConfig::seg_seg(&[2]), 0);
    let msg = checkpoint::load(&fewer, &path).unwrap_err().to_string();
    assert!(
        msg.contains("decoder.") && msg.contains("does not exist in this model"),
        "{msg}"
    );
    // the same tensors but another class count: a shape error on the output convolution
    let classes = unet(Sharing::Shared, UNetConfig::seg_seg(&[2, 4]), 0);
    let msg = checkpoint::load(&classes, &path).unwrap_err().to_string();
    assert!(
        msg.contains("decoder.out.task1.") && msg.contains("[3"),
        "{msg}"
    );
}

#[test]
fn unreadable_files_give_one_line_errors() {
    let dir = temp_dir("mtcool-ckpt-bad");
    let net = unet(Sharing::Partitioned, UNetConfig::seg_cls(3, 2), 0);
    let missing = dir.path().join("nope.safetensors");
    let err = checkpoint::load(&net, &missing).unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope.safetensors"));

    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not safetensors").unwrap();
    let err = checkpoint::load(&net, &garbage).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err:?}");

    let good = dir.path().join("good.safetensors");
    checkpoint::save(&net, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = checkpoint::load(&net, &truncated).unwrap_err();
    assert!(matches!(err, CheckpointError::Format { .. }), "{err:?}");
    let e = err.to_string();
    assert!(
        !e.contains('\n') && e.contains("truncated.safetensors"),
        "{e}"
    );

    // saving into a folder that does not exist fails cleanly
    let err = checkpoint::save(&net, &dir.path().join("no/such/dir/x.safetensors")).unwrap_err();
    assert!(err.to_string().contains("x.safetensors"), "{err}");
}

#[test]
fn metadata_travels_with_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 1).unwrap();
    let meta = [
        ("experiment".to_string(), "mnist".to_string()),
        ("seed".to_string(), "3".to_string()),
    ]
    .into();
    checkpoint::save_with_metadata(&a, &path, &meta).unwrap();
    assert_eq!(checkpoint::read_metadata(&path).unwrap(), meta);
    let b = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 2).unwrap();
    checkpoint::load(&b, &path).unwrap();
    let x = Tensor::zeros((2, 1, 28, 28), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(outputs(&a, &x), outputs(&b, &x));
    // without metadata: an empty map
    checkpoint::save(&a, &path).unwrap();
    assert!(checkpoint::read_metadata(&path).unwrap().is_empty());
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let err = checkpoint::read_metadata(&path).unwrap_err().to_string();
    assert!(err.contains("not a safetensors checkpoint"), "{err}");
}

/// Every tensor name of `net`: parameters and buffers.
fn all_names(net: &impl MultiTaskModel) -> Vec<String> {
    let mut names: Vec<String> = net.vars().data().lock().unwrap().keys().cloned().collect();
    if let Some(buffers) = net.buffers() {
        names.extend(buffers.data().lock().unwrap().keys().cloned());
    }
    names
}

#[test]
fn tensor_names_name_their_task_once() {
    let mut nets: Vec<(String, Vec<String>)> = Vec::new();
    for sharing in [Sharing::Partitioned, Sharing::Shared, Sharing::Independent] {
        let lenet = LeNetMt::new(&Device::Cpu, sharing, &[5, 5], 0).unwrap();
        nets.push((format!("lenet {sharing:?}"), all_names(&lenet)));
        let seg_cls = unet(sharing, UNetConfig::seg_cls(3, 2), 0);
        nets.push((format!("unet {sharing:?}"), all_names(&seg_cls)));
        let psi = PsiNet::new(
            &Device::Cpu,
            sharing,
            PsiNetConfig::all_tasks().with_widths(&SMALL),
            0,
        )
        .unwrap();
        nets.push((format!("psinet {sharing:?}"), all_names(&psi)));
    }
    for (net, names) in nets {
        assert!(!names.is_empty(), "{net}");
        for name in names {
            for t in 0..4 {
                let task = format!("task{t}");
                assert!(name.matches(&task).count() <= 1, "{net}: `{name}` stutters");
            }
        }
    }
    let lenet = LeNetMt::new(&Device::Cpu, Sharing::Partitioned, &[5, 5], 0).unwrap();
    assert!(all_names(&lenet).contains(&"heads.task1.bias".to_string()));
}
