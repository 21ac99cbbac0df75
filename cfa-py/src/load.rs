//! Loading what a Python caller names: policy bundles (a built-in name, `default`, or a
//! YAML/JSON file), catalogs (a dict, or a JSON/YAML file) and signatures (a dict or JSON
//! text), with the errors raised as the package's exceptions (`cfa._errors`).

use crate::convert;
use cfa::policy::{BundleError, BundleFormat, PolicyEngine, builtin};
use cfa::types::canonical::sha256_hex;
use cfa::types::validate::{Issue, ParseError};
use cfa::{Catalog, StateSignature};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Builds an exception of `cfa._errors` (`class(*args)`); an import failure is raised
/// instead.
pub fn raise<'py, A>(py: Python<'py>, class: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    match py
        .import("cfa._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1(args))
    {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// `ValidationError(message, kind, issues)`: `issues` as `(path, message)` pairs.
pub fn validation_error(py: Python<'_>, kind: &str, message: String, issues: &[Issue]) -> PyErr {
    let pairs: Vec<(String, String)> = issues
        .iter()
        .map(|i| (i.path.clone(), i.message.clone()))
        .collect();
    raise(py, "ValidationError", (message, kind.to_owned(), pairs))
}

/// A policy engine with what identifies its bundle in decisions and audit events (the
/// CLI's `-p/--policy-bundle` rules: the hash is that of the file bytes or of the
/// built-in source, `""` for the default rules).
#[derive(Debug)]
pub struct LoadedPolicy {
    /// The compiled engine.
    pub engine: PolicyEngine,
    /// SHA-256 of the bundle source; `""` for the default rules.
    pub hash: String,
    /// How the caller named it.
    pub source: String,
}

/// The reference's default bundle label; it selects the built-in default rules.
const DEFAULT_LABEL: &str = "v1.0";

fn looks_like_path(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    spec.contains('/')
        || spec.contains('\\')
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// How many files (bundles, catalogs) each cache remembers.
const FILE_CACHE: usize = 8;

/// What was built from the last few files read: the path, the exact text read, and
/// what it gave. A file is read on every use; what it gives is reused only when the text
/// read is byte-equal to the remembered one, so an edited file is always seen.
struct FileCache<T> {
    entries: Vec<(PathBuf, String, Arc<T>)>,
}

impl<T> FileCache<T> {
    const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    fn get(&self, path: &Path, text: &str) -> Option<Arc<T>> {
        self.entries
            .iter()
            .find(|(p, t, _)| p == path && t == text)
            .map(|(_, _, v)| Arc::clone(v))
    }

    fn put(&mut self, path: &Path, text: String, value: &Arc<T>) {
        self.entries.retain(|(p, _, _)| p != path);
        if self.entries.len() >= FILE_CACHE {
            self.entries.remove(0);
        }
        self.entries
            .push((path.to_path_buf(), text, Arc::clone(value)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

static POLICY_FILES: Mutex<FileCache<LoadedPolicy>> = Mutex::new(FileCache::new());
static CATALOG_FILES: Mutex<FileCache<LoadedCatalog>> = Mutex::new(FileCache::new());

fn builtins() -> &'static Mutex<HashMap<String, Arc<LoadedPolicy>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<LoadedPolicy>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The bundle `spec` names: `None`, `default` or `v1.0` for the default rules, a
/// built-in name (compiled once per process), or a path (a `str` with a `/` or a
/// `.yaml`/`.yml`/`.json` ending, or any `os.PathLike`), read on every call (and
/// compiled again only when its text changed).
pub fn policy(py: Python<'_>, spec: Option<&Bound<'_, PyAny>>) -> PyResult<Arc<LoadedPolicy>> {
    let Some(spec) = spec.filter(|s| !s.is_none()) else {
        return default_policy(py);
    };
    if let Ok(s) = spec.cast::<PyString>() {
        let s = s.to_str()?.trim().to_owned();
        if builtin::is_builtin(&s) || s == DEFAULT_LABEL || s == "default" {
            return named_policy(py, &s);
        }
        if looks_like_path(&s) {
            return policy_file(py, Path::new(&s));
        }
        return Err(raise(
            py,
            "BundleError",
            (format!(
                "unknown policy bundle '{s}': not a built-in name, not a path (a path has a / or a .yaml/.yml/.json extension: ./{s}); built-in bundles: {}; 'default' selects the built-in default rules",
                builtin::names().collect::<Vec<_>>().join(", ")
            ),),
        ));
    }
    let path: PathBuf = spec.extract()?;
    policy_file(py, &path)
}

/// The default rules (no bundle named): the cached entry of `default`, kept in a
/// static so that a `check` without a bundle takes no lock.
fn default_policy(py: Python<'_>) -> PyResult<Arc<LoadedPolicy>> {
    static DEFAULT: OnceLock<Arc<LoadedPolicy>> = OnceLock::new();
    if let Some(p) = DEFAULT.get() {
        return Ok(Arc::clone(p));
    }
    let loaded = named_policy(py, "default")?;
    Ok(Arc::clone(DEFAULT.get_or_init(|| loaded)))
}

fn named_policy(py: Python<'_>, name: &str) -> PyResult<Arc<LoadedPolicy>> {
    let mut cache = builtins().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(p) = cache.get(name) {
        return Ok(Arc::clone(p));
    }
    let loaded = if name == "default" || name == DEFAULT_LABEL {
        LoadedPolicy {
            engine: PolicyEngine::default(),
            hash: String::new(),
            source: "default".into(),
        }
    } else {
        let engine =
            PolicyEngine::builtin(name).map_err(|e| raise(py, "BundleError", (e.to_string(),)))?;
        LoadedPolicy {
            engine,
            hash: builtin::source(name)
                .map(|s| sha256_hex(s.as_bytes()))
                .unwrap_or_default(),
            source: name.to_owned(),
        }
    };
    let loaded = Arc::new(loaded);
    cache.insert(name.to_owned(), Arc::clone(&loaded));
    Ok(loaded)
}

fn read_text(py: Python<'_>, path: &Path, what: &str) -> PyResult<String> {
    std::fs::read_to_string(path).map_err(|e| {
        raise(
            py,
            "CfaError",
            (format!("cannot read {what} {}: {e}", path.display()),),
        )
    })
}

fn policy_file(py: Python<'_>, path: &Path) -> PyResult<Arc<LoadedPolicy>> {
    let text = read_text(py, path, "policy bundle")?;
    if let Some(hit) = lock(&POLICY_FILES).get(path, &text) {
        return Ok(hit);
    }
    let loaded = Arc::new(compile_policy(py, path, &text)?);
    lock(&POLICY_FILES).put(path, text, &loaded);
    Ok(loaded)
}

fn compile_policy(py: Python<'_>, path: &Path, text: &str) -> PyResult<LoadedPolicy> {
    let name = path.display().to_string();
    let format = BundleFormat::from_path_str(&name);
    let bundle = cfa::policy::load_bundle(text, format, &name).map_err(|e| match e {
        BundleError::Parse(p) => {
            let at = p
                .position
                .map(|pos| format!("{name}:{}:{}: ", pos.line, pos.column))
                .unwrap_or_else(|| format!("{name}: "));
            raise(
                py,
                "BundleError",
                (format!("{at}cannot parse policy bundle: {}", p.message),),
            )
        }
        BundleError::Invalid(inv) => {
            let lines: Vec<String> = inv
                .issues
                .iter()
                .map(|li| match li.position {
                    Some(p) => format!("{name}:{}:{}: {}", p.line, p.column, li.issue),
                    None => li.issue.to_string(),
                })
                .collect();
            let pairs: Vec<(String, String)> = inv
                .issues
                .iter()
                .map(|li| (li.issue.path.clone(), li.issue.message.clone()))
                .collect();
            raise(
                py,
                "BundleError",
                (
                    format!("invalid policy bundle {name}: {}", lines.join("; ")),
                    pairs,
                ),
            )
        }
    })?;
    let engine = PolicyEngine::from_bundle(bundle)
        .map_err(|e| raise(py, "BundleError", (e.to_string(),)))?;
    Ok(LoadedPolicy {
        engine,
        hash: sha256_hex(text.as_bytes()),
        source: name,
    })
}

/// A catalog with its hash, computed once (on first use).
#[derive(Debug)]
pub struct LoadedCatalog {
    /// The catalog.
    pub catalog: Catalog,
    hash: OnceLock<String>,
}

impl LoadedCatalog {
    fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            hash: OnceLock::new(),
        }
    }

    /// The catalog's hash (the decisions' `catalog_hash`).
    pub fn hash(&self) -> &str {
        self.hash.get_or_init(|| self.catalog.hash())
    }
}

/// The catalog `spec` names: `None` (no catalog), a dict, or a path to a JSON file (YAML
/// for `.yaml`/`.yml`), read on every call (and parsed again only when its text
/// changed). Structurally invalid catalogs raise `ValidationError` with every issue.
pub fn catalog(
    py: Python<'_>,
    spec: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Arc<LoadedCatalog>>> {
    let Some(spec) = spec.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    if spec.is_instance_of::<pyo3::types::PyDict>() {
        let value = convert::to_value(spec)?;
        return checked_catalog(py, &value, "catalog").map(|c| Some(Arc::new(c)));
    }
    let path: PathBuf = spec.extract()?;
    let text = read_text(py, &path, "catalog")?;
    if let Some(hit) = lock(&CATALOG_FILES).get(&path, &text) {
        return Ok(Some(hit));
    }
    let loaded = Arc::new(catalog_file(py, &path, &text)?);
    lock(&CATALOG_FILES).put(&path, text, &loaded);
    Ok(Some(loaded))
}

fn catalog_file(py: Python<'_>, path: &Path, text: &str) -> PyResult<LoadedCatalog> {
    let name = path.display().to_string();
    if text.trim().is_empty() {
        return Err(raise(
            py,
            "CfaError",
            (format!(
                "catalog {name} is empty: a catalog is a JSON or YAML object such as {{\"datasets\": {{…}}}}"
            ),),
        ));
    }
    let lower = name.to_ascii_lowercase();
    let value = if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        cfa::policy::yaml::parse_value(text).map_err(|e| {
            let at = e
                .position
                .map(|p| format!("{name}:{}:{}", p.line, p.column))
                .unwrap_or_else(|| name.clone());
            raise(
                py,
                "CfaError",
                (format!("{at}: invalid YAML: {}", e.message),),
            )
        })?
    } else {
        serde_json::from_str::<Value>(text).map_err(|e| {
            raise(
                py,
                "CfaError",
                (format!(
                    "{name}:{}:{}: invalid JSON: {e}",
                    e.line(),
                    e.column()
                ),),
            )
        })?
    };
    checked_catalog(py, &value, &name)
}

/// `value` validated (every issue raised as `ValidationError`) and read.
fn checked_catalog(py: Python<'_>, value: &Value, name: &str) -> PyResult<LoadedCatalog> {
    let issues = cfa::types::validate::catalog(value, false);
    if !issues.is_empty() {
        let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(validation_error(
            py,
            "invalid_catalog",
            format!("invalid catalog {name}: {}", lines.join("; ")),
            &issues,
        ));
    }
    Catalog::from_value(value)
        .map(LoadedCatalog::new)
        .map_err(|e| raise(py, "CfaError", (format!("invalid catalog {name}: {e}"),)))
}

/// Signature input as read under the GIL: a signature already read, JSON text, or an
/// already converted value.
// Short-lived (matched right away): boxing the signature would cost every read an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum SignatureInput<'a> {
    /// A dict read in place ([`crate::pyde`]): valid, and what the value path reads.
    Read(StateSignature),
    /// JSON text (`str`, or UTF-8 `bytes`).
    Text(&'a str),
    /// A dict (or other Python value) converted to JSON.
    Value(Value),
}

impl SignatureInput<'_> {
    /// Strict parse (optionally wrapped in `{"signature": …}`); runs without the GIL.
    pub fn parse(self) -> Result<StateSignature, ParseError> {
        match self {
            SignatureInput::Read(sig) => Ok(sig),
            SignatureInput::Text(text) => StateSignature::parse_validated(text, false),
            SignatureInput::Value(value) => StateSignature::from_validated_value(&value, false),
        }
    }
}

/// Reads a signature argument: a dict, or JSON text (`str`/`bytes`). A dict holding a
/// valid, unwrapped signature is read in place into the typed signature
/// ([`crate::pyde`]); any other dict (invalid, wrapped in `{"signature": …}`, holding
/// values JSON has not) is converted to a JSON value, which the strict reader then
/// judges, with every issue and its path: the same verdict, issues and signature
/// either way.
pub fn signature_input<'a>(
    py: Python<'_>,
    obj: &'a Bound<'_, PyAny>,
) -> PyResult<SignatureInput<'a>> {
    if let Some(sig) = crate::pyde::signature(obj, false) {
        return Ok(SignatureInput::Read(sig));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(SignatureInput::Text(s.to_str()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return std::str::from_utf8(b.as_bytes())
            .map(SignatureInput::Text)
            .map_err(|e| {
                raise(
                    py,
                    "ValidationError",
                    (
                        format!("signature bytes are not UTF-8: {e}"),
                        "invalid_json",
                        Vec::<(String, String)>::new(),
                    ),
                )
            });
    }
    convert::to_value(obj).map(SignatureInput::Value)
}

/// A signature parse error as `ValidationError` (the issue paths in `issues`).
pub fn signature_error(py: Python<'_>, e: ParseError) -> PyErr {
    match e {
        ParseError::Syntax(s) => validation_error(py, "invalid_json", s.to_string(), &[]),
        ParseError::Invalid(inv) => {
            validation_error(py, "invalid_signature", inv.to_string(), &inv.issues)
        }
    }
}
