//! The value of a [`Patch`](crate::Patch): any JSON value, or a list of one short
//! string held inline, which is what a partition fix sets most of the time and which
//! a `serde_json::Value` cannot hold without two allocations (the array and the
//! string; docs/architecture.md#the-decision-path).
//!
//! Both forms serialise, compare, print and debug-print as the JSON value they stand
//! for, so JSON, text output and hashes do not depend on which one a value is held in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Strings of up to this many bytes are held inline by [`PatchValue::strings`].
const INLINE: usize = 22;

/// The new value of a patch: a JSON value, stored without allocating when it is a
/// list of one short string. Behaves as the `serde_json::Value` it stands for for
/// serde, `==` (also against a `Value`), `Display` and `Debug`.
#[derive(Clone)]
pub struct PatchValue(Repr);

#[derive(Clone)]
enum Repr {
    Json(Value),
    /// `[text]`, the text's UTF-8 bytes in `bytes[..len]`.
    OneShort {
        len: u8,
        bytes: [u8; INLINE],
    },
}

impl PatchValue {
    /// The JSON list of `items`; a list of one string of at most 22 bytes is held
    /// inline, without allocating.
    pub fn strings(items: &[&str]) -> Self {
        if let [one] = items
            && let Some(v) = Self::one_short(one)
        {
            return v;
        }
        PatchValue(Repr::Json(Value::Array(
            items
                .iter()
                .map(|s| Value::String((*s).to_owned()))
                .collect(),
        )))
    }

    fn one_short(text: &str) -> Option<Self> {
        let len = u8::try_from(text.len()).ok()?;
        let mut bytes = [0u8; INLINE];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(PatchValue(Repr::OneShort { len, bytes }))
    }

    /// The JSON value, borrowed when it is held as one (built for an inline list).
    pub fn as_value(&self) -> Cow<'_, Value> {
        match &self.0 {
            Repr::Json(v) => Cow::Borrowed(v),
            Repr::OneShort { .. } => Cow::Owned(Value::Array(vec![Value::String(
                self.single_str().unwrap_or_default().to_owned(),
            )])),
        }
    }

    /// The JSON value, owned.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Json(v) => v,
            Repr::OneShort { .. } => self.as_value().into_owned(),
        }
    }

    /// The boolean, when the value is one.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.0 {
            Repr::Json(v) => v.as_bool(),
            Repr::OneShort { .. } => None,
        }
    }

    /// The items of a list whose items are all strings (`None` for anything else).
    pub fn as_strings(&self) -> Option<Vec<&str>> {
        match &self.0 {
            Repr::Json(v) => v
                .as_array()?
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>(),
            Repr::OneShort { .. } => self.single_str().map(|s| vec![s]),
        }
    }

    /// True when the value is the list of exactly the strings `items`, in order.
    pub fn is_strings(&self, items: &[&str]) -> bool {
        match &self.0 {
            Repr::Json(v) => v.as_array().is_some_and(|list| {
                list.len() == items.len()
                    && list.iter().zip(items).all(|(v, s)| v.as_str() == Some(*s))
            }),
            Repr::OneShort { len, bytes } => {
                matches!(items, [one] if Some(one.as_bytes()) == bytes.get(..usize::from(*len)))
            }
        }
    }

    /// The string of a list of exactly one string (in either form).
    pub fn as_single_string(&self) -> Option<&str> {
        self.single_str()
    }

    fn single_str(&self) -> Option<&str> {
        match &self.0 {
            Repr::Json(Value::Array(list)) => match list.as_slice() {
                [Value::String(s)] => Some(s),
                _ => None,
            },
            Repr::Json(_) => None,
            Repr::OneShort { len, bytes } => {
                std::str::from_utf8(bytes.get(..usize::from(*len))?).ok()
            }
        }
    }
}

impl From<Value> for PatchValue {
    fn from(v: Value) -> Self {
        PatchValue(Repr::Json(v))
    }
}

impl From<PatchValue> for Value {
    fn from(v: PatchValue) -> Self {
        v.into_value()
    }
}

impl PartialEq for PatchValue {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Json(a), Repr::Json(b)) => a == b,
            _ => match (self.single_str(), other.single_str()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }
}

impl PartialEq<Value> for PatchValue {
    fn eq(&self, other: &Value) -> bool {
        match &self.0 {
            Repr::Json(a) => a == other,
            Repr::OneShort { .. } => *self == PatchValue(Repr::Json(other.clone())),
        }
    }
}

impl PartialEq<PatchValue> for Value {
    fn eq(&self, other: &PatchValue) -> bool {
        other == self
    }
}

impl fmt::Display for PatchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.as_value(), f)
    }
}

impl fmt::Debug for PatchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_value(), f)
    }
}

impl Serialize for PatchValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Json(v) => v.serialize(serializer),
            Repr::OneShort { .. } => {
                serializer.collect_seq(std::iter::once(self.single_str().unwrap_or_default()))
            }
        }
    }
}

impl<'de> Deserialize<'de> for PatchValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(PatchValue::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_inline_list_behaves_as_its_json_value() {
        for items in [
            vec![],
            vec!["processing_date"],
            vec!["é\"\\\n"],
            vec!["a", "b"],
            vec!["exactly_twenty_two_byt"],
            vec!["twenty_three_bytes_long"],
            vec![""],
        ] {
            let v = PatchValue::strings(&items);
            let want = Value::Array(items.iter().map(|s| json!(s)).collect());
            assert_eq!(v, want);
            assert_eq!(want, v);
            assert_eq!(v, PatchValue::from(want.clone()));
            assert_eq!(PatchValue::from(want.clone()), v);
            assert_eq!(*v.as_value(), want);
            assert_eq!(v.clone().into_value(), want);
            assert_eq!(serde_json::to_string(&v).unwrap(), want.to_string());
            assert_eq!(serde_json::to_value(&v).unwrap(), want);
            assert_eq!(v.to_string(), want.to_string());
            assert_eq!(format!("{v:?}"), format!("{want:?}"));
            assert_eq!(v.as_strings().unwrap(), items);
            assert!(v.is_strings(&items));
            assert!(!v.is_strings(&["other"]));
            assert_eq!(v.as_bool(), None);
            assert_eq!(
                v.as_single_string(),
                items.first().copied().filter(|_| items.len() == 1)
            );
            let back: PatchValue = serde_json::from_str(&want.to_string()).unwrap();
            assert_eq!(back, v);
        }
        let short = PatchValue::strings(&["processing_date"]);
        assert!(matches!(short.0, Repr::OneShort { .. }));
        assert!(matches!(
            PatchValue::strings(&["twenty_three_bytes_long"]).0,
            Repr::Json(_)
        ));
        assert_ne!(short, PatchValue::strings(&["processing_dat"]));
        assert_ne!(short, PatchValue::strings(&["processing_date", "x"]));
        assert_ne!(short, json!("processing_date"));
        assert_ne!(short, json!([["processing_date"]]));
        let flag = PatchValue::from(json!(true));
        assert_eq!(flag.as_bool(), Some(true));
        assert_eq!(flag.as_strings(), None);
        assert_ne!(flag, short);
        assert_eq!(flag, json!(true));
    }
}
