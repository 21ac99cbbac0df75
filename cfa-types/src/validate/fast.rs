//! The allocation-light fast path of `parse_validated`: a typed, borrowing
//! deserialisation that accepts only well-formed signatures and builds the
//! `StateSignature` directly, without an intermediate `serde_json::Value`.
//!
//! It never decides that an input is invalid: anything it does not fully understand
//! (a wrapper key, a wrong type, a blank string, a duplicate key, a syntax error)
//! makes it return `None`, and the general path (parse → validate → read) answers.
//! So it can only be faster, never different; a property test checks that.

use super::has_text;
use crate::enums::{DatasetClassification, TargetLayer};
use crate::signature::{
    DatasetRef, ExecutionContext, SignatureConstraints, StateSignature, float_number,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;
use std::marker::PhantomData;

/// A struct read only from a JSON object (serde_json also reads structs from arrays).
struct MapOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MapOnly<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(MapOnly)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A string enum read from a JSON string only (serde's derived enum reader would also
/// take `{"public": null}`), without allocating.
struct Name<T>(T);

trait FromName: Sized {
    fn from_name(s: &str) -> Option<Self>;
}

impl FromName for TargetLayer {
    fn from_name(s: &str) -> Option<Self> {
        TargetLayer::parse(s)
    }
}

impl FromName for DatasetClassification {
    fn from_name(s: &str) -> Option<Self> {
        DatasetClassification::parse(s)
    }
}

impl<'de, T: FromName> Deserialize<'de> for Name<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: FromName> Visitor<'_> for V<T> {
            type Value = Name<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a known name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::from_name(s)
                    .map(Name)
                    .ok_or_else(|| E::custom("unknown name"))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// `Some` when the key is present, even with `null` (which then fails for `T`s that
/// do not accept it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RawSig {
    #[serde(default, deserialize_with = "present")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "present")]
    intent: Option<String>,
    #[serde(default, deserialize_with = "present")]
    target_layer: Option<Name<TargetLayer>>,
    #[serde(default)]
    datasets: Option<Vec<MapOnly<RawDataset>>>,
    #[serde(default, deserialize_with = "present")]
    constraints: Option<MapOnly<RawConstraints>>,
    #[serde(default, deserialize_with = "present")]
    execution_context: Option<MapOnly<RawContext>>,
    #[serde(default, deserialize_with = "present")]
    intent_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    source_intent_raw: Option<String>,
    #[serde(default, deserialize_with = "present")]
    signature: Option<IgnoredAny>,
    #[serde(default, deserialize_with = "present")]
    state_signature: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct RawDataset {
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    classification: Option<Name<DatasetClassification>>,
    #[serde(default, deserialize_with = "present")]
    size_gb: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pii_columns: Option<Vec<String>>,
    #[serde(default)]
    partition_column: Option<String>,
    #[serde(default)]
    merge_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawConstraints {
    #[serde(default, deserialize_with = "present")]
    no_pii_raw: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    merge_key_required: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    enforce_types: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    partition_by: Option<Vec<String>>,
    #[serde(default)]
    max_cost_dbu: Option<Number>,
    #[serde(default)]
    custom: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default, deserialize_with = "present")]
    policy_bundle_version: Option<String>,
    #[serde(default, deserialize_with = "present")]
    catalog_snapshot_version: Option<String>,
    #[serde(default, deserialize_with = "present")]
    context_registry_version_id: Option<String>,
}

/// The fields of one signature object as a reader of some other representation found
/// them (a host language's objects read in place), for
/// [`StateSignature::from_well_formed_fields`]: each `None` when the key is absent (or,
/// for `datasets`, `partition_column`, `merge_keys`, `max_cost_dbu` and `custom`, when
/// it holds `null`), else the value read with its expected type. A reader that meets
/// anything else (a value of another type, an unknown `target_layer` or
/// `classification` name, a duplicate key, a `signature`/`state_signature` wrapper key,
/// a value of an unknown key that JSON has not) gives up instead of filling these.
#[derive(Debug, Default)]
pub struct SignatureFields {
    /// `domain`.
    pub domain: Option<String>,
    /// `intent`.
    pub intent: Option<String>,
    /// `target_layer`, a known layer name.
    pub target_layer: Option<TargetLayer>,
    /// `datasets` (`None`: absent or `null`).
    pub datasets: Option<Vec<DatasetFields>>,
    /// `constraints`.
    pub constraints: Option<ConstraintFields>,
    /// `execution_context`.
    pub execution_context: Option<ContextFields>,
    /// `intent_id`.
    pub intent_id: Option<String>,
    /// `source_intent_raw`.
    pub source_intent_raw: Option<String>,
}

/// One dataset object's fields (see [`SignatureFields`]).
#[derive(Debug, Default)]
pub struct DatasetFields {
    /// `name`.
    pub name: Option<String>,
    /// `classification`, a known classification name.
    pub classification: Option<DatasetClassification>,
    /// `size_gb`.
    pub size_gb: Option<Number>,
    /// `pii_columns`.
    pub pii_columns: Option<Vec<String>>,
    /// `partition_column` (`None`: absent or `null`).
    pub partition_column: Option<String>,
    /// `merge_keys` (`None`: absent or `null`).
    pub merge_keys: Option<Vec<String>>,
}

/// The `constraints` object's fields (see [`SignatureFields`]).
#[derive(Debug, Default)]
pub struct ConstraintFields {
    /// `no_pii_raw`.
    pub no_pii_raw: Option<bool>,
    /// `merge_key_required`.
    pub merge_key_required: Option<bool>,
    /// `enforce_types`.
    pub enforce_types: Option<bool>,
    /// `partition_by`.
    pub partition_by: Option<Vec<String>>,
    /// `max_cost_dbu` (`None`: absent or `null`).
    pub max_cost_dbu: Option<Number>,
    /// `custom` (`None`: absent or `null`).
    pub custom: Option<Map<String, Value>>,
}

/// The `execution_context` object's fields (see [`SignatureFields`]).
#[derive(Debug, Default)]
pub struct ContextFields {
    /// `policy_bundle_version`.
    pub policy_bundle_version: Option<String>,
    /// `catalog_snapshot_version`.
    pub catalog_snapshot_version: Option<String>,
    /// `context_registry_version_id`.
    pub context_registry_version_id: Option<String>,
}

impl RawSig {
    fn into_fields(self) -> SignatureFields {
        SignatureFields {
            domain: self.domain,
            intent: self.intent,
            target_layer: self.target_layer.map(|Name(t)| t),
            datasets: self.datasets.map(|ds| {
                ds.into_iter()
                    .map(|MapOnly(d)| DatasetFields {
                        name: d.name,
                        classification: d.classification.map(|Name(c)| c),
                        size_gb: d.size_gb,
                        pii_columns: d.pii_columns,
                        partition_column: d.partition_column,
                        merge_keys: d.merge_keys,
                    })
                    .collect()
            }),
            constraints: self.constraints.map(|MapOnly(c)| ConstraintFields {
                no_pii_raw: c.no_pii_raw,
                merge_key_required: c.merge_key_required,
                enforce_types: c.enforce_types,
                partition_by: c.partition_by,
                max_cost_dbu: c.max_cost_dbu,
                custom: c.custom,
            }),
            execution_context: self.execution_context.map(|MapOnly(c)| ContextFields {
                policy_bundle_version: c.policy_bundle_version,
                catalog_snapshot_version: c.catalog_snapshot_version,
                context_registry_version_id: c.context_registry_version_id,
            }),
            intent_id: self.intent_id,
            source_intent_raw: self.source_intent_raw,
        }
    }
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|s| has_text(s))
}

fn non_blank_list(items: Vec<String>) -> Option<Vec<String>> {
    items.iter().all(|s| has_text(s)).then_some(items)
}

fn non_negative(n: Number) -> Option<Number> {
    n.as_f64().is_some_and(|x| x >= 0.0).then_some(n)
}

fn dataset(raw: DatasetFields) -> Option<DatasetRef> {
    let classification = raw
        .classification
        .unwrap_or(DatasetClassification::Internal);
    let size_gb = match raw.size_gb {
        None => float_number(0.0),
        Some(n) => non_negative(n)?,
    };
    Some(DatasetRef {
        name: non_blank(raw.name)?,
        classification,
        size_gb,
        pii_columns: match raw.pii_columns {
            None => Vec::new(),
            Some(items) => non_blank_list(items)?,
        },
        partition_column: raw.partition_column,
        merge_keys: raw.merge_keys.unwrap_or_default(),
    })
}

fn constraints(raw: Option<ConstraintFields>) -> Option<SignatureConstraints> {
    let Some(c) = raw else {
        return Some(SignatureConstraints::default());
    };
    Some(SignatureConstraints {
        no_pii_raw: c.no_pii_raw.unwrap_or(true),
        merge_key_required: c.merge_key_required.unwrap_or(true),
        enforce_types: c.enforce_types.unwrap_or(true),
        partition_by: match c.partition_by {
            None => Vec::new(),
            Some(items) => non_blank_list(items)?,
        },
        max_cost_dbu: match c.max_cost_dbu {
            None => None,
            Some(n) => Some(non_negative(n)?),
        },
        custom: c.custom.unwrap_or_default(),
    })
}

/// serde_json's nesting limit when it builds a `Value` (the general path).
const GENERAL_DEPTH_LIMIT: usize = 128;

/// True for text where the fast path could be more lenient than the general path.
/// Unknown keys are skipped (`IgnoredAny`) without the checks a `Value` parse makes:
/// a `\u` escape of a lone UTF-16 surrogate and nesting deeper than 128 are errors
/// there, but pass unseen inside an ignored value. Any surrogate escape or more than
/// 128 opening brackets sends the text to the general path, which then answers for
/// both (a valid signature reads the same either way, only slower).
fn needs_general_path(text: &str) -> bool {
    // `[` and `{` are the bytes with `b | 0x20 == b'{'`; counting into a `u8` per
    // 255-byte chunk lets the loop vectorise (~35 ns for a 1 KB signature).
    let opens: usize = text
        .as_bytes()
        .chunks(255)
        .map(|c| usize::from(c.iter().fold(0u8, |n, b| n + u8::from(b | 0x20 == b'{'))))
        .sum();
    if opens > GENERAL_DEPTH_LIMIT {
        return true;
    }
    let mut rest = text;
    while let Some(i) = rest.find("\\u") {
        let tail = rest.get(i + 2..).unwrap_or_default();
        if let [b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F', ..] = tail.as_bytes() {
            return true;
        }
        rest = tail;
    }
    false
}

/// The signature `text` denotes when it is a valid, unwrapped signature whose every
/// field has its expected type; `None` otherwise (the caller then takes the general path).
pub(super) fn parse(text: &str, require_datasets: bool) -> Option<StateSignature> {
    if needs_general_path(text) {
        return None;
    }
    let MapOnly(raw) = serde_json::from_str::<MapOnly<RawSig>>(text).ok()?;
    build(raw, require_datasets)
}

/// [`parse`] over any deserializer that presents one JSON value (see
/// [`StateSignature::read_well_formed`]).
pub(super) fn read<'de, D: Deserializer<'de>>(
    d: D,
    require_datasets: bool,
) -> Option<StateSignature> {
    let MapOnly(raw) = MapOnly::<RawSig>::deserialize(d).ok()?;
    build(raw, require_datasets)
}

/// The signature `raw` denotes when it is valid and unwrapped, else `None`.
fn build(raw: RawSig, require_datasets: bool) -> Option<StateSignature> {
    if raw.signature.is_some() || raw.state_signature.is_some() {
        return None;
    }
    build_fields(raw.into_fields(), require_datasets)
}

/// The signature `fields` denote when they make a valid signature, else `None` (see
/// [`StateSignature::from_well_formed_fields`]).
pub(super) fn build_fields(raw: SignatureFields, require_datasets: bool) -> Option<StateSignature> {
    let target_layer = raw.target_layer?;
    let datasets: Vec<DatasetRef> = raw
        .datasets
        .unwrap_or_default()
        .into_iter()
        .map(dataset)
        .collect::<Option<_>>()?;
    if require_datasets && datasets.is_empty() {
        return None;
    }
    let ctx = raw.execution_context?;
    Some(StateSignature {
        domain: non_blank(raw.domain)?,
        intent: non_blank(raw.intent)?,
        target_layer,
        datasets,
        constraints: constraints(raw.constraints)?,
        execution_context: ExecutionContext {
            policy_bundle_version: non_blank(ctx.policy_bundle_version)?,
            catalog_snapshot_version: non_blank(ctx.catalog_snapshot_version)?,
            context_registry_version_id: non_blank(ctx.context_registry_version_id)?,
        },
        intent_id: raw.intent_id.unwrap_or_default(),
        source_intent_raw: raw.source_intent_raw.unwrap_or_default(),
    })
}
