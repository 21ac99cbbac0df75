//! A serde [`Deserializer`](de::Deserializer) over Python objects: a signature dict is
//! read in place into the typed signature ([`signature`]), without building a JSON
//! value or text first.
//!
//! It presents exactly the JSON value [`convert::to_value`] would build from the same
//! object, and fails wherever `to_value` fails (a key that is not a `str`, an `int`
//! beyond 64 bits, a float that is not finite, a `str` that is not UTF-8, nesting
//! deeper than [`convert::MAX_DEPTH`], any other type), including inside keys the
//! reader ignores. So [`StateSignature::read_well_formed`] over it answers only for
//! the dicts the value path would read the same way; for every other object
//! [`signature`] returns `None` and the caller takes the value path, which raises the
//! error it always raised.

use crate::convert;
use cfa::StateSignature;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyTupleMethods,
    dict::BoundDictIterator, list::BoundListIterator, tuple::BoundTupleIterator,
};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// The signature `obj` denotes when it is a dict holding a valid, unwrapped signature
/// that the value path would read identically; `None` for anything else (then
/// [`convert::to_value`] and `StateSignature::from_validated_value` give the verdict).
pub fn signature(obj: &Bound<'_, PyAny>, require_datasets: bool) -> Option<StateSignature> {
    if !obj.is_instance_of::<PyDict>() {
        return None;
    }
    StateSignature::read_well_formed(
        PyDe {
            obj: obj.clone(),
            depth: 0,
        },
        require_datasets,
    )
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
