//! Keyword packs: the words the rule-based normaliser looks for, as data.
//!
//! A pack names keywords for the three layers, an ordered list of intent labels, an
//! ordered list of domains, and the words behind the grounded constraints (see the
//! crate docs). Several packs combine: keywords of the same layer, intent or domain
//! are pooled, and labels keep the order in which they were first seen.
//!
//! Keyword syntax: a keyword is one or more words (split like intent text); each word
//! matches a word of the intent that *starts with* it, consecutively. `#` stands for a
//! number word: `"last # day"` matches "last 7 days".

use crate::words::Phrase;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Keywords for each target layer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerKeywords {
    /// Gold keywords (tried first).
    #[serde(default)]
    pub gold: Vec<String>,
    /// Silver keywords (tried second).
    #[serde(default)]
    pub silver: Vec<String>,
    /// Bronze keywords (tried last).
    #[serde(default)]
    pub bronze: Vec<String>,
}

/// Words behind the grounded constraints (crate docs, "Constraints").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintKeywords {
    /// Words asking to anonymise PII (sets `no_pii_raw`).
    #[serde(default)]
    pub anonymize: Vec<String>,
    /// Words asking for a time-bounded or incremental scope (fills `partition_by`).
    #[serde(default)]
    pub time_scope: Vec<String>,
    /// Words asking for an append or a full overwrite (clears `merge_key_required`).
    #[serde(default)]
    pub no_merge: Vec<String>,
    /// Words that introduce a cost ceiling, followed by a number (`budget 20`).
    #[serde(default)]
    pub budget: Vec<String>,
    /// Cost units that follow a number (`20 dbu`).
    #[serde(default)]
    pub cost_unit: Vec<String>,
}

/// A keyword pack (serde: the same shape as [`KeywordPack::from_value`] reads).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordPack {
    /// A label for messages and provenance (`english`, `portuguese`, a file name).
    #[serde(default)]
    pub name: String,
    /// Layer keywords.
    #[serde(default)]
    pub layers: LayerKeywords,
    /// Intent labels in priority order, each with its keywords.
    #[serde(default)]
    pub intents: IndexMap<String, Vec<String>>,
    /// Domains in priority order, each with its keywords.
    #[serde(default)]
    pub domains: IndexMap<String, Vec<String>>,
    /// Constraint words.
    #[serde(default)]
    pub constraints: ConstraintKeywords,
}

/// Why a keyword pack could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// A value has the wrong type or is empty.
    #[error(transparent)]
    InvalidField(InvalidFieldError),
    /// A key the pack format does not know (a typo would silently drop keywords).
    #[error(transparent)]
    UnknownKey(UnknownKeyError),
    /// A keyword with no word in it, which would match everything.
    #[error(transparent)]
    EmptyKeyword(EmptyKeywordError),
}

/// A value with the wrong type or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("keyword pack: {path}: {message}")]
pub struct InvalidFieldError {
    /// Dotted path, e.g. `intents.ingest[2]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// An unknown key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("keyword pack: {path}: unknown key '{key}' (expected one of {expected})")]
pub struct UnknownKeyError {
    /// Where the key was found (`<root>` for the top level).
    pub path: String,
    /// The key.
    pub key: String,
    /// The keys allowed there.
    pub expected: String,
}

/// A keyword with no word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "keyword pack: {path}: keyword '{keyword}' has no letter or digit, so it would match everything"
)]
pub struct EmptyKeywordError {
    /// Path of the keyword.
    pub path: String,
    /// The keyword as given.
    pub keyword: String,
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PackError {
    PackError::InvalidField(InvalidFieldError {
        path: path.into(),
        message: message.into(),
    })
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The fallback intent label when no intent keyword matches.
pub const FALLBACK_INTENT: &str = "transform_and_persist";

/// The domain when no domain keyword matches.
pub const DEFAULT_DOMAIN: &str = "general";

impl KeywordPack {
    /// The reference's English keywords (docs/compatibility.md#normaliser) exactly, plus the English
    /// constraint words. It has no domain keywords, so the domain is `general`.
    pub fn english() -> Self {
        let mut intents = IndexMap::new();
        intents.insert(
            "reconciliation_and_persist".to_owned(),
            strings(&["join", "reconcil", "merg"]),
        );
        intents.insert("ingest".to_owned(), strings(&["ingest", "load", "import"]));
        intents.insert(
            "aggregate_and_persist".to_owned(),
            strings(&["aggregat", "summ", "group"]),
        );
        intents.insert(FALLBACK_INTENT.to_owned(), Vec::new());
        KeywordPack {
            name: "english".to_owned(),
            layers: LayerKeywords {
                gold: strings(&["gold", "master", "curated", "final"]),
                silver: strings(&["silver", "refined", "trusted", "join", "reconcil"]),
                bronze: strings(&["bronze", "raw", "ingest", "landing"]),
            },
            intents,
            domains: IndexMap::new(),
            constraints: ConstraintKeywords {
                anonymize: strings(&[
                    "anonymi",
                    "pseudonymi",
                    "hash",
                    "mask",
                    "tokeni",
                    "sha256",
                    "redact",
                    "encrypt",
                    "deidentif",
                    "de identif",
                    "drop pii",
                    "remove pii",
                    "strip pii",
                    "exclude pii",
                    "without pii",
                    "no pii",
                ]),
                time_scope: strings(&[
                    "daily",
                    "today",
                    "yesterday",
                    "hourly",
                    "incremental",
                    "partition",
                    "last #",
                    "past #",
                    "last day",
                    "last week",
                    "last month",
                    "last hour",
                    "this week",
                    "this month",
                    "for date",
                    "for the date",
                    "date range",
                ]),
                no_merge: strings(&[
                    "append",
                    "overwrit",
                    "full refresh",
                    "full reload",
                    "full load",
                    "replace all",
                    "insert only",
                    "truncate",
                ]),
                budget: strings(&[
                    "budget",
                    "max cost",
                    "maximum cost",
                    "max_cost",
                    "cost cap",
                    "cost limit",
                    "cost ceiling",
                ]),
                cost_unit: strings(&["dbu"]),
            },
        }
    }

    /// Brazilian Portuguese keywords (after the reference's `fiscal_pt_br_normalizer`
    /// example: gold `ouro`, silver `prata`, intent `carregar`, and the domains
    /// `fiscal_data_processing`, `customer_data` and `financial_data`).
    pub fn portuguese() -> Self {
        let mut intents = IndexMap::new();
        intents.insert(
            "reconciliation_and_persist".to_owned(),
            strings(&[
                "juntar", "junção", "juncao", "concili", "reconcil", "cruzar", "mesclar", "unir",
            ]),
        );
        intents.insert(
            "ingest".to_owned(),
            strings(&[
                "carregar",
                "carga",
                "ingerir",
                "ingest",
                "importar",
                "importaç",
                "importac",
            ]),
        );
        intents.insert(
            "aggregate_and_persist".to_owned(),
            strings(&[
                "agregar",
                "agregaç",
                "agregac",
                "resumir",
                "sumariz",
                "agrupar",
                "consolidar",
                "totaliz",
            ]),
        );
        intents.insert(FALLBACK_INTENT.to_owned(), Vec::new());
        let mut domains = IndexMap::new();
        domains.insert(
            "fiscal_data_processing".to_owned(),
            strings(&[
                "fiscal",
                "fiscais",
                "nfe",
                "nota fiscal",
                "notas fiscais",
                "icms",
                "imposto",
                "tribut",
            ]),
        );
        domains.insert(
            "customer_data".to_owned(),
            strings(&["cliente", "cpf", "consumidor", "cadastro"]),
        );
        domains.insert(
            "financial_data".to_owned(),
            strings(&[
                "financeir",
                "pagament",
                "contábil",
                "contabil",
                "fatura",
                "lançament",
                "lancament",
                "cobrança",
                "cobranca",
            ]),
        );
        KeywordPack {
            name: "portuguese".to_owned(),
            layers: LayerKeywords {
                gold: strings(&["ouro", "dourad", "curad", "mestre", "final"]),
                silver: strings(&[
                    "prata",
                    "refinad",
                    "confiáve",
                    "confiave",
                    "juntar",
                    "concili",
                    "reconcil",
                    "cruzar",
                ]),
                bronze: strings(&["bronze", "brut", "ingerir", "ingest", "aterriss"]),
            },
            intents,
            domains,
            constraints: ConstraintKeywords {
                anonymize: strings(&[
                    "anonimiz",
                    "pseudonimiz",
                    "mascar",
                    "hash",
                    "tokeniz",
                    "criptograf",
                    "sha256",
                    "sem pii",
                    "remover pii",
                    "sem dados pessoais",
                    "remover dados pessoais",
                ]),
                time_scope: strings(&[
                    "diári",
                    "diari",
                    "hoje",
                    "ontem",
                    "incremental",
                    "partiç",
                    "particion",
                    "particao",
                    "últimos #",
                    "ultimos #",
                    "últimas #",
                    "ultimas #",
                    "último dia",
                    "ultimo dia",
                    "última semana",
                    "ultima semana",
                    "último mês",
                    "ultimo mes",
                    "por data",
                    "para a data",
                ]),
                no_merge: strings(&[
                    "acrescentar",
                    "anexar",
                    "sobrescrev",
                    "carga completa",
                    "carga total",
                    "substituir tudo",
                    "somente inserç",
                    "truncar",
                ]),
                budget: strings(&[
                    "orçamento",
                    "orcamento",
                    "custo máximo",
                    "custo maximo",
                    "limite de custo",
                    "teto de custo",
                ]),
                cost_unit: strings(&["dbu"]),
            },
        }
    }

    /// A built-in pack by name: `english`/`en`, `portuguese`/`pt`/`pt-br`/`pt_br`.
    pub fn builtin(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "english" | "en" => Some(Self::english()),
            "portuguese" | "pt" | "pt-br" | "pt_br" => Some(Self::portuguese()),
            _ => None,
        }
    }

    /// Reads a user pack (for example YAML parsed by the CLI into a JSON value).
    ///
    /// Shape: `{name?, layers?: {gold?, silver?, bronze?: [kw]}, intents?: {label: [kw]},
    /// domains?: {domain: [kw]}, constraints?: {anonymize?, time_scope?, no_merge?,
    /// budget?, cost_unit?: [kw]}}`. Every section is optional; unknown keys, non-string
    /// keywords, empty labels and keywords with no word are errors naming their path.
    pub fn from_value(v: &Value) -> Result<Self, PackError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("<root>", "must be an object"))?;
        check_keys(
            obj,
            "<root>",
            &["name", "layers", "intents", "domains", "constraints"],
        )?;
        let name = match obj.get("name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("name", "must be a string")),
        };
        let mut layers = LayerKeywords::default();
        if let Some(l) = section(obj, "layers")? {
            check_keys(l, "layers", &["gold", "silver", "bronze"])?;
            layers.gold = keyword_list(l.get("gold"), "layers.gold")?;
            layers.silver = keyword_list(l.get("silver"), "layers.silver")?;
            layers.bronze = keyword_list(l.get("bronze"), "layers.bronze")?;
        }
        let intents = labelled(section(obj, "intents")?, "intents")?;
        let domains = labelled(section(obj, "domains")?, "domains")?;
        let mut constraints = ConstraintKeywords::default();
        if let Some(c) = section(obj, "constraints")? {
            check_keys(
                c,
                "constraints",
                &["anonymize", "time_scope", "no_merge", "budget", "cost_unit"],
            )?;
            constraints.anonymize = keyword_list(c.get("anonymize"), "constraints.anonymize")?;
            constraints.time_scope = keyword_list(c.get("time_scope"), "constraints.time_scope")?;
            constraints.no_merge = keyword_list(c.get("no_merge"), "constraints.no_merge")?;
            constraints.budget = keyword_list(c.get("budget"), "constraints.budget")?;
            constraints.cost_unit = keyword_list(c.get("cost_unit"), "constraints.cost_unit")?;
        }
        Ok(KeywordPack {
            name,
            layers,
            intents,
            domains,
            constraints,
        })
    }

    /// The pack as a JSON value, in the shape [`KeywordPack::from_value`] reads.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn section<'a>(
    obj: &'a serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<&'a serde_json::Map<String, Value>>, PackError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(key, "must be an object")),
    }
}

fn check_keys(
    obj: &serde_json::Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<(), PackError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(PackError::UnknownKey(UnknownKeyError {
            path: path.to_owned(),
            key: key.clone(),
            expected: allowed.join(", "),
        })),
        None => Ok(()),
    }
}

fn labelled(
    obj: Option<&serde_json::Map<String, Value>>,
    path: &str,
) -> Result<IndexMap<String, Vec<String>>, PackError> {
    let mut out = IndexMap::new();
    for (label, kws) in obj.into_iter().flatten() {
        if label.trim().is_empty() {
            return Err(invalid(path, "labels must be non-empty strings"));
        }
        out.insert(
            label.clone(),
            keyword_list(Some(kws), &format!("{path}.{label}"))?,
        );
    }
    Ok(out)
}

fn keyword_list(v: Option<&Value>, path: &str) -> Result<Vec<String>, PackError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid(path, "must be a list of strings")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = format!("{path}[{i}]");
            let s = item
                .as_str()
                .ok_or_else(|| invalid(item_path.as_str(), "must be a string"))?;
            if Phrase::compile(s).is_none() {
                return Err(PackError::EmptyKeyword(EmptyKeywordError {
                    path: item_path,
                    keyword: s.to_owned(),
                }));
            }
            Ok(s.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_round_trip_through_from_value() {
        for p in [KeywordPack::english(), KeywordPack::portuguese()] {
            assert_eq!(KeywordPack::from_value(&p.to_value()).unwrap(), p);
        }
        assert_eq!(
            KeywordPack::builtin("pt-BR"),
            Some(KeywordPack::portuguese())
        );
        assert_eq!(KeywordPack::builtin("klingon"), None);
        let en = KeywordPack::english();
        let back: KeywordPack = serde_json::from_value(en.to_value()).unwrap();
        assert_eq!(back, en);
        assert!(serde_json::from_value::<KeywordPack>(json!({"layer": {}})).is_err());
    }

    #[test]
    fn errors_name_their_path() {
        let e = KeywordPack::from_value(&json!({"intents": {"ingest": ["load", 3]}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keyword pack: intents.ingest[1]: must be a string"
        );
        let e = KeywordPack::from_value(&json!({"layers": {"platinum": ["x"]}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "keyword pack: layers: unknown key 'platinum' (expected one of gold, silver, bronze)"
        );
        let e = KeywordPack::from_value(&json!({"domains": {"d": ["--"]}})).unwrap_err();
        assert!(matches!(e, PackError::EmptyKeyword(ref k) if k.path == "domains.d[0]"));
        let e = KeywordPack::from_value(&json!({"intent": {}})).unwrap_err();
        assert!(matches!(e, PackError::UnknownKey(ref k) if k.key == "intent"));
        assert!(KeywordPack::from_value(&json!([])).is_err());
        assert!(KeywordPack::from_value(&json!({"layers": {"gold": "ouro"}})).is_err());
        assert!(KeywordPack::from_value(&json!({"intents": {" ": []}})).is_err());
    }

    #[test]
    fn user_pack_keeps_label_order() {
        let p = KeywordPack::from_value(&json!({
            "name": "mine",
            "intents": {"dedupe": ["dedup"], "ingest": ["pull"]},
            "domains": {"sales": ["order"]}
        }))
        .unwrap();
        let labels: Vec<&str> = p.intents.keys().map(String::as_str).collect();
        assert_eq!(labels, ["dedupe", "ingest"]);
        assert_eq!(p.name, "mine");
    }
}
