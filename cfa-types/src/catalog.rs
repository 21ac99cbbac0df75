//! The dataset catalog (docs/compatibility.md#catalog): what datasets exist and what they hold.
//!
//! Reading here is lenient (missing keys take defaults, unknown keys are ignored) and
//! keeps catalog key order; the strict checks with the reference's issue paths live
//! in [`crate::validate`].

use crate::canonical;
use crate::enums::DatasetClassification;
use crate::signature::{DatasetRef, SignatureError, float_number};
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

/// One catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// Classification (default `internal`).
    pub classification: DatasetClassification,
    /// Size in GB (default `0.0`).
    pub size_gb: Number,
    /// PII columns; only a non-empty list marks PII.
    pub pii_columns: Vec<String>,
    /// Partition column.
    pub partition_column: Option<String>,
    /// Merge keys.
    pub merge_keys: Vec<String>,
}

/// A catalog: datasets by name, in file order, plus the raw value it was read from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    /// Entries in catalog key order.
    pub datasets: IndexMap<String, CatalogEntry>,
    raw: Value,
}

impl Catalog {
    /// An empty catalog (`{"datasets": {}}`).
    pub fn empty() -> Self {
        let mut raw = Map::new();
        raw.insert("datasets".into(), Value::Object(Map::new()));
        Catalog {
            datasets: IndexMap::new(),
            raw: Value::Object(raw),
        }
    }

    /// Reads a catalog leniently. `null` and `{}` are empty catalogs.
    pub fn from_value(v: &Value) -> Result<Self, SignatureError> {
        let obj = match v {
            Value::Null => {
                return Ok(Catalog {
                    raw: Value::Null,
                    ..Catalog::default()
                });
            }
            Value::Object(o) => o,
            _ => return Err(SignatureError::NotAnObject),
        };
        let mut datasets = IndexMap::new();
        match obj.get("datasets") {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (name, meta) in entries {
                    let mut with_name = match meta {
                        Value::Object(m) => m.clone(),
                        _ => {
                            return Err(SignatureError::Field(crate::signature::FieldError {
                                path: format!("datasets.{name}"),
                                message: "metadata must be an object".into(),
                            }));
                        }
                    };
                    with_name.insert("name".into(), Value::String(name.clone()));
                    let d = DatasetRef::from_value(
                        &Value::Object(with_name),
                        &format!("datasets.{name}"),
                    )?;
                    datasets.insert(
                        name.clone(),
                        CatalogEntry {
                            classification: d.classification,
                            size_gb: d.size_gb,
                            pii_columns: d.pii_columns,
                            partition_column: d.partition_column,
                            merge_keys: d.merge_keys,
                        },
                    );
                }
            }
            Some(_) => {
                return Err(SignatureError::Field(crate::signature::FieldError {
                    path: "datasets".into(),
                    message: "must be an object keyed by dataset name".into(),
                }));
            }
        }
        Ok(Catalog {
            datasets,
            raw: v.clone(),
        })
    }

    /// The raw JSON value the catalog was read from.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// `hash_governance_artifact` of the raw catalog (`""` for a null catalog).
    pub fn hash(&self) -> String {
        if self.raw.is_null() {
            String::new()
        } else {
            canonical::governance_artifact_hash(&self.raw)
        }
    }

    /// True when the catalog has no datasets.
    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    /// A [`DatasetRef`] carrying the catalog's metadata for `name`.
    pub fn dataset_ref(&self, name: &str) -> Option<DatasetRef> {
        self.datasets.get(name).map(|e| DatasetRef {
            name: name.to_owned(),
            classification: e.classification,
            size_gb: e.size_gb.clone(),
            pii_columns: e.pii_columns.clone(),
            partition_column: e.partition_column.clone(),
            merge_keys: e.merge_keys.clone(),
        })
    }
}

impl Default for CatalogEntry {
    fn default() -> Self {
        CatalogEntry {
            classification: DatasetClassification::Internal,
            size_gb: float_number(0.0),
            pii_columns: Vec::new(),
            partition_column: None,
            merge_keys: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_catalog_hash_and_order() {
        let v = json!({"datasets": {
           "nfe":      {"classification": "high_volume", "size_gb": 4000, "pii_columns": [], "partition_column": "processing_date", "merge_keys": ["nfe_id"]},
           "clientes": {"classification": "sensitive",   "size_gb": 0.5,  "pii_columns": ["cpf","email"], "partition_column": "processing_date", "merge_keys": ["cliente_id"]},
           "produtos": {"classification": "internal",    "size_gb": 0.1,  "pii_columns": [], "merge_keys": ["produto_id"]}
        }});
        let c = Catalog::from_value(&v).unwrap();
        assert_eq!(
            c.hash(),
            "195b9fb1afa73b94aef907c6a0522d7f3a631e8c39dd04abe7ac3f04b205c347"
        );
        let names: Vec<&str> = c.datasets.keys().map(String::as_str).collect();
        assert_eq!(names, ["nfe", "clientes", "produtos"]);
        assert!(c.dataset_ref("clientes").unwrap().contains_pii());
        assert_eq!(Catalog::from_value(&Value::Null).unwrap().hash(), "");
    }
}
