//! The brain's records in the graph database: table `brain` (one row per [`BrainNode`], with its summary, the
//! code records it refers to, its embedding), a BM25 full-text index over names and summaries and an HNSW vector
//! index over embeddings; and the queries search runs on them. Also reads the code graph back as a [`CodeGraph`]
//! for the brain stage.

use std::collections::{BTreeMap, HashMap};

use surrealdb::types::{Object, RecordId, SurrealValue, Value};

use super::{GraphStore, parse_record_id};
use crate::brain::{BrainNode, BrainType};
use crate::error::GraphError;
use crate::extract::{CodeGraph, Edge, EdgeKind, Lang, Node, NodeRef, NodeType};
use crate::progress::{ProgressEvent, Sink};

const BRAIN_SCHEMA: &str = "\
DEFINE TABLE IF NOT EXISTS brain SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS kind ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS name ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS qname ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS path ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS line ON brain TYPE int;
DEFINE FIELD IF NOT EXISTS summary ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS text ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS refs ON brain TYPE array<record>;
DEFINE FIELD IF NOT EXISTS meta ON brain TYPE object FLEXIBLE;
DEFINE FIELD IF NOT EXISTS hash ON brain TYPE string;
DEFINE FIELD IF NOT EXISTS embedding ON brain TYPE option<array<float>>;
DEFINE ANALYZER IF NOT EXISTS brain_text TOKENIZERS class, camel FILTERS lowercase, snowball(english);
DEFINE INDEX IF NOT EXISTS brain_kind ON brain FIELDS kind;
DEFINE INDEX IF NOT EXISTS brain_qname ON brain FIELDS qname;
DEFINE INDEX IF NOT EXISTS brain_fts ON brain FIELDS text FULLTEXT ANALYZER brain_text BM25;
DEFINE TABLE IF NOT EXISTS brain_state SCHEMALESS;
";

/// One search hit from the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// Brain node id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// File.
    pub path: String,
    /// Line.
    pub line: u64,
    /// Summary.
    pub summary: String,
    /// Score: BM25 for lexical hits, cosine similarity for vector hits, fused score after fusion.
    pub score: f64,
    /// How much the code leans on the node (callers, importers, users, raisers, handlers).
    #[serde(default)]
    pub weight: u64,
}

fn hit(row: &serde_json::Value, score_key: &str) -> Option<Hit> {
    let key = row.get("id")?.as_str()?;
    let id = key.split_once(':').map(|(_, k)| k).unwrap_or(key);
    let id = id
        .trim_matches(|c| c == '⟨' || c == '⟩' || c == '`')
        .to_string();
    let raw = row.get(score_key).and_then(|s| s.as_f64()).unwrap_or(0.0);
    Some(Hit {
        id,
        ty: row.get("kind")?.as_str()?.to_string(),
        name: row.get("name")?.as_str()?.to_string(),
        qname: row.get("qname")?.as_str()?.to_string(),
        path: row.get("path")?.as_str()?.to_string(),
        line: row.get("line").and_then(|l| l.as_u64()).unwrap_or(0),
        summary: row.get("summary")?.as_str()?.to_string(),
        score: if score_key == "dist" { 1.0 - raw } else { raw },
        weight: row.get("weight").and_then(|w| w.as_u64()).unwrap_or(0),
    })
}

fn node_from_json(row: &serde_json::Value) -> Option<Node> {
    let (table, key) = split_id(row.get("id")?.as_str()?)?;
    let s = |k: &str| {
        row.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let n = |k: &str| row.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    Some(Node {
        id: NodeRef {
            ty: NodeType::from_name(&table)?,
            key: key.into(),
        },
        name: s("name"),
        qname: s("qname"),
        path: s("path"),
        lang: row
            .get("lang")
            .and_then(|v| v.as_str())
            .and_then(Lang::from_name),
        start_line: n("start_line"),
        end_line: n("end_line"),
        signature: s("signature"),
        doc: s("doc"),
        meta: row
            .get("meta")
            .and_then(|m| m.as_object())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    })
}

/// `table:key` (SurrealDB's JSON form of a record id, the key possibly in `⟨⟩`) → (table, key).
fn split_id(id: &str) -> Option<(String, String)> {
    let (table, key) = id.split_once(':')?;
    Some((
        table.to_string(),
        key.trim_matches(|c| c == '⟨' || c == '⟩' || c == '`')
            .to_string(),
    ))
}

fn node_ref(v: &serde_json::Value) -> Option<NodeRef> {
    let (table, key) = split_id(v.as_str()?)?;
    Some(NodeRef {
        ty: NodeType::from_name(&table)?,
        key: key.into(),
    })
}

impl GraphStore {
    /// Reads the stored code graph back, with the repository root it was extracted from.
    pub async fn load_graph(&self) -> Result<(CodeGraph, String), GraphError> {
        self.require_graph()?;
        let mut graph = CodeGraph::default();
        for ty in NodeType::ALL {
            let rows = self
                .query_json(&format!("SELECT * FROM `{}`", ty.as_str()), vec![])
                .await?;
            graph.nodes.extend(
                rows.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(node_from_json),
            );
        }
        for kind in EdgeKind::ALL {
            let rows = self
                .query_json(
                    &format!("SELECT in, out, lines, confidence FROM `{}`", kind.as_str()),
                    vec![],
                )
                .await?;
            for row in rows.as_array().into_iter().flatten() {
                let (Some(from), Some(to)) = (
                    row.get("in").and_then(node_ref),
                    row.get("out").and_then(node_ref),
                ) else {
                    continue;
                };
                graph.edges.push(Edge {
                    kind,
                    from,
                    to,
                    lines: row
                        .get("lines")
                        .and_then(|l| l.as_array())
                        .map(|l| {
                            l.iter()
                                .filter_map(|x| x.as_u64())
                                .map(|x| x as u32)
                                .collect()
                        })
                        .unwrap_or_default(),
                    confidence: row
                        .get("confidence")
                        .and_then(|c| c.as_f64())
                        .unwrap_or(1.0) as f32,
                });
            }
        }
        graph.nodes.sort_by(|a, b| a.id.cmp(&b.id));
        graph
            .edges
            .sort_by(|a, b| (a.kind, &a.from, &a.to).cmp(&(b.kind, &b.from, &b.to)));
        let info = self.inspect().await?;
        graph.stats = info.resolve;
        Ok((graph, info.root))
    }

    async fn ensure_brain_schema(&self, dim: Option<usize>) -> Result<(), GraphError> {
        self.require_graph()?;
        self.db()
            .query(BRAIN_SCHEMA)
            .await
            .and_then(|r| r.check())
            .map_err(GraphError::db("defining the brain tables"))?;
        if let Some(dim) = dim {
            // EFC 64 / M 8 (SurrealDB's defaults are 150 / 12): a third of the build time, and recall on a few
            // thousand summaries stays exact in practice at search-time ef >= 64.
            let spec = format!("HNSW DIMENSION {dim} DIST COSINE TYPE F32 EFC 64 M 8");
            let mut res = self
                .db()
                .query("SELECT VALUE spec FROM ONLY brain_state:vectors")
                .await
                .map_err(GraphError::db("reading the vector index state"))?;
            let have: Option<String> = res
                .take(0)
                .map_err(GraphError::db("reading the vector index state"))?;
            if have.as_deref() != Some(spec.as_str()) {
                // A new model or index setting: rebuild the index; `spec` holds numbers, not user text.
                let sql = format!(
                    "REMOVE INDEX IF EXISTS brain_vec ON brain; DEFINE INDEX brain_vec ON brain FIELDS embedding {spec}; \
                     UPSERT brain_state:vectors SET dim = {dim}, spec = $spec;"
                );
                self.db()
                    .query(sql)
                    .bind(("spec", spec.clone()))
                    .await
                    .and_then(|r| r.check())
                    .map_err(GraphError::db("defining the vector index"))?;
            }
        }
        Ok(())
    }

    /// Replaces the stored brain with `nodes` (and their `vectors`, in the same order, when given), writing only
    /// what changed. Without vectors, embeddings of unchanged nodes are kept. Returns (inserted, deleted).
    pub async fn write_brain(
        &mut self,
        nodes: &[BrainNode],
        vectors: Option<&[Vec<f32>]>,
        sink: &dyn Sink,
    ) -> Result<(u64, u64), GraphError> {
        let dim = vectors.and_then(|v| v.iter().map(Vec::len).find(|&d| d > 0));
        self.ensure_brain_schema(dim).await?;
        let rows = self
            .query_json(
                "SELECT id, hash, embedding != NONE AS has_vec FROM brain",
                vec![],
            )
            .await?;
        let mut existing: HashMap<String, (String, bool)> = HashMap::new();
        for row in rows.as_array().into_iter().flatten() {
            if let (Some(id), Some(hash)) = (
                row.get("id").and_then(|v| v.as_str()),
                row.get("hash").and_then(|v| v.as_str()),
            ) {
                let key = id.split_once(':').map(|(_, k)| k).unwrap_or(id);
                let key = key
                    .trim_matches(|c| c == '⟨' || c == '⟩' || c == '`')
                    .to_string();
                let has_vec = row
                    .get("has_vec")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                existing.insert(key, (hash.to_string(), has_vec));
            }
        }
        let mut hashes = Vec::with_capacity(nodes.len());
        let mut upsert = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let mut hash = n.content_hash();
            if let Some(v) = vectors {
                // The vector is part of the record: a re-embedded node (new model) is rewritten.
                let bytes: Vec<u8> = v[i].iter().flat_map(|x| x.to_le_bytes()).collect();
                hash = format!("{hash}{}", &blake3::hash(&bytes).to_hex()[..8]);
            }
            let changed = match existing.get(&n.id) {
                Some((h, _)) => {
                    if vectors.is_some() {
                        h != &hash
                    } else {
                        // Without new vectors, compare the content part only and keep the stored vector.
                        !h.starts_with(&n.content_hash())
                    }
                }
                None => true,
            };
            if changed {
                upsert.push(i);
            }
            hashes.push(hash);
        }
        let keep: std::collections::HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let mut delete: Vec<RecordId> = existing
            .keys()
            .filter(|k| !keep.contains(k.as_str()))
            .map(|k| RecordId::new("brain", k.as_str()))
            .collect();
        delete.extend(
            upsert
                .iter()
                .filter(|&&i| existing.contains_key(&nodes[i].id))
                .map(|&i| RecordId::new("brain", nodes[i].id.as_str())),
        );
        let deleted = delete.len() as u64;
        for chunk in delete.chunks(self.batch.max(1)) {
            let ids = Value::Array(
                chunk
                    .iter()
                    .cloned()
                    .map(Value::RecordId)
                    .collect::<Vec<_>>()
                    .into(),
            );
            self.exec_retry(
                "DELETE brain WHERE id IN $ids",
                ("ids", ids),
                "deleting brain records",
            )
            .await?;
        }
        let total = upsert.len() as u64;
        let mut done = 0u64;
        for chunk in upsert.chunks(500) {
            let rows: Vec<Value> = chunk
                .iter()
                .map(|&i| {
                    let n = &nodes[i];
                    let mut obj = Object::new();
                    obj.insert("id", RecordId::new("brain", n.id.as_str()));
                    obj.insert("kind", n.ty.as_str().to_string());
                    obj.insert("name", n.name.clone());
                    obj.insert("qname", n.qname.clone());
                    obj.insert("path", n.path.clone());
                    obj.insert("line", n.line as i64);
                    obj.insert("summary", n.summary.clone());
                    obj.insert("text", n.search_text());
                    let refs: Vec<RecordId> =
                        n.refs.iter().filter_map(|r| parse_record_id(r)).collect();
                    obj.insert("refs", refs);
                    obj.insert("meta", serde_json::Value::Object(n.meta.clone()));
                    obj.insert("hash", hashes[i].clone());
                    if let Some(v) = vectors.map(|v| &v[i]).filter(|v| !v.is_empty()) {
                        obj.insert(
                            "embedding",
                            v.iter().map(|&x| x as f64).collect::<Vec<f64>>(),
                        );
                    }
                    Value::Object(obj)
                })
                .collect();
            let rows = Value::Array(rows.into());
            self.exec_retry(
                "INSERT INTO brain $rows RETURN NONE",
                ("rows", rows),
                "writing brain records",
            )
            .await?;
            done += chunk.len() as u64;
            sink.event(ProgressEvent {
                stage: "brain-store",
                done,
                total: Some(total),
                message: String::new(),
            });
        }
        if total > 1000 && self.has_vector_index().await? {
            // The HNSW index takes inserts into a pending queue that background compaction folds in; a short-lived
            // process exits before that, and every kNN search would then scan the queue. After a large write,
            // rebuild the index now so searches use the graph.
            self.db()
                .query("REBUILD INDEX IF EXISTS brain_vec ON brain")
                .await
                .and_then(|r| r.check())
                .map_err(GraphError::db("rebuilding the vector index"))?;
        }
        let generation = self.generation().await? as i64;
        self.db()
            .query("UPSERT brain_state:current SET generation = $generation, nodes = $nodes, embedded = $embedded, built_at = time::now()")
            .bind(("generation", generation))
            .bind(("nodes", nodes.len() as i64))
            .bind(("embedded", vectors.is_some()))
            .await
            .and_then(|r| r.check())
            .map_err(GraphError::db("writing brain state"))?;
        Ok((total, deleted))
    }

    /// Runs one write statement, retrying when it lost a write conflict (SurrealDB's background index
    /// compaction writes to the same index keys and says "this transaction can be retried").
    async fn exec_retry(
        &self,
        sql: &str,
        bind: (&'static str, Value),
        context: &str,
    ) -> Result<(), GraphError> {
        let mut attempt = 0;
        loop {
            let res = self
                .db()
                .query(sql)
                .bind(bind.clone())
                .await
                .and_then(|r| r.check());
            match res {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 20 && e.to_string().contains("can be retried") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                Err(e) => return Err(GraphError::db(context.to_string())(e)),
            }
        }
    }

    async fn has_vector_index(&self) -> Result<bool, GraphError> {
        let mut res = self
            .db()
            .query("SELECT VALUE dim FROM ONLY brain_state:vectors")
            .await
            .map_err(GraphError::db("reading the vector index state"))?;
        let dim: Option<i64> = res
            .take(0)
            .map_err(GraphError::db("reading the vector index state"))?;
        Ok(dim.is_some())
    }

    /// The stored brain nodes, sorted by id (for re-embedding without re-deriving).
    pub async fn brain_nodes(&self) -> Result<Vec<BrainNode>, GraphError> {
        self.require_graph()?;
        self.ensure_brain_schema(None).await?;
        let rows = self
            .query_json("SELECT id, kind, name, qname, path, line, summary, refs, meta FROM brain ORDER BY id", vec![])
            .await?;
        let mut out = Vec::new();
        for row in rows.as_array().into_iter().flatten() {
            let Some(h) = hit(row, "none") else { continue };
            let Some(ty) = BrainType::from_name(&h.ty) else {
                continue;
            };
            out.push(BrainNode {
                id: h.id,
                ty,
                name: h.name,
                qname: h.qname,
                path: h.path,
                line: h.line as u32,
                summary: h.summary,
                refs: row
                    .get("refs")
                    .and_then(|r| r.as_array())
                    .map(|r| {
                        r.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                meta: row
                    .get("meta")
                    .and_then(|m| m.as_object())
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Brain build state: `{generation, nodes, embedded, built_at}` and the graph's current generation.
    pub async fn brain_state(&self) -> Result<(Option<serde_json::Value>, u64), GraphError> {
        self.require_graph()?;
        self.ensure_brain_schema(None).await?;
        let rows = self
            .query_json("SELECT * FROM ONLY brain_state:current", vec![])
            .await?;
        let generation = self.generation().await?;
        Ok(((!rows.is_null()).then_some(rows), generation))
    }

    /// BM25 search over names and summaries (any term may match), best first.
    pub async fn search_lexical(
        &self,
        query: &str,
        ty: Option<BrainType>,
        limit: usize,
    ) -> Result<Vec<Hit>, GraphError> {
        self.require_graph()?;
        self.ensure_brain_schema(None).await?;
        let filter = if ty.is_some() {
            " AND kind = $kind"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, kind, name, qname, path, line, summary, meta.weight AS weight, search::score(1) AS score FROM brain \
             WHERE text @1,OR@ $q{filter} ORDER BY score DESC LIMIT {limit}"
        );
        let mut binds: Vec<(&'static str, Value)> = vec![("q", Value::String(query.to_string()))];
        if let Some(t) = ty {
            binds.push(("kind", Value::String(t.as_str().to_string())));
        }
        let rows = self.query_json(&sql, binds).await?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| hit(r, "score"))
            .collect())
    }

    /// Nearest neighbours of `vector` by cosine similarity (HNSW), best first.
    pub async fn search_vector(
        &self,
        vector: &[f32],
        ty: Option<BrainType>,
        limit: usize,
    ) -> Result<Vec<Hit>, GraphError> {
        self.require_graph()?;
        self.ensure_brain_schema(None).await?;
        // With a type filter, take more neighbours and filter: the index knows nothing of types.
        let k = if ty.is_some() { limit * 8 } else { limit };
        let ef = (k * 2).max(64);
        let sql = format!(
            "SELECT id, kind, name, qname, path, line, summary, meta.weight AS weight, vector::distance::knn() AS dist FROM brain \
             WHERE embedding <|{k},{ef}|> $v ORDER BY dist"
        );
        let v: Vec<f64> = vector.iter().map(|&x| x as f64).collect();
        let rows = self.query_json(&sql, vec![("v", v.into_value())]).await?;
        let mut hits: Vec<Hit> = rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| hit(r, "dist"))
            .collect();
        if let Some(t) = ty {
            hits.retain(|h| h.ty == t.as_str());
        }
        hits.truncate(limit);
        Ok(hits)
    }

    /// Brain node counts by type.
    pub async fn brain_counts(&self) -> Result<BTreeMap<String, u64>, GraphError> {
        self.require_graph()?;
        self.ensure_brain_schema(None).await?;
        let rows = self
            .query_json("SELECT kind, count() AS n FROM brain GROUP BY kind", vec![])
            .await?;
        Ok(rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get("kind")?.as_str()?.to_string(), r.get("n")?.as_u64()?)))
            .collect())
    }
}
