//! Φ formalize from a dbt project: a `target/manifest.json` written by dbt (manifest
//! schema v10–v12, dbt-core 1.6–1.10) becomes one [`StateSignature`] per model, so each
//! model can be governed like an intent before `dbt build` runs it.
//!
//! Only the manifest fields read here are parsed (serde, unknown fields ignored); a
//! malformed manifest is a [`DbtError::Json`] with the line and column serde_json
//! reports.
//!
//! # How a model becomes a signature
//!
//! `meta` below is the model's `meta` with its `config.meta` over it; `meta.cfa` is an
//! optional mapping of explicit overrides, read first wherever it is named.
//!
//! | signature field | from |
//! |---|---|
//! | `target_layer` | `meta.cfa.layer`, else `meta.layer`, else a tag `bronze`/`silver`/`gold`, else a folder of the model's path: `bronze`/`silver`/`gold`, `staging`/`stg` → bronze, `intermediate`/`int` → silver, `marts`/`mart` → gold; else silver (see [`LayerSource`]) |
//! | `datasets` | the model's `depends_on.nodes` (sources, models, seeds, snapshots) in manifest order. A source is named by its table `name`; the catalog entry `source_name.name` or `name` supplies its metadata when there is one. Otherwise the metadata comes from the manifest: `meta.classification`, `meta.size_gb`, `meta.partition_column` (else the node's first `partition_by` column), `merge_keys` from its `unique_key`, and `pii_columns` from its columns marked as raw PII |
//! | `constraints.no_pii_raw` | `meta.cfa.no_pii_raw`, else `false` when the model writes raw PII: one of its columns is marked as raw PII, or has the name of an input's PII column and no treatment, or the inputs hold PII and the model documents no columns at all (nothing says the PII is treated); else `true` |
//! | `constraints.merge_key_required` | `meta.cfa.merge_key_required`, else for `materialized: incremental`: a non-empty `unique_key` and an `incremental_strategy` other than `append`; `true` for full rebuilds (table, view, …) |
//! | `constraints.enforce_types` | `meta.cfa.enforce_types`, else the model's `contract.enforced` |
//! | `constraints.partition_by` | `meta.cfa.partition_by`, else the model's `config.partition_by` (a column, a list of columns, or BigQuery's `{field: …}`, alone or in a list) |
//! | `constraints.max_cost_dbu` | `meta.cfa.max_cost_dbu` (a number), else none |
//! | `constraints.custom` | `{"approval_id": …}` when `meta.cfa.approval_id` is set, else `{}` |
//! | `domain` / `intent` | `meta.cfa.domain` / `meta.cfa.intent`, else the package name / `transform_and_persist` |
//! | `intent_id` / `source_intent_raw` | the model's `unique_id` / `dbt model <unique_id> (<original_file_path>)` |
//!
//! A column is raw PII when its `meta.pii` is `true` or `"raw"`, or a tag of it is
//! `pii`; it is treated PII when `meta.pii` is `hashed`, `masked`, `anonymized`,
//! `pseudonymized`, `tokenized`, `encrypted` or `redacted`; `meta.pii: false` says it is
//! not PII.
//!
//! # Example
//!
//! ```
//! use cfa_resolve::dbt::{Manifest, Selector, derive};
//!
//! let manifest = Manifest::from_json_str(r#"{
//!   "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json"},
//!   "nodes": {"model.shop.orders": {
//!     "resource_type": "model", "name": "orders", "package_name": "shop",
//!     "unique_id": "model.shop.orders", "original_file_path": "models/silver/orders.sql",
//!     "fqn": ["shop", "silver", "orders"],
//!     "config": {"materialized": "incremental", "contract": {"enforced": true}},
//!     "depends_on": {"nodes": ["source.shop.erp.raw_orders"]}}},
//!   "sources": {"source.shop.erp.raw_orders": {
//!     "resource_type": "source", "name": "raw_orders", "source_name": "erp"}}
//! }"#)?;
//! let models = derive(&manifest, None, &Selector::all())?;
//! let orders = &models[0];
//! assert_eq!(orders.signature.target_layer.as_str(), "silver");
//! assert_eq!(orders.signature.datasets[0].name, "raw_orders");
//! // Incremental without a unique_key appends: policy blocks that on silver.
//! assert!(!orders.signature.constraints.merge_key_required);
//! # Ok::<(), cfa_resolve::dbt::DbtError>(())
//! ```

use cfa_types::{Catalog, DatasetClassification, DatasetRef, StateSignature, TargetLayer};
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{Map, Number, Value};

/// The manifest schema versions read (`…/dbt/manifest/vN.json`).
pub const SUPPORTED_SCHEMA_VERSIONS: std::ops::RangeInclusive<u32> = 10..=12;

/// The intent of a derived signature unless `meta.cfa.intent` names one.
pub const DBT_INTENT: &str = "transform_and_persist";

/// Why a manifest could not be read or a model not derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbtError {
    /// The text is not JSON, or a field the reader needs has the wrong shape.
    #[error("{line}:{column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde_json's message, without its position.
        message: String,
    },
    /// `metadata.dbt_schema_version` is missing: this is not a dbt manifest.
    #[error(
        "not a dbt manifest: metadata.dbt_schema_version is missing (run `dbt parse` and pass target/manifest.json)"
    )]
    NotAManifest,
    /// The manifest schema version is not one this reader knows.
    #[error(
        "unsupported dbt manifest schema '{found}': cfa reads manifest v10 to v12 (dbt-core 1.6 to 1.10)"
    )]
    UnsupportedVersion {
        /// The `dbt_schema_version` found.
        found: String,
    },
    /// A model's configuration cannot be turned into a signature.
    #[error("{unique_id}: {message}")]
    Model {
        /// The model's `unique_id`.
        unique_id: String,
        /// What is wrong and where.
        message: String,
    },
    /// A `--select` term is not understood.
    #[error("invalid selector '{term}': {message}")]
    Selector {
        /// The term.
        term: String,
        /// Why.
        message: String,
    },
}

/// `depends_on` of a node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct DependsOn {
    nodes: Vec<String>,
}

/// A column of a node.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawColumn {
    name: String,
    meta: Map<String, Value>,
    tags: Vec<String>,
    config: RawColumnConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawColumnConfig {
    meta: Map<String, Value>,
    tags: Vec<String>,
}

/// `config.contract`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Contract {
    enforced: bool,
}

/// The `config` of a node: the keys read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawConfig {
    materialized: Option<String>,
    incremental_strategy: Option<String>,
    unique_key: Value,
    partition_by: Value,
    contract: Contract,
    meta: Map<String, Value>,
    tags: Value,
}

/// A node or source of the manifest: the fields read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawNode {
    resource_type: String,
    name: String,
    package_name: String,
    unique_id: String,
    original_file_path: String,
    path: String,
    fqn: Vec<String>,
    tags: Vec<String>,
    meta: Map<String, Value>,
    source_meta: Map<String, Value>,
    source_name: Option<String>,
    identifier: Option<String>,
    config: RawConfig,
    columns: IndexMap<String, RawColumn>,
    depends_on: DependsOn,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawMetadata {
    dbt_schema_version: Option<String>,
    dbt_version: Option<String>,
    project_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct RawManifest {
    metadata: RawMetadata,
    nodes: IndexMap<String, RawNode>,
    sources: IndexMap<String, RawNode>,
}

/// A parsed dbt manifest (the parts signature derivation reads).
#[derive(Debug, Clone)]
pub struct Manifest {
    schema_version: u32,
    dbt_version: Option<String>,
    project_name: Option<String>,
    nodes: IndexMap<String, RawNode>,
    sources: IndexMap<String, RawNode>,
}

impl Manifest {
    /// Parses `manifest.json` text. Unknown fields are ignored; the schema version must
    /// be one of [`SUPPORTED_SCHEMA_VERSIONS`].
    pub fn from_json_str(text: &str) -> Result<Self, DbtError> {
        let raw: RawManifest = serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let message = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(head, _)| head)
                .to_owned();
            DbtError::Json {
                line: e.line().max(1),
                column: e.column().max(1),
                message,
            }
        })?;
        let found = raw
            .metadata
            .dbt_schema_version
            .ok_or(DbtError::NotAManifest)?;
        let schema_version = schema_version_of(&found)
            .filter(|v| SUPPORTED_SCHEMA_VERSIONS.contains(v))
            .ok_or(DbtError::UnsupportedVersion { found })?;
        Ok(Manifest {
            schema_version,
            dbt_version: raw.metadata.dbt_version,
            project_name: raw.metadata.project_name,
            nodes: raw.nodes,
            sources: raw.sources,
        })
    }

    /// The manifest schema version (10, 11 or 12).
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }

    /// `metadata.dbt_version`, when present.
    pub fn dbt_version(&self) -> Option<&str> {
        self.dbt_version.as_deref()
    }

    /// `metadata.project_name`, when present.
    pub fn project_name(&self) -> Option<&str> {
        self.project_name.as_deref()
    }

    /// The number of models in the manifest.
    pub fn model_count(&self) -> usize {
        self.models().count()
    }

    fn models(&self) -> impl Iterator<Item = &RawNode> {
        self.nodes.values().filter(|n| n.resource_type == "model")
    }

    fn node(&self, id: &str) -> Option<&RawNode> {
        self.nodes.get(id).or_else(|| self.sources.get(id))
    }
}

/// `https://schemas.getdbt.com/dbt/manifest/v12.json` → 12.
fn schema_version_of(url: &str) -> Option<u32> {
    let tail = url.rsplit('/').next()?;
    tail.strip_prefix('v')?.strip_suffix(".json")?.parse().ok()
}

/// One term of a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    /// A model name (or `unique_id`), `*`/`?` globs allowed.
    Name(String),
    /// `tag:NAME`: the model has this tag.
    Tag(String),
    /// `path:PATH`: the model's file is PATH or under the directory PATH (or matches
    /// the glob PATH), against `original_file_path` or the path under the model folder.
    Path(String),
}

/// Which models to derive: the union of its terms (every model when empty).
///
/// Terms: a model name (`silver_fiscal`, globs `silver_*`), `tag:NAME`, and
/// `path:PATH` (a file, a directory such as `models/silver`, or a glob such as
/// `models/**/*.sql`; matched against the model's `original_file_path` and against its
/// path under the model folder). `*` matches within one path segment, `**` across
/// segments, `?` one character.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// Selects every model.
    pub fn all() -> Self {
        Selector::default()
    }

    /// Parses selection values; each value may hold several terms separated by
    /// whitespace (a union, like dbt's space-separated `--select`). dbt's intersection
    /// (`a,b`) and graph operators (`+model`, `model+`, `@model`) are not supported and
    /// are errors rather than silently different.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, DbtError> {
        let mut terms = Vec::new();
        for value in values {
            for term in value.as_ref().split_whitespace() {
                let bad = |message: &str| DbtError::Selector {
                    term: term.to_owned(),
                    message: message.to_owned(),
                };
                if term.contains(',') {
                    return Err(bad(
                        "intersections (`,`) are not supported; terms separated by spaces are a union",
                    ));
                }
                if term.starts_with(['+', '@']) || term.ends_with('+') {
                    return Err(bad("graph operators (+, @) are not supported"));
                }
                let parsed = match term.split_once(':') {
                    Some(("tag", t)) if !t.is_empty() => Term::Tag(t.to_owned()),
                    Some(("path", p)) if !p.is_empty() => {
                        Term::Path(p.trim_start_matches("./").trim_end_matches('/').to_owned())
                    }
                    Some(("tag" | "path", _)) => return Err(bad("the method needs a value")),
                    Some((method, _)) => {
                        return Err(bad(&format!(
                            "unknown method '{method}:' (cfa selects by model name, tag:NAME or path:PATH)"
                        )));
                    }
                    None => Term::Name(term.to_owned()),
                };
                terms.push(parsed);
            }
        }
        Ok(Selector { terms })
    }

    /// Whether every model is selected.
    pub fn is_all(&self) -> bool {
        self.terms.is_empty()
    }

    fn matches(&self, node: &RawNode) -> bool {
        self.terms.is_empty()
            || self.terms.iter().any(|t| match t {
                Term::Name(p) => p == &node.unique_id || glob_match(p, &node.name),
                Term::Tag(tag) => model_tags(node).iter().any(|t| t == tag),
                Term::Path(p) => [&node.original_file_path, &node.path]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .any(|s| path_match(p, s)),
            })
    }
}

/// A file path against a `path:` value: the same file, a file under that directory,
/// or a glob match.
fn path_match(pattern: &str, path: &str) -> bool {
    if pattern.contains(['*', '?']) {
        glob_match(pattern, path)
    } else {
        path == pattern
            || path
                .strip_prefix(pattern)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Glob matching: `**` any characters, `*` any characters but `/`, `?` one character
/// but `/`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => {
            let (cross, rest) = match rest.split_first() {
                Some(('*', r)) => (true, r),
                _ => (false, rest),
            };
            // `**/` also matches no directory at all.
            if cross
                && let Some(('/', after)) = rest.split_first()
                && glob_at(after, t)
            {
                return true;
            }
            let mut i = 0;
            loop {
                if glob_at(rest, t.get(i..).unwrap_or_default()) {
                    return true;
                }
                match t.get(i) {
                    Some('/') if !cross => return false,
                    Some(_) => i += 1,
                    None => return false,
                }
            }
        }
        Some(('?', rest)) => match t.split_first() {
            Some((c, tail)) if *c != '/' => glob_at(rest, tail),
            _ => false,
        },
        Some((c, rest)) => match t.split_first() {
            Some((d, tail)) if c == d => glob_at(rest, tail),
            _ => false,
        },
    }
}

/// Where a model's layer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerSource {
    /// `meta.cfa.layer` or `meta.layer`.
    Meta,
    /// A tag named after the layer.
    Tag,
    /// A folder of the model's path (`silver/`, `staging/`, …); the folder's name.
    Path(String),
    /// Nothing said: silver, the protected default.
    Default,
}

impl LayerSource {
    /// `meta`, `tag`, `path:<folder>` or `default`.
    pub fn describe(&self) -> String {
        match self {
            LayerSource::Meta => "meta".into(),
            LayerSource::Tag => "tag".into(),
            LayerSource::Path(f) => format!("path:{f}"),
            LayerSource::Default => "default".into(),
        }
    }
}

/// A model and the signature derived for it.
#[derive(Debug, Clone)]
pub struct ModelSignature {
    /// `model.<package>.<name>`.
    pub unique_id: String,
    /// The model name.
    pub name: String,
    /// `original_file_path` (relative to the dbt project).
    pub path: String,
    /// `config.materialized` (`view` when unset, as in dbt).
    pub materialized: String,
    /// The model's `unique_key` columns.
    pub unique_key: Vec<String>,
    /// The model's tags.
    pub tags: Vec<String>,
    /// Where `target_layer` came from.
    pub layer_source: LayerSource,
    /// Upstream nodes with their metadata from the catalog (the others came from the
    /// manifest).
    pub from_catalog: Vec<String>,
    /// The derived signature.
    pub signature: StateSignature,
}

/// Derives a signature for every model the selector picks, sorted by model name.
/// A `catalog` entry wins over the manifest's metadata for the dataset it names.
pub fn derive(
    manifest: &Manifest,
    catalog: Option<&Catalog>,
    selector: &Selector,
) -> Result<Vec<ModelSignature>, DbtError> {
    let mut out = manifest
        .models()
        .filter(|n| selector.matches(n))
        .map(|n| derive_model(manifest, catalog, n))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.unique_id.cmp(&b.unique_id)));
    Ok(out)
}

/// `meta` with `config.meta` over it (dbt ≥ 1.10 keeps both; older manifests one).
fn merged_meta(node: &RawNode) -> Map<String, Value> {
    let mut m = node.source_meta.clone();
    m.extend(node.meta.clone());
    m.extend(node.config.meta.clone());
    m
}

fn model_tags(node: &RawNode) -> Vec<String> {
    let mut tags = node.tags.clone();
    let extra: Vec<String> = match &node.config.tags {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    for t in extra {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

/// A string or a list of strings (`unique_key`); anything else is empty.
fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// `partition_by` columns: a column, a list of columns, `{field: …}` or a list of those.
fn partition_columns(v: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Object(o) => o
            .get("field")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned),
        _ => None,
    };
    match v {
        Value::Array(a) => a.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// How a column is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PiiMark {
    Raw,
    Treated,
    NotPii,
    Unmarked,
}

const TREATMENTS: [&str; 7] = [
    "hashed",
    "masked",
    "anonymized",
    "pseudonymized",
    "tokenized",
    "encrypted",
    "redacted",
];

fn pii_mark(col: &RawColumn) -> PiiMark {
    let pii = col.config.meta.get("pii").or_else(|| col.meta.get("pii"));
    match pii {
        Some(Value::Bool(true)) => return PiiMark::Raw,
        Some(Value::Bool(false)) => return PiiMark::NotPii,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("raw") => return PiiMark::Raw,
        Some(Value::String(s)) if TREATMENTS.iter().any(|t| s.eq_ignore_ascii_case(t)) => {
            return PiiMark::Treated;
        }
        _ => {}
    }
    if col
        .tags
        .iter()
        .chain(&col.config.tags)
        .any(|t| t.eq_ignore_ascii_case("pii"))
    {
        PiiMark::Raw
    } else {
        PiiMark::Unmarked
    }
}

fn column_name<'a>(key: &'a str, col: &'a RawColumn) -> &'a str {
    if col.name.is_empty() { key } else { &col.name }
}

fn raw_pii_columns(node: &RawNode) -> Vec<String> {
    node.columns
        .iter()
        .filter(|(_, c)| pii_mark(c) == PiiMark::Raw)
        .map(|(k, c)| column_name(k, c).to_owned())
        .collect()
}

/// The `meta.cfa` overrides of a node (an empty map when absent).
fn cfa_meta(node: &RawNode, meta: &Map<String, Value>) -> Result<Map<String, Value>, DbtError> {
    match meta.get("cfa") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(model_err(node, "meta.cfa must be a mapping")),
    }
}

fn model_err(node: &RawNode, message: impl Into<String>) -> DbtError {
    DbtError::Model {
        unique_id: node.unique_id.clone(),
        message: message.into(),
    }
}

fn layer_named(s: &str) -> Option<TargetLayer> {
    match s.to_ascii_lowercase().as_str() {
        "bronze" | "staging" | "stg" => Some(TargetLayer::Bronze),
        "silver" | "intermediate" | "int" => Some(TargetLayer::Silver),
        "gold" | "marts" | "mart" => Some(TargetLayer::Gold),
        _ => None,
    }
}

fn layer_of(
    node: &RawNode,
    meta: &Map<String, Value>,
    cfa: &Map<String, Value>,
) -> Result<(TargetLayer, LayerSource), DbtError> {
    let (key, explicit) = match (cfa.get("layer"), meta.get("layer")) {
        (Some(v), _) => ("meta.cfa.layer", Some(v)),
        (None, Some(v)) => ("meta.layer", Some(v)),
        (None, None) => ("", None),
    };
    if let Some(v) = explicit {
        let layer = v.as_str().and_then(TargetLayer::parse).ok_or_else(|| {
            model_err(
                node,
                format!("{key} must be bronze, silver or gold, not {v}"),
            )
        })?;
        return Ok((layer, LayerSource::Meta));
    }
    let tags = model_tags(node);
    for name in ["gold", "silver", "bronze"] {
        if tags.iter().any(|t| t.eq_ignore_ascii_case(name))
            && let Some(l) = TargetLayer::parse(name)
        {
            return Ok((l, LayerSource::Tag));
        }
    }
    // The folders of the model's path, innermost first (fqn: package, folders…, name).
    let folders: Vec<&String> = match node.fqn.as_slice() {
        [_, middle @ .., _] => middle.iter().rev().collect(),
        _ => Vec::new(),
    };
    for f in folders {
        if let Some(l) = layer_named(f) {
            return Ok((l, LayerSource::Path(f.clone())));
        }
    }
    Ok((TargetLayer::Silver, LayerSource::Default))
}

fn bool_override(
    node: &RawNode,
    cfa: &Map<String, Value>,
    key: &str,
) -> Result<Option<bool>, DbtError> {
    match cfa.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(model_err(
            node,
            format!("meta.cfa.{key} must be true or false, not {v}"),
        )),
    }
}

/// The dataset an upstream node stands for, and whether the catalog described it.
fn dataset_for(
    id: &str,
    upstream: Option<&RawNode>,
    catalog: Option<&Catalog>,
) -> (DatasetRef, bool) {
    let Some(up) = upstream else {
        // Not in the manifest (a disabled node): named by the last part of its id.
        let name = id.rsplit('.').next().unwrap_or(id);
        return match catalog.and_then(|c| c.dataset_ref(name)) {
            Some(d) => (d, true),
            None => (DatasetRef::new(name), false),
        };
    };
    let mut candidates: Vec<String> = Vec::new();
    if let Some(src) = &up.source_name {
        candidates.push(format!("{src}.{}", up.name));
    }
    candidates.push(up.name.clone());
    if let Some(ident) = up.identifier.as_ref().filter(|i| **i != up.name) {
        candidates.push(ident.clone());
    }
    if let Some(c) = catalog {
        for name in &candidates {
            if let Some(d) = c.dataset_ref(name) {
                return (d, true);
            }
        }
    }
    let meta = merged_meta(up);
    let mut d = DatasetRef::new(up.name.clone());
    if let Some(c) = meta
        .get("classification")
        .and_then(Value::as_str)
        .and_then(DatasetClassification::parse)
    {
        d.classification = c;
    }
    if let Some(n) = meta.get("size_gb").and_then(Value::as_number) {
        d.size_gb = n.clone();
    }
    d.partition_column = meta
        .get("partition_column")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            partition_columns(&up.config.partition_by)
                .into_iter()
                .next()
        });
    d.merge_keys = string_list(&up.config.unique_key);
    d.pii_columns = raw_pii_columns(up);
    (d, false)
}

fn derive_model(
    manifest: &Manifest,
    catalog: Option<&Catalog>,
    node: &RawNode,
) -> Result<ModelSignature, DbtError> {
    let meta = merged_meta(node);
    let cfa = cfa_meta(node, &meta)?;
    let (target_layer, layer_source) = layer_of(node, &meta, &cfa)?;

    let mut datasets: Vec<DatasetRef> = Vec::new();
    let mut from_catalog = Vec::new();
    for id in &node.depends_on.nodes {
        let upstream = manifest.node(id);
        if upstream.is_some_and(|u| {
            !matches!(
                u.resource_type.as_str(),
                "source" | "model" | "seed" | "snapshot"
            )
        }) {
            continue;
        }
        let (d, catalogued) = dataset_for(id, upstream, catalog);
        if datasets.iter().any(|have| have.name == d.name) {
            continue;
        }
        if catalogued {
            from_catalog.push(d.name.clone());
        }
        datasets.push(d);
    }

    let materialized = node
        .config
        .materialized
        .clone()
        .unwrap_or_else(|| "view".into());
    let unique_key = string_list(&node.config.unique_key);
    let merge_key_required = match bool_override(node, &cfa, "merge_key_required")? {
        Some(b) => b,
        None if materialized == "incremental" => {
            !unique_key.is_empty()
                && node
                    .config
                    .incremental_strategy
                    .as_deref()
                    .is_none_or(|s| !s.eq_ignore_ascii_case("append"))
        }
        None => true,
    };
    let enforce_types =
        bool_override(node, &cfa, "enforce_types")?.unwrap_or(node.config.contract.enforced);
    let partition_by = match cfa.get("partition_by") {
        None | Some(Value::Null) => partition_columns(&node.config.partition_by),
        Some(v) => {
            let cols = partition_columns(v);
            if cols.is_empty() && !matches!(v, Value::Array(a) if a.is_empty()) {
                return Err(model_err(
                    node,
                    format!("meta.cfa.partition_by must be a column or a list of columns, not {v}"),
                ));
            }
            cols
        }
    };
    let max_cost_dbu: Option<Number> = match cfa.get("max_cost_dbu") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.clone()),
        Some(v) => {
            return Err(model_err(
                node,
                format!("meta.cfa.max_cost_dbu must be a number, not {v}"),
            ));
        }
    };
    let no_pii_raw = match bool_override(node, &cfa, "no_pii_raw")? {
        Some(b) => b,
        None => !writes_raw_pii(node, &datasets),
    };
    let mut custom = Map::new();
    if let Some(a) = cfa.get("approval_id") {
        custom.insert("approval_id".into(), a.clone());
    }
    let text = |key: &str, default: &str| -> Result<String, DbtError> {
        match cfa.get(key) {
            None | Some(Value::Null) => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(model_err(
                node,
                format!("meta.cfa.{key} must be a string, not {v}"),
            )),
        }
    };
    let mut signature = StateSignature::from_value(&serde_json::json!({}))
        .map_err(|e| model_err(node, e.to_string()))?;
    signature.domain = text("domain", &node.package_name)?;
    signature.intent = text("intent", DBT_INTENT)?;
    signature.target_layer = target_layer;
    signature.datasets = datasets;
    signature.constraints.no_pii_raw = no_pii_raw;
    signature.constraints.merge_key_required = merge_key_required;
    signature.constraints.enforce_types = enforce_types;
    signature.constraints.partition_by = partition_by;
    signature.constraints.max_cost_dbu = max_cost_dbu;
    signature.constraints.custom = custom;
    signature.intent_id = node.unique_id.clone();
    signature.source_intent_raw =
        format!("dbt model {} ({})", node.unique_id, node.original_file_path);
    Ok(ModelSignature {
        unique_id: node.unique_id.clone(),
        name: node.name.clone(),
        path: node.original_file_path.clone(),
        materialized,
        unique_key,
        tags: model_tags(node),
        layer_source,
        from_catalog,
        signature,
    })
}

/// Whether the model writes PII untreated (see the module docs).
fn writes_raw_pii(node: &RawNode, inputs: &[DatasetRef]) -> bool {
    let input_pii: Vec<&str> = inputs
        .iter()
        .flat_map(|d| d.pii_columns.iter().map(String::as_str))
        .collect();
    if !input_pii.is_empty() && node.columns.is_empty() {
        return true;
    }
    node.columns.iter().any(|(k, c)| match pii_mark(c) {
        PiiMark::Raw => true,
        PiiMark::Unmarked => {
            let name = column_name(k, c);
            input_pii.iter().any(|p| p.eq_ignore_ascii_case(name))
        }
        PiiMark::Treated | PiiMark::NotPii => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn manifest(nodes: Value, sources: Value) -> String {
        json!({
            "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v11.json",
                         "dbt_version": "1.8.0", "project_name": "shop", "extra": 1},
            "nodes": nodes, "sources": sources, "macros": {"macro.x": {"whatever": [1, 2]}},
            "unknown_top_level": {"a": 1}
        })
        .to_string()
    }

    fn model(name: &str, folder: &str, config: Value, deps: &[&str], columns: Value) -> Value {
        json!({
            "resource_type": "model", "name": name, "package_name": "shop",
            "unique_id": format!("model.shop.{name}"),
            "original_file_path": format!("models/{folder}/{name}.sql"),
            "path": format!("{folder}/{name}.sql"),
            "fqn": ["shop", folder, name], "tags": [], "meta": {},
            "config": config, "columns": columns,
            "depends_on": {"macros": ["macro.dbt.is_incremental"], "nodes": deps}
        })
    }

    fn sources() -> Value {
        json!({
            "source.shop.erp.orders": {"resource_type": "source", "name": "orders", "source_name": "erp",
                "identifier": "orders", "meta": {"classification": "high_volume", "size_gb": 900},
                "columns": {}},
            "source.shop.erp.customers": {"resource_type": "source", "name": "customers", "source_name": "erp",
                "meta": {"classification": "sensitive"},
                "columns": {"cpf": {"name": "cpf", "meta": {"pii": true}},
                            "email": {"name": "email", "tags": ["pii"]},
                            "nome": {"name": "nome"}}}
        })
    }

    fn one(text: &str) -> ModelSignature {
        let m = Manifest::from_json_str(text).unwrap();
        let mut v = derive(&m, None, &Selector::all()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn an_incremental_model_with_a_key_a_partition_and_hashed_pii() {
        let text = manifest(
            json!({"model.shop.fact": model("fact", "silver",
                json!({"materialized": "incremental", "unique_key": ["order_id"],
                       "partition_by": {"field": "day", "data_type": "date"},
                       "contract": {"enforced": true}}),
                &["source.shop.erp.orders", "source.shop.erp.customers", "model.shop.gone"],
                json!({"order_id": {"name": "order_id"},
                       "cpf_hash": {"name": "cpf_hash", "meta": {"pii": "hashed"}}}))}),
            sources(),
        );
        let m = Manifest::from_json_str(&text).unwrap();
        assert_eq!(m.schema_version(), 11);
        assert_eq!(m.dbt_version(), Some("1.8.0"));
        assert_eq!(m.project_name(), Some("shop"));
        let s = one(&text);
        let sig = &s.signature;
        assert_eq!(sig.target_layer, TargetLayer::Silver);
        assert_eq!(s.layer_source, LayerSource::Path("silver".into()));
        let names: Vec<&str> = sig.datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["orders", "customers", "gone"]);
        assert_eq!(
            sig.datasets[0].classification,
            DatasetClassification::HighVolume
        );
        assert_eq!(sig.datasets[0].size_gb, Number::from(900));
        assert_eq!(sig.datasets[1].pii_columns, ["cpf", "email"]);
        assert!(sig.constraints.no_pii_raw);
        assert!(sig.constraints.merge_key_required);
        assert!(sig.constraints.enforce_types);
        assert_eq!(sig.constraints.partition_by, ["day"]);
        assert_eq!(s.unique_key, ["order_id"]);
        assert_eq!(sig.intent_id, "model.shop.fact");
        assert_eq!(sig.intent, DBT_INTENT);
        assert_eq!(sig.domain, "shop");
        assert!(s.from_catalog.is_empty());
    }

    #[test]
    fn raw_pii_is_found_by_mark_by_name_and_by_silence() {
        let cfg = json!({"materialized": "table"});
        let deps = ["source.shop.erp.customers"];
        for (columns, raw) in [
            (json!({"cpf": {"name": "cpf"}}), true), // an input PII column, untreated
            (
                json!({"doc": {"name": "doc", "meta": {"pii": "raw"}}}),
                true,
            ),
            (
                json!({"doc": {"name": "doc", "config": {"tags": ["PII"]}}}),
                true,
            ),
            (json!({}), true), // PII inputs, nothing documented
            (
                json!({"cpf": {"name": "cpf", "meta": {"pii": "masked"}}}),
                false,
            ),
            (json!({"nome": {"name": "nome"}}), false),
            (
                json!({"cpf": {"name": "cpf", "config": {"meta": {"pii": false}}}}),
                false,
            ),
        ] {
            let s = one(&manifest(
                json!({"model.shop.m": model("m", "gold", cfg.clone(), &deps, columns.clone())}),
                sources(),
            ));
            assert_eq!(s.signature.constraints.no_pii_raw, !raw, "{columns}");
            assert_eq!(s.signature.target_layer, TargetLayer::Gold);
        }
        // No PII upstream and no columns: nothing to protect.
        let s = one(&manifest(
            json!({"model.shop.m": model("m", "gold", cfg, &["source.shop.erp.orders"], json!({}))}),
            sources(),
        ));
        assert!(s.signature.constraints.no_pii_raw);
    }

    #[test]
    fn merge_keys_follow_materialization_and_strategy() {
        for (config, required) in [
            (json!({"materialized": "incremental"}), false),
            (
                json!({"materialized": "incremental", "unique_key": "id"}),
                true,
            ),
            (
                json!({"materialized": "incremental", "unique_key": "id", "incremental_strategy": "append"}),
                false,
            ),
            (json!({"materialized": "table"}), true),
            (json!({}), true),
            (
                json!({"materialized": "incremental", "meta": {"cfa": {"merge_key_required": true}}}),
                true,
            ),
        ] {
            let s = one(&manifest(
                json!({"model.shop.m": model("m", "x", config.clone(), &[], json!({}))}),
                json!({}),
            ));
            assert_eq!(
                s.signature.constraints.merge_key_required, required,
                "{config}"
            );
            assert!(!s.signature.constraints.enforce_types);
            assert_eq!(s.layer_source, LayerSource::Default);
        }
    }

    #[test]
    fn layers_from_meta_tags_and_folders() {
        for (cfg, tags, folder, layer, source) in [
            (
                json!({"meta": {"cfa": {"layer": "gold"}}}),
                json!(["silver"]),
                "staging",
                "gold",
                "meta",
            ),
            (
                json!({"meta": {"layer": "bronze"}}),
                json!([]),
                "marts",
                "bronze",
                "meta",
            ),
            (
                json!({"tags": ["Gold"]}),
                json!([]),
                "staging",
                "gold",
                "tag",
            ),
            (json!({}), json!(["bronze"]), "marts", "bronze", "tag"),
            (json!({}), json!([]), "staging", "bronze", "path:staging"),
            (
                json!({}),
                json!([]),
                "intermediate",
                "silver",
                "path:intermediate",
            ),
            (json!({}), json!([]), "marts", "gold", "path:marts"),
            (json!({}), json!([]), "reports", "silver", "default"),
        ] {
            let mut node = model("m", folder, cfg.clone(), &[], json!({}));
            node["tags"] = tags;
            let s = one(&manifest(json!({"model.shop.m": node}), json!({})));
            assert_eq!(s.signature.target_layer.as_str(), layer, "{cfg} {folder}");
            assert_eq!(s.layer_source.describe(), source, "{cfg} {folder}");
        }
        let bad = manifest(
            json!({"model.shop.m": model("m", "x", json!({"meta": {"cfa": {"layer": "platinum"}}}), &[], json!({}))}),
            json!({}),
        );
        let e = derive(
            &Manifest::from_json_str(&bad).unwrap(),
            None,
            &Selector::all(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("model.shop.m: meta.cfa.layer must be"),
            "{e}"
        );
    }

    #[test]
    fn meta_cfa_overrides_and_catalog_wins() {
        let cfg = json!({"materialized": "table", "meta": {"cfa": {
            "partition_by": ["d1", "d2"], "max_cost_dbu": 12.5, "approval_id": "CHG-1",
            "domain": "sales", "intent": "aggregate", "enforce_types": true, "no_pii_raw": true}}});
        let text = manifest(
            json!({"model.shop.m": model("m", "gold", cfg, &["source.shop.erp.customers", "source.shop.erp.orders"], json!({"cpf": {}}))}),
            sources(),
        );
        let catalog = Catalog::from_value(&json!({"datasets": {
            "erp.customers": {"classification": "public"},
            "orders": {"classification": "internal", "merge_keys": ["order_id"]}}}))
        .unwrap();
        let m = Manifest::from_json_str(&text).unwrap();
        let s = derive(&m, Some(&catalog), &Selector::all())
            .unwrap()
            .remove(0);
        let sig = &s.signature;
        assert_eq!(sig.constraints.partition_by, ["d1", "d2"]);
        assert_eq!(sig.constraints.max_cost_dbu_f64(), Some(12.5));
        assert_eq!(sig.constraints.custom["approval_id"], "CHG-1");
        assert_eq!(
            (sig.domain.as_str(), sig.intent.as_str()),
            ("sales", "aggregate")
        );
        assert!(sig.constraints.no_pii_raw && sig.constraints.enforce_types);
        assert_eq!(sig.datasets[0].name, "erp.customers");
        assert_eq!(
            sig.datasets[0].classification,
            DatasetClassification::Public
        );
        assert!(sig.datasets[0].pii_columns.is_empty());
        assert_eq!(sig.datasets[1].merge_keys, ["order_id"]);
        assert_eq!(s.from_catalog, ["erp.customers", "orders"]);
        for (cfa, says) in [
            (
                json!({"max_cost_dbu": "ten"}),
                "max_cost_dbu must be a number",
            ),
            (
                json!({"no_pii_raw": "yes"}),
                "no_pii_raw must be true or false",
            ),
            (json!({"partition_by": 3}), "partition_by must be a column"),
            (json!({"domain": 3}), "domain must be a string"),
        ] {
            let text = manifest(
                json!({"model.shop.m": model("m", "x", json!({"meta": {"cfa": cfa}}), &[], json!({}))}),
                json!({}),
            );
            let e = derive(
                &Manifest::from_json_str(&text).unwrap(),
                None,
                &Selector::all(),
            )
            .unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn upstream_models_bring_their_keys_partition_and_pii() {
        let up = model(
            "stg",
            "staging",
            json!({"materialized": "incremental", "unique_key": "id", "partition_by": ["day"],
                   "meta": {"classification": "sensitive"}}),
            &[],
            json!({"tax_id": {"name": "tax_id", "meta": {"pii": true}}}),
        );
        let down = model(
            "fact",
            "silver",
            json!({}),
            &["model.shop.stg"],
            json!({"id": {}}),
        );
        let text = manifest(
            json!({"model.shop.stg": up, "model.shop.fact": down,
            "test.shop.not_null": {"resource_type": "test", "name": "not_null"}}),
            json!({}),
        );
        let m = Manifest::from_json_str(&text).unwrap();
        assert_eq!(m.model_count(), 2);
        let all = derive(&m, None, &Selector::all()).unwrap();
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fact", "stg"]);
        let d = &all[0].signature.datasets[0];
        assert_eq!(d.name, "stg");
        assert_eq!(d.merge_keys, ["id"]);
        assert_eq!(d.partition_column.as_deref(), Some("day"));
        assert_eq!(d.classification, DatasetClassification::Sensitive);
        assert_eq!(d.pii_columns, ["tax_id"]);
        assert!(all[0].signature.constraints.no_pii_raw);
    }

    #[test]
    fn selectors_by_name_tag_and_path() {
        let mut a = model(
            "silver_a",
            "silver",
            json!({"tags": ["finance"]}),
            &[],
            json!({}),
        );
        a["tags"] = json!(["nightly"]);
        let b = model("silver_b", "silver/sub", json!({}), &[], json!({}));
        let c = model("gold_c", "marts", json!({}), &[], json!({}));
        let text = manifest(
            json!({"model.shop.silver_a": a, "model.shop.silver_b": b, "model.shop.gold_c": c}),
            json!({}),
        );
        let m = Manifest::from_json_str(&text).unwrap();
        let pick = |sel: &[&str]| -> Vec<String> {
            derive(&m, None, &Selector::parse(sel).unwrap())
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(pick(&[]), ["gold_c", "silver_a", "silver_b"]);
        assert_eq!(pick(&["silver_*"]), ["silver_a", "silver_b"]);
        assert_eq!(
            pick(&["gold_c model.shop.silver_b"]),
            ["gold_c", "silver_b"]
        );
        assert_eq!(pick(&["tag:finance", "tag:nightly"]), ["silver_a"]);
        assert_eq!(pick(&["path:models/silver"]), ["silver_a", "silver_b"]);
        assert_eq!(pick(&["path:silver/sub/"]), ["silver_b"]);
        assert_eq!(pick(&["path:models/*/*.sql"]), ["gold_c", "silver_a"]);
        assert_eq!(
            pick(&["path:models/**/*.sql"]),
            ["gold_c", "silver_a", "silver_b"]
        );
        assert_eq!(pick(&["path:models/sil"]), Vec::<String>::new());
        assert_eq!(pick(&["tag:none gold_?"]), ["gold_c"]);
        for bad in ["config:x", "tag:", "path:", "a,b", "+a", "a+", "@a"] {
            let e = Selector::parse(&[bad]).unwrap_err();
            assert!(matches!(e, DbtError::Selector { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn glob_rules() {
        assert!(glob_match("a*c", "abbc"));
        assert!(!glob_match("a*c", "ab/c"));
        assert!(glob_match("a/**/c", "a/c"));
        assert!(glob_match("a/**/c", "a/x/y/c"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a/c"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("abc", "abcd"));
    }

    #[test]
    fn malformed_and_foreign_manifests_are_located_errors() {
        let e = Manifest::from_json_str("{\n  \"metadata\": {,\n}").unwrap_err();
        match &e {
            DbtError::Json { line, column, .. } => assert_eq!((*line, *column), (2, 16), "{e}"),
            other => panic!("{other:?}"),
        }
        let e = Manifest::from_json_str("{\"metadata\": {\"dbt_schema_version\": \"https://schemas.getdbt.com/dbt/manifest/v12.json\"},\n \"nodes\": 3}").unwrap_err();
        assert!(matches!(e, DbtError::Json { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert_eq!(
            Manifest::from_json_str("{}").unwrap_err(),
            DbtError::NotAManifest
        );
        for v in ["v9", "v13", "nonsense"] {
            let text = format!(
                "{{\"metadata\": {{\"dbt_schema_version\": \"https://schemas.getdbt.com/dbt/manifest/{v}.json\"}}}}"
            );
            assert!(
                matches!(
                    Manifest::from_json_str(&text),
                    Err(DbtError::UnsupportedVersion { .. })
                ),
                "{v}"
            );
        }
        for v in ["v10", "v12"] {
            let text = format!(
                "{{\"metadata\": {{\"dbt_schema_version\": \"https://schemas.getdbt.com/dbt/manifest/{v}.json\"}}}}"
            );
            assert_eq!(Manifest::from_json_str(&text).unwrap().model_count(), 0);
        }
    }
}
