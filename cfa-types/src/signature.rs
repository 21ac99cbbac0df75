//! `StateSignature` and its parts (docs/compatibility.md#signature-json): the typed form of an
//! intent, its JSON shape, lenient reading, and its hashes.

use crate::canonical::{self, Style};
use crate::enums::{DatasetClassification, TargetLayer};
use crate::fault::{Patch, PatchOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// How many payloads (and their hashes) each thread remembers per hash kind: enough
/// for the few signatures one process alternates between (each run's signature and
/// its replans), small enough that a lookup is a handful of length checks.
const RECENT_HASHES: usize = 8;

/// Longer payloads are hashed every time, so a thread's memory for them stays bounded
/// (`RECENT_HASHES` × this, per hash kind).
const MAX_REMEMBERED_PAYLOAD: usize = 16 * 1024;

/// The last [`RECENT_HASHES`] payload texts hashed on one thread, with their hashes,
/// reused only for a byte-equal payload (docs/architecture.md#performance-gates).
struct RecentHashes {
    entries: [Option<(String, String)>; RECENT_HASHES],
    /// The slot the next new payload replaces (round robin).
    next: usize,
}

impl RecentHashes {
    const fn new() -> Self {
        RecentHashes {
            entries: [const { None }; RECENT_HASHES],
            next: 0,
        }
    }

    /// The hash of `payload`: the remembered one when an equal payload was hashed on
    /// this thread recently, else `compute(payload)`, remembered.
    fn get_or(&mut self, payload: String, compute: impl FnOnce(&str) -> String) -> String {
        let hit = self
            .entries
            .iter()
            .flatten()
            .find(|(text, _)| *text == payload);
        if let Some((_, hash)) = hit {
            return hash.clone();
        }
        let hash = compute(&payload);
        if payload.len() > MAX_REMEMBERED_PAYLOAD {
            return hash;
        }
        if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = Some((payload, hash.clone()));
        }
        self.next = (self.next + 1) % RECENT_HASHES;
        hash
    }
}

/// A thread's [`RecentHashes`], on the heap from its first use: the thread-local slot
/// stays two words, so the Python extension's thread-local block stays small enough
/// for the static TLS a `dlopen`ed module gets (docs/development.md, "the Python
/// extension's thread-local storage").
type RecentSlot = std::cell::RefCell<Option<Box<RecentHashes>>>;

thread_local! {
    /// Recent [`StateSignature::signature_hash_payload`] texts hashed on this thread
    /// (see [`StateSignature::signature_hash`]).
    static SIGNATURE_HASHES: RecentSlot = const { std::cell::RefCell::new(None) };
    /// Recent [`StateSignature::content_payload_text`] texts hashed on this thread
    /// (see [`StateSignature::content_hash`]).
    static CONTENT_HASHES: RecentSlot = const { std::cell::RefCell::new(None) };
}

/// `compute(payload)` through the thread's `cache` (uncached when it is borrowed).
fn recent_hash(
    cache: &'static std::thread::LocalKey<RecentSlot>,
    payload: String,
    compute: fn(&str) -> String,
) -> String {
    cache.with(|cell| match cell.try_borrow_mut() {
        Ok(mut recent) => recent
            .get_or_insert_with(|| Box::new(RecentHashes::new()))
            .get_or(payload, compute),
        Err(_) => compute(&payload),
    })
}

/// SHA-256 (lowercase hex) of a `signature_hash` payload, uncached.
fn signature_hash_of(payload: &str) -> String {
    canonical::hex_lower(&Sha256::digest(payload.as_bytes()))
}

/// SHA-256 (lowercase hex) of a `content_hash` payload, uncached.
fn content_hash_of(payload: &str) -> String {
    canonical::sha256_hex(payload.as_bytes())
}

/// A dataset the intent reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// Catalog name.
    pub name: String,
    /// Classification (default `internal`).
    pub classification: DatasetClassification,
    /// Size in GB. Keeps JSON's int/float distinction (`4000` stays `4000`).
    pub size_gb: Number,
    /// Columns holding PII; non-empty means the dataset contains PII.
    pub pii_columns: Vec<String>,
    /// The dataset's partition column, if any.
    pub partition_column: Option<String>,
    /// Merge keys.
    pub merge_keys: Vec<String>,
}

impl DatasetRef {
    /// A dataset with the reference defaults (`internal`, `0.0` GB, no PII, no keys).
    pub fn new(name: impl Into<String>) -> Self {
        DatasetRef {
            name: name.into(),
            classification: DatasetClassification::Internal,
            size_gb: float_number(0.0),
            pii_columns: Vec::new(),
            partition_column: None,
            merge_keys: Vec::new(),
        }
    }

    /// True when the dataset declares PII columns.
    pub fn contains_pii(&self) -> bool {
        !self.pii_columns.is_empty()
    }

    /// The join key: the first merge key, or `"id"`.
    pub fn join_key(&self) -> &str {
        self.merge_keys.first().map_or("id", String::as_str)
    }

    /// `size_gb` as a float.
    pub fn size_gb_f64(&self) -> f64 {
        self.size_gb.as_f64().unwrap_or(0.0)
    }
}

/// Constraints the caller declares for the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureConstraints {
    /// Raw PII must not be written.
    pub no_pii_raw: bool,
    /// Writes must merge on keys rather than append.
    pub merge_key_required: bool,
    /// Types are enforced on write.
    pub enforce_types: bool,
    /// Partition filter columns.
    pub partition_by: Vec<String>,
    /// Cost ceiling in DBU.
    pub max_cost_dbu: Option<Number>,
    /// Free-form extra constraints (e.g. `approval_id`).
    pub custom: Map<String, Value>,
}

impl Default for SignatureConstraints {
    fn default() -> Self {
        SignatureConstraints {
            no_pii_raw: true,
            merge_key_required: true,
            enforce_types: true,
            partition_by: Vec::new(),
            max_cost_dbu: None,
            custom: Map::new(),
        }
    }
}

impl SignatureConstraints {
    /// `max_cost_dbu` as a float.
    pub fn max_cost_dbu_f64(&self) -> Option<f64> {
        self.max_cost_dbu.as_ref().and_then(Number::as_f64)
    }
}

/// Versions of the governance artifacts the signature was formed against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionContext {
    /// Policy bundle version label.
    pub policy_bundle_version: String,
    /// Catalog snapshot version.
    pub catalog_snapshot_version: String,
    /// Context registry version id.
    pub context_registry_version_id: String,
}

impl Default for ExecutionContext {
    fn default() -> Self {
        ExecutionContext {
            policy_bundle_version: "unknown".into(),
            catalog_snapshot_version: "unknown".into(),
            context_registry_version_id: "unknown".into(),
        }
    }
}

/// The typed form of an intent. Serialises in the reference's exact key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSignature {
    /// Business domain.
    pub domain: String,
    /// Operation label, e.g. `reconciliation_and_persist`.
    pub intent: String,
    /// Layer written to.
    pub target_layer: TargetLayer,
    /// Datasets read.
    pub datasets: Vec<DatasetRef>,
    /// Declared constraints.
    pub constraints: SignatureConstraints,
    /// Artifact versions.
    pub execution_context: ExecutionContext,
    /// Opaque id of the intent.
    pub intent_id: String,
    /// The raw intent text, if the signature came from text.
    pub source_intent_raw: String,
}

/// Why a JSON value could not be read as a signature (lenient reading).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The value is not a JSON object.
    #[error("signature must be a JSON object")]
    NotAnObject,
    /// A field has a type the reader cannot use.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// The text is not JSON.
    #[error("signature is not valid JSON: {0}")]
    Json(String),
}

/// A field with an unusable type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Dotted path, e.g. `datasets[0].name`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn field_err(path: impl Into<String>, message: impl Into<String>) -> SignatureError {
    SignatureError::Field(FieldError {
        path: path.into(),
        message: message.into(),
    })
}

/// Why a [`Patch`] could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot apply patch to '{path}': {reason}")]
pub struct PatchError {
    /// The patch path.
    pub path: String,
    /// Why.
    pub reason: String,
}

pub(crate) fn float_number(x: f64) -> Number {
    Number::from_f64(x).unwrap_or_else(|| Number::from(0))
}

fn opt_str(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    default: &str,
) -> Result<String, SignatureError> {
    match obj.get(key) {
        None => Ok(default.to_owned()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(field_err(path, "must be a string")),
    }
}

fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    default: bool,
) -> Result<bool, SignatureError> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(field_err(path, "must be a boolean")),
    }
}

fn str_list(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Vec<String>, SignatureError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(field_err(path, "must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(field_err(path, "must be a list of strings")),
    }
}

fn number(v: &Value, path: &str) -> Result<Number, SignatureError> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        _ => Err(field_err(path, "must be a number")),
    }
}

impl DatasetRef {
    /// Reads a dataset leniently (reference `DatasetRef.from_dict`): only `name` is
    /// required; an unknown classification becomes `internal`.
    pub fn from_value(v: &Value, path: &str) -> Result<Self, SignatureError> {
        let obj = v
            .as_object()
            .ok_or_else(|| field_err(path, "must be an object"))?;
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(field_err(format!("{path}.name"), "must be a string")),
            None => return Err(field_err(format!("{path}.name"), "is required")),
        };
        let classification = match obj.get("classification") {
            Some(Value::String(s)) => {
                DatasetClassification::parse(s).unwrap_or(DatasetClassification::Internal)
            }
            _ => DatasetClassification::Internal,
        };
        let size_gb = match obj.get("size_gb") {
            None => float_number(0.0),
            Some(v) => number(v, &format!("{path}.size_gb"))?,
        };
        let partition_column = match obj.get("partition_column") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(field_err(
                    format!("{path}.partition_column"),
                    "must be a string or null",
                ));
            }
        };
        Ok(DatasetRef {
            name,
            classification,
            size_gb,
            pii_columns: str_list(obj, "pii_columns", &format!("{path}.pii_columns"))?,
            partition_column,
            merge_keys: str_list(obj, "merge_keys", &format!("{path}.merge_keys"))?,
        })
    }
}

impl SignatureConstraints {
    /// Reads constraints leniently; missing keys take the defaults of docs/compatibility.md#signature-defaults.
    pub fn from_value(v: &Value) -> Result<Self, SignatureError> {
        let obj = match v {
            Value::Null => return Ok(Self::default()),
            Value::Object(o) => o,
            _ => return Err(field_err("constraints", "must be an object")),
        };
        let max_cost_dbu = match obj.get("max_cost_dbu") {
            None | Some(Value::Null) => None,
            Some(v) => Some(number(v, "constraints.max_cost_dbu")?),
        };
        let custom = match obj.get("custom") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(field_err("constraints.custom", "must be an object")),
        };
        Ok(SignatureConstraints {
            no_pii_raw: opt_bool(obj, "no_pii_raw", "constraints.no_pii_raw", true)?,
            merge_key_required: opt_bool(
                obj,
                "merge_key_required",
                "constraints.merge_key_required",
                true,
            )?,
            enforce_types: opt_bool(obj, "enforce_types", "constraints.enforce_types", true)?,
            partition_by: str_list(obj, "partition_by", "constraints.partition_by")?,
            max_cost_dbu,
            custom,
        })
    }
}

impl StateSignature {
    /// Whether `self` and `other` are equal in every field but `intent_id`: then every
    /// pure function of a signature that does not read its id (its hashes, its plan but
    /// the plan's own `intent_id`) gives the same answer for both. The destructuring is
    /// exhaustive, so a new field has to be placed on one side or the other here.
    ///
    /// ```
    /// # use cfa_types::StateSignature;
    /// # let sig: StateSignature = serde_json::from_str(include_str!("../../examples/signatures/ok.json")).unwrap();
    /// let mut other = sig.clone();
    /// other.intent_id = "another run".into();
    /// assert!(sig.eq_but_intent_id(&other));
    /// other.domain = "another domain".into();
    /// assert!(!sig.eq_but_intent_id(&other));
    /// ```
    pub fn eq_but_intent_id(&self, other: &StateSignature) -> bool {
        let StateSignature {
            domain,
            intent,
            target_layer,
            datasets,
            constraints,
            execution_context,
            intent_id: _,
            source_intent_raw,
        } = self;
        *domain == other.domain
            && *intent == other.intent
            && *target_layer == other.target_layer
            && *datasets == other.datasets
            && *constraints == other.constraints
            && *execution_context == other.execution_context
            && *source_intent_raw == other.source_intent_raw
    }

    /// Reads a signature leniently, with the reference's `from_dict` semantics:
    /// every key is optional (`domain`/`intent` default to `""`, `target_layer` to
    /// `silver`, context strings to `"unknown"`); an unknown layer becomes `silver`
    /// and an unknown classification `internal`; unknown keys are ignored.
    ///
    /// A missing `intent_id` is left empty: ids are injected by the caller
    /// (see [`StateSignature::with_intent_id`]), never invented here.
    pub fn from_value(v: &Value) -> Result<Self, SignatureError> {
        let obj = v.as_object().ok_or(SignatureError::NotAnObject)?;
        let target_layer = match obj.get("target_layer") {
            Some(Value::String(s)) => TargetLayer::parse(s).unwrap_or(TargetLayer::Silver),
            _ => TargetLayer::Silver,
        };
        let datasets = match obj.get("datasets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, d)| DatasetRef::from_value(d, &format!("datasets[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(field_err("datasets", "must be a list")),
        };
        let constraints = match obj.get("constraints") {
            None => SignatureConstraints::default(),
            Some(c) => SignatureConstraints::from_value(c)?,
        };
        let execution_context = match obj.get("execution_context") {
            None | Some(Value::Null) => ExecutionContext::default(),
            Some(Value::Object(ec)) => ExecutionContext {
                policy_bundle_version: opt_str(
                    ec,
                    "policy_bundle_version",
                    "execution_context.policy_bundle_version",
                    "unknown",
                )?,
                catalog_snapshot_version: opt_str(
                    ec,
                    "catalog_snapshot_version",
                    "execution_context.catalog_snapshot_version",
                    "unknown",
                )?,
                context_registry_version_id: opt_str(
                    ec,
                    "context_registry_version_id",
                    "execution_context.context_registry_version_id",
                    "unknown",
                )?,
            },
            Some(_) => return Err(field_err("execution_context", "must be an object")),
        };
        Ok(StateSignature {
            domain: opt_str(obj, "domain", "domain", "")?,
            intent: opt_str(obj, "intent", "intent", "")?,
            target_layer,
            datasets,
            constraints,
            execution_context,
            intent_id: opt_str(obj, "intent_id", "intent_id", "")?,
            source_intent_raw: opt_str(obj, "source_intent_raw", "source_intent_raw", "")?,
        })
    }

    /// Parses JSON text and reads it leniently (see [`StateSignature::from_value`]).
    pub fn from_json_str(text: &str) -> Result<Self, SignatureError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| SignatureError::Json(e.to_string()))?;
        Self::from_value(&v)
    }

    /// The reference `to_dict()` shape as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Returns the signature with `intent_id` set.
    pub fn with_intent_id(mut self, id: impl Into<String>) -> Self {
        self.intent_id = id.into();
        self
    }

    /// True when any dataset declares PII.
    pub fn contains_pii(&self) -> bool {
        self.datasets.iter().any(DatasetRef::contains_pii)
    }

    /// True when the target layer is silver or gold.
    pub fn writes_to_protected_layer(&self) -> bool {
        self.target_layer.is_protected()
    }

    /// `{layer}_{dataset}` for one dataset, otherwise `{layer}_{domain}`.
    pub fn target_dataset_name(&self) -> String {
        match self.datasets.as_slice() {
            [only] => format!("{}_{}", self.target_layer, only.name),
            _ => format!("{}_{}", self.target_layer, self.domain),
        }
    }

    /// The exact text the reference hashes for `signature_hash` (docs/compatibility.md#signature_hash).
    pub fn signature_hash_payload(&self) -> String {
        let mut names: Vec<&str> = self.datasets.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        let mut parts: Vec<&str> = self
            .constraints
            .partition_by
            .iter()
            .map(String::as_str)
            .collect();
        parts.sort_unstable();
        let mut out = String::with_capacity(256);
        out.push_str("{\"constraints\": {\"merge_key_required\": ");
        out.push_str(bool_str(self.constraints.merge_key_required));
        out.push_str(", \"no_pii_raw\": ");
        out.push_str(bool_str(self.constraints.no_pii_raw));
        out.push_str(", \"partition_by\": ");
        write_str_list(&mut out, &parts);
        out.push_str("}, \"datasets\": ");
        write_str_list(&mut out, &names);
        out.push_str(", \"domain\": ");
        canonical::write_str(&mut out, &self.domain, true);
        out.push_str(", \"intent\": ");
        canonical::write_str(&mut out, &self.intent, true);
        out.push_str(", \"target_layer\": ");
        canonical::write_str(&mut out, self.target_layer.as_str(), true);
        out.push('}');
        out
    }

    /// The reference-compatible `signature_hash`: identifies a recurring intent
    /// (domain, intent, layer, dataset names, three constraints). It does not cover
    /// every decision-relevant field; see [`StateSignature::content_hash`].
    ///
    /// One run hashes the same signature several times (kernel, planner, lifecycle), and
    /// a process alternates between a few signatures, so each thread keeps its last few
    /// payloads and their hashes and reuses a hash only when the payload text is
    /// byte-equal (docs/architecture.md#performance-gates).
    pub fn signature_hash(&self) -> String {
        recent_hash(
            &SIGNATURE_HASHES,
            self.signature_hash_payload(),
            signature_hash_of,
        )
    }

    /// The canonical value behind [`StateSignature::content_hash`]: domain, intent,
    /// layer, every constraint, and every dataset field, with datasets sorted by
    /// their canonical text so that dataset order does not matter. `intent_id`,
    /// `source_intent_raw` and `execution_context` are left out: they do not change
    /// a decision.
    pub fn content_payload(&self) -> Value {
        let mut datasets: Vec<(String, Value)> = self
            .datasets
            .iter()
            .map(|d| {
                let v = serde_json::to_value(d).unwrap_or(Value::Null);
                (canonical::canonical_string(&v), v)
            })
            .collect();
        datasets.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = Map::new();
        m.insert(
            "constraints".into(),
            serde_json::to_value(&self.constraints).unwrap_or(Value::Null),
        );
        m.insert(
            "datasets".into(),
            Value::Array(datasets.into_iter().map(|(_, v)| v).collect()),
        );
        m.insert("domain".into(), Value::String(self.domain.clone()));
        m.insert("intent".into(), Value::String(self.intent.clone()));
        m.insert(
            "target_layer".into(),
            Value::String(self.target_layer.as_str().into()),
        );
        Value::Object(m)
    }

    /// SHA-256 over every decision-relevant field (docs/differences.md#b4-content_hash-beside-signature_hash): two signatures with
    /// the same `content_hash` always get the same decision from the same bundle.
    ///
    /// Like [`StateSignature::signature_hash`], each thread reuses the hash of its last
    /// few byte-equal payload texts.
    pub fn content_hash(&self) -> String {
        recent_hash(
            &CONTENT_HASHES,
            self.content_payload_text(),
            content_hash_of,
        )
    }

    /// The canonical (`Style::SortedAscii`) text of [`StateSignature::content_payload`],
    /// written straight from the typed fields: the same bytes as rendering the payload
    /// value, without building it (the kernel hashes it on every run and replan).
    /// Keys are written in sorted order by hand; the unit tests compare both paths.
    pub fn content_payload_text(&self) -> String {
        let mut datasets: Vec<String> = self.datasets.iter().map(dataset_canonical).collect();
        datasets.sort_unstable();
        let c = &self.constraints;
        let mut out = String::with_capacity(
            256 + datasets.iter().map(String::len).sum::<usize>() + 2 * datasets.len(),
        );
        out.push_str("{\"constraints\": {\"custom\": {");
        // Custom values are arbitrary JSON: keys sorted here, values by the generic writer.
        let mut custom: Vec<(&String, &Value)> = c.custom.iter().collect();
        custom.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (i, (key, value)) in custom.into_iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            canonical::write_str(&mut out, key, true);
            out.push_str(": ");
            canonical::write_value(&mut out, value, Style::SortedAscii);
        }
        out.push('}');
        out.push_str(", \"enforce_types\": ");
        out.push_str(bool_str(c.enforce_types));
        out.push_str(", \"max_cost_dbu\": ");
        match &c.max_cost_dbu {
            Some(n) => canonical::write_number(&mut out, n),
            None => out.push_str("null"),
        }
        out.push_str(", \"merge_key_required\": ");
        out.push_str(bool_str(c.merge_key_required));
        out.push_str(", \"no_pii_raw\": ");
        out.push_str(bool_str(c.no_pii_raw));
        out.push_str(", \"partition_by\": ");
        write_owned_str_list(&mut out, &c.partition_by);
        out.push_str("}, \"datasets\": [");
        for (i, d) in datasets.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(d);
        }
        out.push_str("], \"domain\": ");
        canonical::write_str(&mut out, &self.domain, true);
        out.push_str(", \"intent\": ");
        canonical::write_str(&mut out, &self.intent, true);
        out.push_str(", \"target_layer\": ");
        canonical::write_str(&mut out, self.target_layer.as_str(), true);
        out.push('}');
        out
    }

    /// Returns a copy with `patch` applied. Patchable paths:
    /// `constraints.no_pii_raw`, `constraints.merge_key_required`,
    /// `constraints.enforce_types` (booleans), `constraints.partition_by` (list of
    /// non-empty strings), `constraints.max_cost_dbu` (non-negative number or null),
    /// and `constraints.custom.<key>` (any value).
    pub fn apply_patch(&self, patch: &Patch) -> Result<StateSignature, PatchError> {
        let mut next = self.clone();
        next.apply_patch_in_place(patch)?;
        Ok(next)
    }

    /// Applies every patch in order; on error nothing is changed.
    pub fn apply_patches(&self, patches: &[Patch]) -> Result<StateSignature, PatchError> {
        let mut next = self.clone();
        for p in patches {
            next.apply_patch_in_place(p)?;
        }
        Ok(next)
    }

    fn apply_patch_in_place(&mut self, patch: &Patch) -> Result<(), PatchError> {
        let err = |reason: &str| PatchError {
            path: patch.path.to_string(),
            reason: reason.to_owned(),
        };
        let PatchOp::Set = patch.op;
        let c = &mut self.constraints;
        match patch.path.as_str() {
            "constraints.no_pii_raw"
            | "constraints.merge_key_required"
            | "constraints.enforce_types" => {
                let b = patch
                    .value
                    .as_bool()
                    .ok_or_else(|| err("value must be a boolean"))?;
                match patch.path.as_str() {
                    "constraints.no_pii_raw" => c.no_pii_raw = b,
                    "constraints.merge_key_required" => c.merge_key_required = b,
                    _ => c.enforce_types = b,
                }
            }
            "constraints.partition_by" => {
                let blank = || err("value must contain only non-empty strings");
                c.partition_by = match patch.value.as_single_string() {
                    // The common one-column fix, read without building its JSON.
                    Some(s) if !s.trim().is_empty() => vec![s.to_owned()],
                    Some(_) => return Err(blank()),
                    None => {
                        let value = patch.value.as_value();
                        let items = value
                            .as_array()
                            .ok_or_else(|| err("value must be a list of strings"))?;
                        let mut cols = Vec::with_capacity(items.len());
                        for item in items {
                            match item.as_str() {
                                Some(s) if !s.trim().is_empty() => cols.push(s.to_owned()),
                                _ => return Err(blank()),
                            }
                        }
                        cols
                    }
                };
            }
            "constraints.max_cost_dbu" => match &*patch.value.as_value() {
                Value::Null => c.max_cost_dbu = None,
                Value::Number(n) if n.as_f64().is_some_and(|x| x >= 0.0) => {
                    c.max_cost_dbu = Some(n.clone());
                }
                _ => return Err(err("value must be a non-negative number or null")),
            },
            path => match path.strip_prefix("constraints.custom.") {
                Some(key) if !key.is_empty() => {
                    c.custom
                        .insert(key.to_owned(), patch.value.as_value().into_owned());
                }
                _ => return Err(err("path is not patchable")),
            },
        }
        Ok(())
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn write_owned_str_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        canonical::write_str(out, s, true);
    }
    out.push(']');
}

/// The canonical (`Style::SortedAscii`) text of one dataset's JSON shape, keys sorted:
/// `classification`, `merge_keys`, `name`, `partition_column`, `pii_columns`, `size_gb`.
fn dataset_canonical(d: &DatasetRef) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"classification\": ");
    canonical::write_str(&mut out, d.classification.as_str(), true);
    out.push_str(", \"merge_keys\": ");
    write_owned_str_list(&mut out, &d.merge_keys);
    out.push_str(", \"name\": ");
    canonical::write_str(&mut out, &d.name, true);
    out.push_str(", \"partition_column\": ");
    match &d.partition_column {
        Some(p) => canonical::write_str(&mut out, p, true),
        None => out.push_str("null"),
    }
    out.push_str(", \"pii_columns\": ");
    write_owned_str_list(&mut out, &d.pii_columns);
    out.push_str(", \"size_gb\": ");
    canonical::write_number(&mut out, &d.size_gb);
    out.push('}');
    out
}

fn write_str_list(out: &mut String, items: &[&str]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        canonical::write_str(out, s, true);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok_json() -> Value {
        json!({
          "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver",
          "datasets": [
            {"name": "nfe", "classification": "high_volume", "size_gb": 4000, "pii_columns": [],
             "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
            {"name": "clientes", "classification": "sensitive", "size_gb": 0.5, "pii_columns": ["cpf", "email"],
             "partition_column": "processing_date", "merge_keys": ["cliente_id"]}
          ],
          "constraints": {"no_pii_raw": true, "merge_key_required": true, "enforce_types": true,
                          "partition_by": ["processing_date"], "max_cost_dbu": 20.0, "custom": {}},
          "execution_context": {"policy_bundle_version": "prod-v1.0", "catalog_snapshot_version": "cat-2026-01",
                                "context_registry_version_id": "v_initial"},
          "intent_id": "11111111-2222-3333-4444-555555555555",
          "source_intent_raw": "Join NFe with Clientes and persist to Silver"
        })
    }

    #[test]
    fn ok_signature_hash_vector() {
        let sig = StateSignature::from_value(&ok_json()).unwrap();
        assert_eq!(
            sig.signature_hash_payload(),
            r#"{"constraints": {"merge_key_required": true, "no_pii_raw": true, "partition_by": ["processing_date"]}, "datasets": ["clientes", "nfe"], "domain": "fiscal", "intent": "reconciliation_and_persist", "target_layer": "silver"}"#
        );
        assert_eq!(
            sig.signature_hash(),
            "e1fc764a6d33a9efc69ddaae611407ccef2ff5ddb0e3d9969b0df69422907649"
        );
    }

    #[test]
    fn signature_hash_cache_hits_equal_payloads_and_misses_others() {
        let a = StateSignature::from_value(&ok_json()).unwrap();
        let uncached = signature_hash_of(&a.signature_hash_payload());
        // Twice in a row (the second from the cache): the uncached value both times.
        assert_eq!(a.signature_hash(), uncached);
        assert_eq!(a.signature_hash(), uncached);
        // A different payload misses and gets its own hash, then the first one again.
        let mut b = a.clone();
        b.domain = "vendas".into();
        let b_uncached = signature_hash_of(&b.signature_hash_payload());
        assert_ne!(b_uncached, uncached);
        assert_eq!(b.signature_hash(), b_uncached);
        assert_eq!(a.signature_hash(), uncached);
        // Fields outside the payload do not change the hash.
        let mut c = a.clone();
        c.intent_id = "other".into();
        assert_eq!(c.signature_hash(), uncached);
    }

    #[test]
    fn recent_hashes_alternate_evict_and_never_return_another_payloads_hash() {
        let a = StateSignature::from_value(&ok_json()).unwrap();
        let variants: Vec<StateSignature> = (0..RECENT_HASHES + 3)
            .map(|i| {
                let mut s = a.clone();
                s.domain = format!("d{i}");
                s.constraints.max_cost_dbu = Some(Number::from(i));
                s
            })
            .collect();
        // Alternating over more signatures than the cache holds: every answer is the
        // uncached one, through hits, misses and evictions alike.
        for _ in 0..3 {
            for v in &variants {
                assert_eq!(
                    v.signature_hash(),
                    signature_hash_of(&v.signature_hash_payload())
                );
                assert_eq!(v.content_hash(), content_hash_of(&v.content_payload_text()));
            }
        }
        // A field only the content payload covers changes the content hash (a miss),
        // not the signature hash.
        let mut b = a.clone();
        b.constraints.max_cost_dbu = Some(Number::from(99));
        assert_ne!(b.content_hash(), a.content_hash());
        assert_eq!(b.signature_hash(), a.signature_hash());
        assert_eq!(a.content_hash(), content_hash_of(&a.content_payload_text()));
        // A cache holds at most RECENT_HASHES payloads, skips oversized ones, and
        // recomputes for a payload it no longer holds.
        let mut recent = RecentHashes::new();
        let mut computed = 0;
        for i in 0..RECENT_HASHES + 1 {
            recent.get_or(format!("p{i}"), |p| {
                computed += 1;
                format!("h-{p}")
            });
        }
        assert_eq!(recent.entries.iter().flatten().count(), RECENT_HASHES);
        assert_eq!(
            recent.get_or("p0".into(), |p| format!("again-{p}")),
            "again-p0"
        );
        let last = format!("p{RECENT_HASHES}");
        assert_eq!(
            recent.get_or(last.clone(), |_| String::new()),
            format!("h-{last}")
        );
        let big = "x".repeat(MAX_REMEMBERED_PAYLOAD + 1);
        assert_eq!(recent.get_or(big.clone(), |_| "big".into()), "big");
        assert!(recent.entries.iter().flatten().all(|(t, _)| *t != big));
        assert_eq!(computed, RECENT_HASHES + 1);
    }

    #[test]
    fn round_trip_keeps_shape_and_int_float() {
        let v = ok_json();
        let sig = StateSignature::from_value(&v).unwrap();
        assert_eq!(sig.to_value(), v);
        assert_eq!(
            serde_json::to_string(&sig.to_value()).unwrap(),
            serde_json::to_string(&v).unwrap()
        );
    }

    #[test]
    fn minimal_from_dict_vector() {
        let sig = StateSignature::from_value(
            &json!({"domain":"d","intent":"i","target_layer":"silver","datasets":[]}),
        )
        .unwrap();
        assert_eq!(
            sig.signature_hash(),
            "eada214a83c34bf194f477ef944324af0ed99341898df730e2f832511f5ac05a"
        );
    }

    #[test]
    fn lenient_defaults() {
        let sig = StateSignature::from_value(
            &json!({"target_layer": "platinum", "datasets": [{"name": "a", "classification": "secret"}]}),
        )
        .unwrap();
        assert_eq!(sig.target_layer, TargetLayer::Silver);
        assert_eq!(
            sig.datasets[0].classification,
            DatasetClassification::Internal
        );
        assert_eq!(sig.execution_context.policy_bundle_version, "unknown");
        assert!(sig.constraints.no_pii_raw);
        assert!(StateSignature::from_value(&json!({"datasets": [{}]})).is_err());
    }

    #[test]
    fn content_hash_covers_decision_fields_but_not_order() {
        let a = StateSignature::from_value(&ok_json()).unwrap();
        let mut b = a.clone();
        b.datasets.reverse();
        assert_eq!(a.content_hash(), b.content_hash());
        let mut c = a.clone();
        c.constraints.enforce_types = false;
        assert_eq!(a.signature_hash(), c.signature_hash());
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn content_payload_text_is_the_rendered_payload() {
        let mut v = ok_json();
        v["constraints"]["custom"] = json!({"z\u{e9}": [1, 2.5, null], "approval_id": "CHG-1",
            "nested": {"b": true, "a": {"\u{1f600}": -0.0}}});
        v["constraints"]["max_cost_dbu"] = Value::Null;
        v["datasets"][0]["partition_column"] = Value::Null;
        v["domain"] = json!("fiscal\u{ff61}\"\\\n");
        let sig = StateSignature::from_value(&v).unwrap();
        let rendered = canonical::to_string(&sig.content_payload(), Style::SortedAscii);
        assert_eq!(sig.content_payload_text(), rendered);
        assert_eq!(
            sig.content_hash(),
            canonical::sha256_hex(rendered.as_bytes())
        );
        // A change anywhere in the covered fields changes the text.
        let mut other = sig.clone();
        other.datasets[1].size_gb = Number::from(1);
        assert_ne!(other.content_payload_text(), sig.content_payload_text());
        let empty = StateSignature::from_value(&json!({})).unwrap();
        assert_eq!(
            empty.content_payload_text(),
            canonical::to_string(&empty.content_payload(), Style::SortedAscii)
        );
    }

    #[test]
    fn patches_apply_and_reject() {
        let a = StateSignature::from_value(&ok_json()).unwrap();
        let b = a
            .apply_patches(&[
                Patch::set("constraints.enforce_types", json!(false)),
                Patch::set("constraints.partition_by", json!(["d"])),
                Patch::set("constraints.custom.approval_id", json!("CHG-1")),
            ])
            .unwrap();
        assert!(!b.constraints.enforce_types);
        assert_eq!(b.constraints.partition_by, vec!["d"]);
        assert_eq!(b.constraints.custom["approval_id"], json!("CHG-1"));
        assert!(a.apply_patch(&Patch::set("domain", json!("x"))).is_err());
        assert!(
            a.apply_patch(&Patch::set("constraints.max_cost_dbu", json!(-1)))
                .is_err()
        );
    }
}
