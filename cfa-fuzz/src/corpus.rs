//! Seed corpora: the conformance inputs (`CFA_CONFORMANCE_DIR`, else
//! `../shared/conformance` beside the checkout, the lookup the tests use), the
//! examples, the built-in bundles and keyword packs, and signed checkpoints and
//! proofs made at start-up over the conformance chains.

use crate::mutate::{Kind, Seed};
use cfa_audit::merkle::{self, CompactRange};
use cfa_audit::note::SignerKey;
use cfa_audit::retain::Anchor;
use cfa_audit::{Checkpoint, OfflineProof, VerifyOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The conformance corpus root.
pub fn conformance_dir() -> PathBuf {
    std::env::var_os("CFA_CONFORMANCE_DIR").map_or_else(
        || workspace_dir().join("../shared/conformance"),
        PathBuf::from,
    )
}

/// The workspace root (the checkout).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fixed key every signed seed and every verification uses.
pub fn signer_key() -> Option<SignerKey> {
    SignerKey::from_seed("fuzz.example/log", [42u8; 32]).ok()
}

/// Every seed, by the corpus it belongs to.
#[derive(Debug, Default)]
pub struct Corpus {
    /// Signature documents.
    pub signatures: Vec<Seed>,
    /// Catalog documents.
    pub catalogs: Vec<Seed>,
    /// YAML bundles.
    pub bundles_yaml: Vec<Seed>,
    /// JSON bundles.
    pub bundles_json: Vec<Seed>,
    /// Keyword packs (JSON and YAML).
    pub packs: Vec<Seed>,
    /// Intent texts.
    pub intents: Vec<Seed>,
    /// Single audit JSONL lines.
    pub audit_lines: Vec<Seed>,
    /// Whole audit logs.
    pub audit_logs: Vec<Seed>,
    /// Signed checkpoint notes, keys and anchors.
    pub checkpoints: Vec<Seed>,
    /// Offline proofs.
    pub proofs: Vec<Seed>,
    /// Kernel requests `{"intent", "catalog", "bundle"}`.
    pub kernel: Vec<Seed>,
    /// Config files (`cfa.yaml`).
    pub configs: Vec<Seed>,
    /// Raw conformance catalogs, for targets that need a fixed catalog.
    pub catalog_values: Vec<Value>,
    /// Where the conformance corpus was read from.
    pub root: PathBuf,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn jsonl(path: &Path) -> Result<Vec<Value>, String> {
    read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

fn json_seed(v: &Value) -> Seed {
    Seed::new(Kind::Json, serde_json::to_vec(v).unwrap_or_default())
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.sort();
    out
}

const GROUNDINGS: [&str; 3] = ["strict", "lenient", "datasets_only"];

/// Loads every corpus; fails when the conformance corpus is missing.
pub fn load() -> Result<Corpus, String> {
    let root = conformance_dir();
    let ws = workspace_dir();
    let mut c = Corpus {
        root: root.clone(),
        ..Corpus::default()
    };

    // Signatures: hash corpus, policy cases, validation cases, examples.
    for row in jsonl(&root.join("hash/signature_hash.jsonl"))?
        .iter()
        .take(150)
    {
        if let Some(s) = row.get("signature") {
            c.signatures.push(json_seed(s));
        }
    }
    for row in jsonl(&root.join("policy/cases.jsonl"))?.iter().step_by(10) {
        if let Some(s) = row.get("signature") {
            c.signatures.push(json_seed(s));
        }
    }
    for row in jsonl(&root.join("validation/signatures.jsonl"))? {
        if let Some(s) = row.get("input") {
            c.signatures.push(json_seed(s));
        }
    }
    for p in sorted_files(&ws.join("examples/signatures")) {
        c.signatures.push(Seed::new(Kind::Json, read(&p)?));
    }

    // Catalogs.
    for row in jsonl(&root.join("validation/catalogs.jsonl"))? {
        if let Some(s) = row.get("input") {
            c.catalogs.push(json_seed(s));
        }
    }
    for name in ["examples/catalog.json", "examples/catalog-columns.json"] {
        c.catalogs
            .push(Seed::new(Kind::Json, read(&ws.join(name))?));
    }

    // Bundles: the conformance bundles, the validation cases, the built-ins.
    for p in sorted_files(&root.join("policy/bundles")) {
        let text = read(&p)?;
        if p.extension().is_some_and(|e| e == "json") {
            c.bundles_json.push(Seed::new(Kind::Json, text));
        } else {
            c.bundles_yaml.push(Seed::new(Kind::Yaml, text));
        }
    }
    for row in jsonl(&root.join("validation/bundles.jsonl"))? {
        if let Some(s) = row.get("input") {
            c.bundles_json.push(json_seed(s));
        }
    }
    for name in cfa_policy::builtin::names() {
        if let Some(src) = cfa_policy::builtin::source(name) {
            c.bundles_yaml.push(Seed::new(Kind::Yaml, src));
            if let Ok(v) = cfa_policy::yaml::parse_value(src) {
                c.bundles_json.push(json_seed(&v));
            }
        }
    }

    // Keyword packs.
    let custom = serde_json::json!({
        "name": "fuzz",
        "layers": {"gold": ["ouro", "final"], "silver": ["prata"], "bronze": ["bruto"]},
        "intents": {"dedupe": ["dedup", "distinct"]},
        "domains": {"fiscal": ["nfe", "tax"]},
        "constraints": {"anonymize": ["mask"], "time_scope": ["yesterday"],
                        "no_merge": ["append"], "budget": ["budget"], "cost_unit": ["dbu"]}
    });
    for pack in [
        cfa_resolve::KeywordPack::english().to_value(),
        cfa_resolve::KeywordPack::portuguese().to_value(),
        custom,
    ] {
        c.packs.push(json_seed(&pack));
        c.packs
            .push(Seed::new(Kind::Yaml, crate::mutate::to_yaml(&pack)));
    }

    // Intents and kernel requests from the normalizer cases.
    let cases = jsonl(&root.join("normalizer/cases.jsonl"))?;
    let mut seen_catalogs: Vec<String> = Vec::new();
    let builtins: Vec<&str> = cfa_policy::builtin::names().collect();
    for (i, case) in cases.iter().enumerate() {
        let intent = case.get("intent").and_then(Value::as_str).unwrap_or("");
        c.intents.push(Seed::new(Kind::Text, intent));
        let catalog = case.get("catalog").cloned().unwrap_or(Value::Null);
        let name = case
            .get("catalog_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if !seen_catalogs.contains(&name) {
            seen_catalogs.push(name);
            c.catalogs.push(json_seed(&catalog));
            c.catalog_values.push(catalog.clone());
        }
        if i % 4 == 0 {
            let bundle = builtins.get(i / 4 % (builtins.len() + 1)).copied();
            c.kernel.push(json_seed(&serde_json::json!({
                "intent": intent, "catalog": catalog, "bundle": bundle,
                "grounding": GROUNDINGS.get(i / 4 % 3),
            })));
        }
    }

    // Audit lines and logs.
    let mut chains = Vec::new();
    for name in [
        "chain_small.jsonl",
        "chain_kernel.jsonl",
        "chain_1000.jsonl",
    ] {
        let text = read(&root.join("audit").join(name))?;
        let head: String = text.lines().take(40).map(|l| format!("{l}\n")).collect();
        for l in text.lines().take(20) {
            c.audit_lines.push(Seed::new(Kind::Json, l));
        }
        c.audit_logs.push(Seed::new(Kind::Jsonl, head.clone()));
        chains.push(head);
    }
    for row in jsonl(&root.join("hash/audit_event_hash.jsonl"))?
        .iter()
        .take(40)
    {
        if let Some(e) = row.get("event") {
            c.audit_lines.push(json_seed(e));
        }
    }

    signed_seeds(&mut c, &chains)?;

    // Configs (the layout `cfa init` writes, and variations).
    for cfg in [
        "version: \"1.0\"\nstorage:\n  backend: jsonl\n  path: audit.jsonl\n  retention_days: 30\ndefaults:\n  catalog: catalog.json\n  policy_bundle: prod-v1\n  backend: pyspark\n",
        "version: 1.0\nstorage:\n  backend: sqlite\n  path: cfa.db\ndefaults:\n  policy_bundle: bundle.yaml\nexecution:\n  sandbox: mock\nlifecycle:\n  promotion: {min_runs: 3}\n",
        "{\"version\": \"1.0\", \"storage\": {\"backend\": \"jsonl\", \"path\": \"a.jsonl\"}}\n",
        "",
    ] {
        c.configs.push(Seed::new(Kind::Yaml, cfg));
    }
    Ok(c)
}

/// Checkpoints, notes, keys, anchors and proofs signed with [`signer_key`].
fn signed_seeds(c: &mut Corpus, chains: &[String]) -> Result<(), String> {
    let key = signer_key().ok_or("cannot make the fuzz signing key")?;
    let vkey = key.verifier();
    c.checkpoints.push(Seed::new(Kind::Text, vkey.to_text()));
    c.checkpoints.push(Seed::new(Kind::Text, key.to_text()));
    for chain in chains {
        let opts = VerifyOptions {
            merkle: true,
            collect_leaves: true,
            threads: 1,
            allow_legacy: true,
            ..VerifyOptions::default()
        };
        let report = cfa_audit::verify::verify_reader(chain.as_bytes(), &opts, &mut |_| {})
            .map_err(|e| e.to_string())?;
        let leaves = report.leaves.clone();
        let cp = Checkpoint {
            origin: "fuzz.example/log".into(),
            size: leaves.len() as u64,
            root: merkle::root(&leaves),
        };
        let note = cp.sign(&key).map_err(|e| e.to_string())?;
        c.checkpoints.push(Seed::new(Kind::Text, note.clone()));
        c.checkpoints.push(Seed::new(Kind::Text, cp.to_text()));
        // An anchor over the first half.
        let half = leaves.len() / 2;
        let mut tree = CompactRange::new();
        for l in leaves.iter().take(half) {
            tree.push(*l);
        }
        let half_cp = Checkpoint {
            origin: "fuzz.example/log".into(),
            size: tree.size(),
            root: tree.root(),
        };
        let anchor = Anchor {
            size: tree.size(),
            last_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            peaks: tree.peaks().to_vec(),
            checkpoint: half_cp.sign(&key).ok(),
        };
        c.checkpoints.push(Seed::new(Kind::Json, anchor.to_json()));
        let lines: Vec<&str> = chain.lines().collect();
        for idx in [0usize, 1, half, lines.len().saturating_sub(1)] {
            let Some(line) = lines.get(idx) else { continue };
            if let Ok(p) =
                OfflineProof::build(&leaves, idx as u64, (*line).to_owned(), note.clone())
            {
                c.proofs.push(Seed::new(Kind::Text, p.to_text()));
            }
        }
    }
    Ok(())
}
