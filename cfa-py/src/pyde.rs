//! Reading a signature dict in place into the typed signature ([`signature`]), without
//! building a JSON value or text first: the signature's own objects (the top-level
//! dict, `datasets` and its dicts, `constraints`, `execution_context`, their strings,
//! booleans and string lists) are walked by hand into
//! [`SignatureFields`](cfa::types::validate::SignatureFields); everything else (numbers,
//! `custom`, the values of unknown keys, and every value of a type other than the one
//! expected) goes through a serde [`Deserializer`](de::Deserializer) over Python objects
//! ([`PyDe`]).
//!
//! Both present exactly the JSON value [`convert::to_value`] would build from the same
//! object, and fail wherever `to_value` fails (a key that is not a `str`, an `int`
//! beyond 64 bits, a float that is not finite, a `str` that is not UTF-8, nesting
//! deeper than [`convert::MAX_DEPTH`], any other type), including inside keys the
//! reader ignores. The hand walk reads what `StateSignature::read_well_formed` over a
//! [`PyDe`] of the whole dict would read, and gives up where it would give up (each
//! helper below says which branch of [`PyDe`] it stands for), so
//! [`StateSignature::from_well_formed_fields`] answers only for the dicts the value path
//! would read the same way; for every other object [`signature`] returns `None` and the
//! caller takes the value path, which raises the error it always raised.

use crate::convert;
use cfa::StateSignature;
use cfa::types::validate::{ConstraintFields, ContextFields, DatasetFields, SignatureFields};
use cfa::types::{DatasetClassification, TargetLayer};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyTupleMethods,
    dict::BoundDictIterator, list::BoundListIterator, tuple::BoundTupleIterator,
};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The signature `obj` denotes when it is a dict holding a valid, unwrapped signature
/// that the value path would read identically; `None` for anything else (then
/// [`convert::to_value`] and `StateSignature::from_validated_value` give the verdict).
pub fn signature(obj: &Bound<'_, PyAny>, require_datasets: bool) -> Option<StateSignature> {
    let dict = object(obj)?;
    let fields = signature_fields(dict)?;
    StateSignature::from_well_formed_fields(fields, require_datasets)
}

/// The keys of one object already read: a key read twice ends the read, as serde's
/// derived struct readers end it (`duplicate field`), which only a dict holding two
/// keys that read as the same text (a `str` subclass's own hash) can give.
struct Seen(u8);

impl Seen {
    fn first(&mut self, bit: u8) -> Option<()> {
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }
}

/// A dict key's text: a `str` (exactly, by one pointer comparison, or a subclass) that
/// is UTF-8 ([`Key`]); `None` for any other key.
// Inlined at every use (with `text` and `string`): called for each key and string
// value, ~50 times a signature.
#[inline(always)]
fn key<'a>(k: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    let s = match k.cast_exact::<PyString>() {
        Ok(s) => s,
        Err(_) => k.cast::<PyString>().ok()?,
    };
    s.to_str().ok()
}

/// A `str` value's text (`PyDe::deserialize_str`: a `str`, exactly or a subclass, that
/// is UTF-8; anything else is refused by every visitor that wants a string).
#[inline(always)]
fn text<'a>(v: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    key(v)
}

/// A `String` field.
#[inline(always)]
fn string(v: &Bound<'_, PyAny>) -> Option<String> {
    text(v).map(str::to_owned)
}

/// An `Option<String>` field (`PyDe::deserialize_option`: `None` is `None`).
#[inline]
fn optional_string(v: &Bound<'_, PyAny>) -> Option<Option<String>> {
    if v.is_none() {
        return Some(None);
    }
    string(v).map(Some)
}

/// A `bool` field (`PyDe::deserialize_bool`: only `bool`, which has no subclasses,
/// visits a boolean).
#[inline]
fn boolean(v: &Bound<'_, PyAny>) -> Option<bool> {
    v.cast_exact::<PyBool>().ok().map(|b| b.is_true())
}

/// Each item of a `list` or `tuple` (exactly or a subclass) read by `item`
/// (`PyDe::deserialize_seq`: every other type is refused by a sequence visitor).
fn items<'py, T>(
    v: &Bound<'py, PyAny>,
    mut item: impl FnMut(Bound<'py, PyAny>) -> Option<T>,
) -> Option<Vec<T>> {
    // an exact `list` (what a signature dict holds) by one pointer comparison
    if let Ok(l) = v.cast_exact::<PyList>().or_else(|_| v.cast::<PyList>()) {
        let len = l.len();
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            out.push(item(l.get_item(i).ok()?)?);
        }
        return Some(out);
    }
    let t = v.cast::<PyTuple>().ok()?;
    t.iter().map(item).collect()
}

/// A `Vec<String>` field.
fn strings(v: &Bound<'_, PyAny>) -> Option<Vec<String>> {
    items(v, |s| string(&s))
}

/// A `dict` (exactly or a subclass) for a struct (`PyDe::deserialize_map`: a struct
/// visitor refuses every other type); [`owned_object`] for a value the walk owns.
#[inline]
fn object<'a, 'py>(v: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyDict>> {
    // an exact `dict` by one pointer comparison
    v.cast_exact::<PyDict>()
        .or_else(|_| v.cast::<PyDict>())
        .ok()
}

/// [`object`] for a value the walk owns (a dict entry's or a list item's): the dict
/// itself, so that iterating it takes no reference of its own (`iter()` on a borrowed
/// dict clones it: a reference increment and decrement, each a call through the stable
/// ABI).
#[inline]
fn owned_object(v: Bound<'_, PyAny>) -> Option<Bound<'_, PyDict>> {
    match v.cast_into_exact::<PyDict>() {
        Ok(d) => Some(d),
        Err(e) => e.into_inner().cast_into::<PyDict>().ok(),
    }
}

/// A number field (`serde_json::Number` over `PyDe::deserialize_any`): an exact `int`
/// that fits in an `i64` is visited as one, an exact `float` that is finite as an `f64`
/// (which `Number` takes as `Number::from_f64` does: every finite float); anything else
/// takes serde's way.
fn number(v: Bound<'_, PyAny>, depth: usize) -> Option<Number> {
    if v.is_exact_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            return Some(Number::from(i));
        }
    } else if let Ok(f) = v.cast_exact::<PyFloat>() {
        let x = f.value();
        return if x.is_finite() {
            Number::from_f64(x)
        } else {
            None
        };
    }
    serde_read::<Number>(v, depth)
}

/// Any other field, read by serde over [`PyDe`] at `depth`, as the derived readers of
/// `cfa-types` read it.
fn serde_read<'de, T: Deserialize<'de>>(v: Bound<'_, PyAny>, depth: usize) -> Option<T> {
    T::deserialize(PyDe { obj: v, depth }).ok()
}

/// The value of a key the reader does not know: walked (and refused where
/// [`convert::to_value`] fails), then dropped.
fn ignored(v: Bound<'_, PyAny>, depth: usize) -> Option<()> {
    serde_read::<IgnoredAny>(v, depth).map(|_| ())
}

/// The top-level dict (depth 0: its values are at depth 1).
fn signature_fields(d: &Bound<'_, PyDict>) -> Option<SignatureFields> {
    let mut f = SignatureFields::default();
    let mut seen = Seen(0);
    for (k, v) in d.iter() {
        match key(&k)? {
            "domain" => {
                seen.first(1)?;
                f.domain = Some(string(&v)?);
            }
            "intent" => {
                seen.first(2)?;
                f.intent = Some(string(&v)?);
            }
            "target_layer" => {
                seen.first(4)?;
                f.target_layer = Some(TargetLayer::parse(text(&v)?)?);
            }
            "datasets" => {
                seen.first(8)?;
                f.datasets = if v.is_none() {
                    None
                } else {
                    Some(items(&v, |item| dataset_fields(owned_object(item)?))?)
                };
            }
            "constraints" => {
                seen.first(16)?;
                f.constraints = Some(constraint_fields(owned_object(v)?)?);
            }
            "execution_context" => {
                seen.first(32)?;
                f.execution_context = Some(context_fields(owned_object(v)?)?);
            }
            "intent_id" => {
                seen.first(64)?;
                f.intent_id = Some(string(&v)?);
            }
            "source_intent_raw" => {
                seen.first(128)?;
                f.source_intent_raw = Some(string(&v)?);
            }
            // a wrapped signature is read by the value path
            "signature" | "state_signature" => return None,
            _ => ignored(v, 1)?,
        }
    }
    Some(f)
}

/// One dataset dict (depth 2: its values are at depth 3).
fn dataset_fields(d: Bound<'_, PyDict>) -> Option<DatasetFields> {
    let mut f = DatasetFields::default();
    let mut seen = Seen(0);
    for (k, v) in d {
        match key(&k)? {
            "name" => {
                seen.first(1)?;
                f.name = Some(string(&v)?);
            }
            "classification" => {
                seen.first(2)?;
                f.classification = Some(DatasetClassification::parse(text(&v)?)?);
            }
            "size_gb" => {
                seen.first(4)?;
                f.size_gb = Some(number(v, 3)?);
            }
            "pii_columns" => {
                seen.first(8)?;
                f.pii_columns = Some(strings(&v)?);
            }
            "partition_column" => {
                seen.first(16)?;
                f.partition_column = optional_string(&v)?;
            }
            "merge_keys" => {
                seen.first(32)?;
                f.merge_keys = if v.is_none() {
                    None
                } else {
                    Some(strings(&v)?)
                };
            }
            _ => ignored(v, 3)?,
        }
    }
    Some(f)
}

/// The `constraints` dict (depth 1: its values are at depth 2).
fn constraint_fields(d: Bound<'_, PyDict>) -> Option<ConstraintFields> {
    let mut f = ConstraintFields::default();
    let mut seen = Seen(0);
    for (k, v) in d {
        match key(&k)? {
            "no_pii_raw" => {
                seen.first(1)?;
                f.no_pii_raw = Some(boolean(&v)?);
            }
            "merge_key_required" => {
                seen.first(2)?;
                f.merge_key_required = Some(boolean(&v)?);
            }
            "enforce_types" => {
                seen.first(4)?;
                f.enforce_types = Some(boolean(&v)?);
            }
            "partition_by" => {
                seen.first(8)?;
                f.partition_by = Some(strings(&v)?);
            }
            "max_cost_dbu" => {
                seen.first(16)?;
                f.max_cost_dbu = if v.is_none() {
                    None
                } else {
                    Some(number(v, 2)?)
                };
            }
            "custom" => {
                seen.first(32)?;
                f.custom = custom(v)?;
            }
            _ => ignored(v, 2)?,
        }
    }
    Some(f)
}

/// `constraints.custom` (depth 2), an `Option<Map<String, Value>>` over `PyDe`: an
/// exact empty `dict` (what signatures usually hold) is the empty map the map visitor
/// builds from no entries, read with one size check; anything else takes serde's way.
fn custom(v: Bound<'_, PyAny>) -> Option<Option<Map<String, Value>>> {
    if let Ok(d) = v.cast_exact::<PyDict>()
        && d.is_empty()
    {
        return Some(Some(Map::new()));
    }
    serde_read::<Option<Map<String, Value>>>(v, 2)
}

/// The `execution_context` dict (depth 1: its values are at depth 2).
fn context_fields(d: Bound<'_, PyDict>) -> Option<ContextFields> {
    let mut f = ContextFields::default();
    let mut seen = Seen(0);
    for (k, v) in d {
        match key(&k)? {
            "policy_bundle_version" => {
                seen.first(1)?;
                f.policy_bundle_version = Some(string(&v)?);
            }
            "catalog_snapshot_version" => {
                seen.first(2)?;
                f.catalog_snapshot_version = Some(string(&v)?);
            }
            "context_registry_version_id" => {
                seen.first(4)?;
                f.context_registry_version_id = Some(string(&v)?);
            }
            _ => ignored(v, 2)?,
        }
    }
    Some(f)
}

/// Why the read stopped. It carries nothing: the value path reports the error.
#[derive(Debug)]
pub struct Refused;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read in place")
    }
}

impl std::error::Error for Refused {}

impl de::Error for Refused {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Refused
    }
}

/// One Python value at `depth` (the top-level object is at depth 0, as in
/// [`convert::to_value`]).
struct PyDe<'py> {
    obj: Bound<'py, PyAny>,
    depth: usize,
}

impl PyDe<'_> {
    fn checked_depth(&self) -> Result<(), Refused> {
        if self.depth > convert::MAX_DEPTH {
            Err(Refused)
        } else {
            Ok(())
        }
    }
}

impl<'de> de::Deserializer<'de> for PyDe<'_> {
    type Error = Refused;

    /// The checks of [`convert::to_value`], in its order.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        let obj = &self.obj;
        if obj.is_none() {
            return visitor.visit_unit();
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return visitor.visit_str(s.to_str().map_err(|_| Refused)?);
        }
        // bool before int: Python's bool is an int subclass
        if let Ok(b) = obj.cast::<PyBool>() {
            return visitor.visit_bool(b.is_true());
        }
        if obj.is_instance_of::<PyInt>() {
            if let Ok(i) = obj.extract::<i64>() {
                return visitor.visit_i64(i);
            }
            if let Ok(u) = obj.extract::<u64>() {
                return visitor.visit_u64(u);
            }
            return Err(Refused);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            let x = f.value();
            if !x.is_finite() {
                return Err(Refused);
            }
            return visitor.visit_f64(x);
        }
        let depth = self.depth + 1;
        if let Ok(d) = obj.cast::<PyDict>() {
            return visitor.visit_map(Entries {
                items: d.iter(),
                value: None,
                depth,
            });
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return visitor.visit_seq(Items {
                len: l.len(),
                items: Seq::List(l.iter()),
                depth,
            });
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            return visitor.visit_seq(Items {
                len: t.len(),
                items: Seq::Tuple(t.iter()),
                depth,
            });
        }
        Err(Refused)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        if self.obj.is_none() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Refused> {
        visitor.visit_newtype_struct(self)
    }

    // The typed entry points below answer for an object of exactly the type the
    // reader asks for (what a signature dict holds) with one pointer comparison, and
    // hand anything else to `deserialize_any`: for such an object `deserialize_any`
    // takes the same branch (an exact `str`, `bool`, `list` or `dict` is none of the
    // types it checks first), so the value presented and every refusal are the same.

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        if let Ok(s) = self.obj.cast_exact::<PyString>() {
            return visitor.visit_str(s.to_str().map_err(|_| Refused)?);
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        if let Ok(b) = self.obj.cast_exact::<PyBool>() {
            return visitor.visit_bool(b.is_true());
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        if let Ok(l) = self.obj.cast_exact::<PyList>() {
            return visitor.visit_seq(Items {
                len: l.len(),
                items: Seq::List(l.iter()),
                depth: self.depth + 1,
            });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        self.checked_depth()?;
        if let Ok(d) = self.obj.cast_exact::<PyDict>() {
            return visitor.visit_map(Entries {
                items: d.iter(),
                value: None,
                depth: self.depth + 1,
            });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Refused> {
        self.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct enum
        identifier ignored_any
    }
}

/// A dict key: only a `str` (as [`convert::to_value`] requires), never read as a
/// number (a struct field can be named by its index otherwise).
struct Key<'py>(Bound<'py, PyAny>);

impl<'de> de::Deserializer<'de> for Key<'_> {
    type Error = Refused;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Refused> {
        // an exact `str` (every key of a signature dict) by one pointer comparison
        let key = match self.0.cast_exact::<PyString>() {
            Ok(key) => key,
            Err(_) => self.0.cast::<PyString>().map_err(|_| Refused)?,
        };
        visitor.visit_str(key.to_str().map_err(|_| Refused)?)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A dict's entries, in its order (no size hint: the readers of a signature's objects
/// take none, and asking the dict its size is a call through the stable ABI).
struct Entries<'py> {
    items: BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
    depth: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Refused;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Refused> {
        let Some((key, value)) = self.items.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Refused> {
        let obj = self.value.take().ok_or(Refused)?;
        seed.deserialize(PyDe {
            obj,
            depth: self.depth,
        })
    }
}

/// The items of a list or a tuple.
enum Seq<'py> {
    List(BoundListIterator<'py>),
    Tuple(BoundTupleIterator<'py>),
}

/// A list's or a tuple's items, in order.
struct Items<'py> {
    len: usize,
    items: Seq<'py>,
    depth: usize,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Refused;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Refused> {
        let next = match &mut self.items {
            Seq::List(items) => items.next(),
            Seq::Tuple(items) => items.next(),
        };
        let Some(obj) = next else {
            return Ok(None);
        };
        seed.deserialize(PyDe {
            obj,
            depth: self.depth,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}
