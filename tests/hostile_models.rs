//! Hostile backbone files: each is refused with the file's name and the way out, and
//! never panics. Models are built here as ONNX protobuf, so each test says exactly what
//! is wrong with its model.

mod common;

use common::onnx::Graph;
use damagelens::engine::backbone::Backbone;
use damagelens::engine::inspector::Inspector;

/// A one-node model from `input` (of `input_shape`) to `feat_s8` through `op`.
fn model(op: &str, input_shape: &[i64]) -> Vec<u8> {
    Graph::new("input", input_shape).node(op, "n", &["input"], &["feat_s8"], vec![]).output("feat_s8").encode()
}

fn refusal(onnx: &[u8]) -> String {
    let (manifest, _) = common::backbone();
    match Backbone::load(&manifest, onnx, 224, &["feat_s8"]) {
        Ok(_) => panic!("a hostile model was accepted"),
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(&manifest.file), "the message names the file: {message}");
            assert!(message.contains("Re-run the setup"), "the message says what to do: {message}");
            message
        }
    }
}

#[test]
fn a_well_formed_model_of_known_ops_loads() {
    // The control: the builder makes valid models, so the refusals below are about
    // what each one changes.
    let (manifest, _) = common::backbone();
    assert!(Backbone::load(&manifest, &model("Relu", &[1, 3, 224, 224]), 224, &["feat_s8"]).is_ok());
}

#[test]
fn bytes_that_are_no_model_are_refused() {
    refusal(b"");
    refusal(b"this is a text file named efficientnet_lite0.onnx");
    let (_, onnx) = common::backbone();
    refusal(&onnx[..onnx.len() / 2]);
}

#[test]
fn an_unsupported_operator_is_named() {
    let message = refusal(&model("DamageLensNoSuchOp", &[1, 3, 224, 224]));
    assert!(message.contains("DamageLensNoSuchOp"), "{message}");
}

#[test]
fn an_input_of_the_wrong_rank_is_refused_before_it_runs() {
    let message = refusal(&model("Relu", &[1, 150528]));
    assert!(message.contains("2 dimensions") && message.contains("1x3xHxW"), "{message}");
}

#[test]
fn a_model_without_the_feature_outputs_is_refused() {
    let (manifest, _) = common::backbone();
    let err = Backbone::load(&manifest, &model("Relu", &[1, 3, 224, 224]), 224, &["feat_s16"]).err().expect("refused").to_string();
    assert!(err.contains(&manifest.file) && err.contains("feat_s16"), "{err}");
}

#[test]
fn another_file_under_the_manifests_name_is_refused_by_its_hash() {
    let (manifest, _) = common::backbone();
    let err = Inspector::new(manifest.clone(), &model("Relu", &[1, 3, 224, 224])).err().expect("refused").to_string();
    assert!(err.contains(&manifest.file) && err.contains("sha256") && err.contains("Re-run the setup"), "{err}");
}

#[test]
fn the_cli_names_a_broken_model_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("damagelens-hostile-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (manifest, _) = common::backbone();
    std::fs::write(dir.join("m.manifest.json"), serde_json::to_string(&manifest).unwrap()).unwrap();
    std::fs::write(dir.join(&manifest.file), b"not a model").unwrap();
    let out = common::damagelens(&[
        "--backbone",
        dir.join("m.manifest.json").to_str().unwrap(),
        "train",
        "--name",
        "n",
        "--out",
        dir.join("n.dlprofile").to_str().unwrap(),
        "tests/fixtures/images/cmyk.jpg",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&manifest.file) && !stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
