//! The installed CPython standard library as a real corpus. Facts below were checked by reading its source
//! (`json/__init__.py`, `json/decoder.py` of CPython 3.11).

use nanodex_core::extract::NodeType;

use crate::{default_config, extract_with, has_edge};

/// The stdlib folder (`NANODEX_PYTHON_STDLIB`, or `python3`'s).
pub use nanodex_tests::python_stdlib as stdlib_dir;

#[test]
fn json_facts_in_the_standard_library() {
    let mut cfg = default_config();
    cfg.extract
        .exclude
        .extend(["site-packages", "test", "tests", "idle_test", "__pycache__"].map(String::from));
    let ex = extract_with(&cfg, &stdlib_dir(), Default::default());
    let g = &ex.graph;
    assert!(
        ex.report.files_by_lang["python"] > 500,
        "{:?}",
        ex.report.files_by_lang
    );

    let loads = g
        .nodes
        .iter()
        .find(|n| n.qname == "json.loads" && n.id.ty == NodeType::Function)
        .expect("json.loads");
    assert_eq!(loads.path, "json/__init__.py");
    assert!(
        loads.signature.starts_with("def loads(s, *, cls=None"),
        "{}",
        loads.signature
    );
    assert!(loads.doc.starts_with("Deserialize ``s``"), "{}", loads.doc);
    assert!(has_edge(g, "defined_in", "json.loads", "json"));
    // `_default_decoder = JSONDecoder(...)` at module level, then `_default_decoder.decode(s)` inside loads.
    assert!(has_edge(
        g,
        "calls",
        "json.loads",
        "json.decoder.JSONDecoder.decode"
    ));
    assert!(has_edge(
        g,
        "extends",
        "json.decoder.JSONDecodeError",
        "builtins.ValueError"
    ));
    assert!(has_edge(g, "imports", "json", "json.decoder"));

    let raisers: Vec<&str> = {
        let target = g
            .nodes
            .iter()
            .find(|n| n.qname == "json.decoder.JSONDecodeError")
            .unwrap();
        let mut r: Vec<&str> = g
            .edges
            .iter()
            .filter(|e| e.kind.as_str() == "throws" && e.to == target.id)
            .map(|e| {
                g.nodes
                    .iter()
                    .find(|n| n.id == e.from)
                    .unwrap()
                    .qname
                    .as_str()
            })
            .collect();
        r.sort();
        r
    };
    assert_eq!(
        raisers,
        [
            "json.decoder.JSONArray",
            "json.decoder.JSONDecoder.decode",
            "json.decoder.JSONDecoder.raw_decode",
            "json.decoder.JSONObject",
            "json.decoder._decode_uXXXX",
            "json.decoder.py_scanstring",
            // `raise JSONDecodeError("Unexpected UTF-8 BOM ...", s, 0)` in json/__init__.py.
            "json.loads",
        ]
    );
    // The throws edge of `decode` carries the line of `raise JSONDecodeError("Extra data", s, end)` in decoder.py
    // (340 in CPython 3.11); found in the source so another Python version does not break the test.
    let decoder_src = std::fs::read_to_string(stdlib_dir().join("json/decoder.py")).unwrap();
    let extra_data_line = decoder_src
        .lines()
        .position(|l| l.contains("raise JSONDecodeError(\"Extra data\""))
        .expect("decoder.py raises Extra data") as u32
        + 1;
    let decode = g
        .nodes
        .iter()
        .find(|n| n.qname == "json.decoder.JSONDecoder.decode")
        .unwrap();
    let edge = g
        .edges
        .iter()
        .find(|e| e.kind.as_str() == "throws" && e.from == decode.id)
        .unwrap();
    assert_eq!(edge.lines, vec![extra_data_line]);
    let share = ex.report.resolve.calls_resolved as f64
        / (ex.report.resolve.calls_resolved + ex.report.resolve.calls_unresolved) as f64;
    assert!(share > 0.3, "resolved share {share}");
}
