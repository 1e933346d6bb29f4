//! The exported EfficientNet-Lite0 is exact: ImageNet classes come out right through tract.

mod common;

use damagelens::engine::backbone::Backbone;
use damagelens::engine::image_ops::decode_rgb;
use sha2::{Digest, Sha256};

fn top5(file: &str) -> Vec<usize> {
    let (manifest, onnx) = common::backbone();
    let net = Backbone::load(&manifest, &onnx, 224, &["logits"]).unwrap();
    let rgb = decode_rgb(file, &common::read(file)).unwrap();
    let logits = net.run(manifest.preprocess().tensor(&rgb, false)).unwrap().remove(0).data;
    assert_eq!(logits.len(), 1000);
    let mut order: Vec<usize> = (0..1000).collect();
    order.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    order.truncate(5);
    order
}

#[test]
fn the_model_file_is_the_one_the_manifest_names() {
    let (manifest, onnx) = common::backbone();
    let digest: String = Sha256::digest(&onnx).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(digest, manifest.onnx_sha256);
}

#[test]
fn chelsea_is_a_cat() {
    let top = top5("tests/data/skimage/chelsea.png");
    assert!((281..=285).contains(&top[0]), "top-5 {top:?}");
}

#[test]
fn coffee_is_espresso() {
    let top = top5("tests/data/skimage/coffee.png");
    assert!(top.contains(&967), "top-5 {top:?}");
}

#[test]
fn feature_maps_have_the_manifest_strides() {
    let (manifest, onnx) = common::backbone();
    let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
    let net = Backbone::load(&manifest, &onnx, 224, &names).unwrap();
    let maps = net.run(vec![0.0; 3 * 224 * 224]).unwrap();
    for (map, spec) in maps.iter().zip(&manifest.features) {
        assert_eq!(map.channels, spec.channels, "{}", spec.name);
        assert_eq!(map.height as u32, 224 / spec.stride, "{}", spec.name);
        assert_eq!(map.width as u32, 224 / spec.stride, "{}", spec.name);
    }
}
