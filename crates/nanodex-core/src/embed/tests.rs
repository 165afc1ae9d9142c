use super::*;

/// The installed test model; a missing model fails the test with the set-up command (never a skip).
pub(crate) fn test_embedder() -> Embedder {
    let paths = ModelPaths::resolve(None, None);
    Embedder::load(&paths, &EmbedOptions::default()).unwrap_or_else(|e| {
        panic!("{e}\n(the embedding tests need the models installed by `bash scripts/models.sh`)")
    })
}

#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    head: Vec<Vec<f32>>,
    cosine: Vec<Vec<f32>>,
}

#[test]
fn vectors_match_python_onnxruntime_reference() {
    let text = include_str!("../../../../tests/fixtures/embed/reference.json");
    let reference: Reference = serde_json::from_str(text).unwrap();
    let embedder = test_embedder();
    assert_eq!(embedder.dim(), 384);
    // Embed in reverse order and one at a time too: batching and padding must not change a vector.
    let vectors = embedder.embed(&reference.sentences).unwrap();
    let single: Vec<Vec<f32>> = reference
        .sentences
        .iter()
        .map(|s| embedder.embed(&[s.as_str()]).unwrap().remove(0))
        .collect();
    let mut max_diff = 0f32;
    for (i, v) in vectors.iter().enumerate() {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "vector {i} has norm {norm}");
        for (a, b) in v.iter().zip(&reference.head[i]) {
            max_diff = max_diff.max((a - b).abs());
        }
        for (a, b) in v.iter().zip(&single[i]) {
            max_diff = max_diff.max((a - b).abs());
        }
        for (j, w) in vectors.iter().enumerate() {
            max_diff = max_diff.max((dot(v, w) - reference.cosine[i][j]).abs());
        }
    }
    assert!(
        max_diff < 1e-4,
        "max difference to the reference: {max_diff}"
    );
}

#[test]
fn related_sentences_are_closer_than_unrelated_ones() {
    let embedder = test_embedder();
    let v = embedder
        .embed(&[
            "parse JSON from a string",
            "Deserialize a JSON document to a Python object",
            "Open a TCP socket",
        ])
        .unwrap();
    assert!(
        dot(&v[0], &v[1]) > dot(&v[0], &v[2]) + 0.2,
        "{} vs {}",
        dot(&v[0], &v[1]),
        dot(&v[0], &v[2])
    );
}

#[test]
fn missing_model_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ModelPaths {
        runtime: dir.path().join("libonnxruntime.so"),
        model_dir: dir.path().to_path_buf(),
    };
    let err = Embedder::load(&paths, &EmbedOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.onnx") && err.contains("scripts/models.sh"),
        "{err}"
    );
}

#[test]
fn empty_input_and_long_input() {
    let embedder = test_embedder();
    assert!(embedder.embed::<&str>(&[]).unwrap().is_empty());
    let long = "word ".repeat(5000);
    let v = embedder.embed(&[long.as_str(), ""]).unwrap();
    assert_eq!(v[0].len(), 384);
    assert_eq!(v[1].len(), 384);
}
