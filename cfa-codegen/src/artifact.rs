//! What a backend produces: files in memory, plus metadata and a content hash.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Language of an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// PySpark (Python) with Delta Lake.
    Pyspark,
    /// SQL (dialect in the backend config).
    Sql,
    /// A dbt project (SQL + Jinja + YAML).
    Dbt,
}

impl Language {
    /// The serialised value, e.g. `"pyspark"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Language::Pyspark => "pyspark",
            Language::Sql => "sql",
            Language::Dbt => "dbt",
        }
    }
}

/// One generated file; `path` is relative and uses `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedFile {
    /// Relative path, e.g. `models/silver_fiscal.sql`.
    pub path: String,
    /// Full text.
    pub content: String,
}

/// The output of [`crate::Backend::generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedArtifact {
    /// Backend name.
    pub backend: String,
    /// Language.
    pub language: Language,
    /// Target dataset / model name.
    pub target: String,
    /// `signature_hash` of the planned signature.
    pub plan_signature_hash: String,
    /// Write mode value of the plan.
    pub write_mode: String,
    /// Consistency unit value of the plan.
    pub consistency_unit: String,
    /// Number of plan steps.
    pub step_count: usize,
    /// Files, the main one first.
    pub files: Vec<GeneratedFile>,
    /// Step id → the code implementing that step (for per-step execution and
    /// reporting); every plan step has an entry. Not part of the artifact hash.
    pub step_code: std::collections::BTreeMap<String, String>,
}

impl GeneratedArtifact {
    /// An artifact for `plan`: target, write mode, consistency unit and step count are
    /// taken from the plan, so every backend reports them the same way.
    pub fn for_plan(
        backend: &str,
        language: Language,
        plan: &cfa_plan::ExecutionPlan,
        files: Vec<GeneratedFile>,
        step_code: std::collections::BTreeMap<String, String>,
    ) -> Self {
        GeneratedArtifact {
            backend: backend.to_owned(),
            language,
            target: plan.target.clone(),
            plan_signature_hash: plan.signature_hash.clone(),
            write_mode: plan.write_mode.as_str().into(),
            consistency_unit: plan.consistency_unit.as_str().into(),
            step_count: plan.steps.len(),
            files,
            step_code,
        }
    }

    /// The main file (the script, the SQL, or the dbt model).
    pub fn main_file(&self) -> Option<&GeneratedFile> {
        self.files.first()
    }

    /// The file at `path`.
    pub fn file(&self, path: &str) -> Option<&GeneratedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// SHA-256 of the canonical JSON of `{backend, language, files}` (through
    /// `cfa_types::canonical`): identical code gives an identical hash.
    pub fn artifact_hash(&self) -> String {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|f| json!({"path": f.path, "content": f.content}))
            .collect();
        cfa_types::canonical::canonical_sha256(&json!({
            "backend": self.backend,
            "language": self.language.as_str(),
            "files": files,
        }))
    }
}
