//! Immutable strings and string lists that clone without allocating, for the text a
//! decision repeats from its rules: fault codes, messages, remediation steps,
//! interventions and patch paths (docs/architecture.md#the-decision-path).
//!
//! Both types serialise, compare, hash, print and debug-print exactly as `String` and
//! `Vec<String>` do, so JSON, text output and hashes do not depend on which one a
//! value is held in.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An immutable string that is either `'static` or reference-counted: cloning it
/// never allocates. Behaves as a `String` for serde, `==`, ordering, hashing,
/// `Display` and `Debug`.
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl SharedStr {
    /// A string borrowed for the whole program; no allocation, ever.
    pub const fn from_static(s: &'static str) -> Self {
        SharedStr(Repr::Static(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// True when both hold the very same text allocation (or the same static),
    /// a cheap check before comparing bytes.
    fn same_storage(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Shared(a), Repr::Shared(b)) => Arc::ptr_eq(a, b),
            (Repr::Static(a), Repr::Static(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::from_static("")
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.same_storage(other) || self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Repr::Shared(Arc::from(s)))
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        SharedStr(Repr::Shared(Arc::from(s.as_str())))
    }
}

impl From<&str> for SharedStr {
    /// Copies `s`; use [`SharedStr::from_static`] for literals to avoid the copy.
    fn from(s: &str) -> Self {
        SharedStr(Repr::Shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr(Repr::Shared(s))
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl From<SharedStr> for serde_json::Value {
    fn from(s: SharedStr) -> Self {
        serde_json::Value::String(s.as_str().to_owned())
    }
}

impl From<&SharedStr> for serde_json::Value {
    fn from(s: &SharedStr) -> Self {
        serde_json::Value::String(s.as_str().to_owned())
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

/// An immutable list of [`SharedStr`] that clones without allocating: either a
/// `'static` slice or one reference-counted slice. Behaves as a `Vec<String>` for
/// serde, `==`, `Debug` and iteration.
#[derive(Clone)]
pub struct SharedList(ListRepr);

#[derive(Clone)]
enum ListRepr {
    Static(&'static [SharedStr]),
    Shared(Arc<[SharedStr]>),
}

impl SharedList {
    /// The empty list; no allocation.
    pub const fn new() -> Self {
        SharedList(ListRepr::Static(&[]))
    }

    /// A list borrowed for the whole program (e.g. a `const` of
    /// [`SharedStr::from_static`] items): cloning it touches no reference count.
    pub const fn from_static(items: &'static [SharedStr]) -> Self {
        SharedList(ListRepr::Static(items))
    }

    /// The items.
    pub fn as_slice(&self) -> &[SharedStr] {
        match &self.0 {
            ListRepr::Static(items) => items,
            ListRepr::Shared(items) => items,
        }
    }
}

impl Default for SharedList {
    fn default() -> Self {
        SharedList::new()
    }
}

impl PartialEq for SharedList {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SharedList {}

impl Hash for SharedList {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl Deref for SharedList {
    type Target = [SharedStr];
    fn deref(&self) -> &[SharedStr] {
        self.as_slice()
    }
}

impl AsRef<[SharedStr]> for SharedList {
    fn as_ref(&self) -> &[SharedStr] {
        self.as_slice()
    }
}

impl fmt::Debug for SharedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a> IntoIterator for &'a SharedList {
    type Item = &'a SharedStr;
    type IntoIter = std::slice::Iter<'a, SharedStr>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: Into<SharedStr>> FromIterator<T> for SharedList {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let items: Vec<SharedStr> = iter.into_iter().map(Into::into).collect();
        SharedList::from(items)
    }
}

impl<T: Into<SharedStr>> From<Vec<T>> for SharedList {
    fn from(items: Vec<T>) -> Self {
        if items.is_empty() {
            SharedList::new()
        } else {
            SharedList(ListRepr::Shared(
                items.into_iter().map(Into::into).collect(),
            ))
        }
    }
}

impl<T> PartialEq<Vec<T>> for SharedList
where
    SharedStr: PartialEq<T>,
{
    fn eq(&self, other: &Vec<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T> PartialEq<[T]> for SharedList
where
    SharedStr: PartialEq<T>,
{
    fn eq(&self, other: &[T]) -> bool {
        self.as_slice() == other
    }
}

impl<T> PartialEq<&[T]> for SharedList
where
    SharedStr: PartialEq<T>,
{
    fn eq(&self, other: &&[T]) -> bool {
        self.as_slice() == *other
    }
}

impl<T, const N: usize> PartialEq<[T; N]> for SharedList
where
    SharedStr: PartialEq<T>,
{
    fn eq(&self, other: &[T; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Serialize for SharedList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.as_slice())
    }
}

impl<'de> Deserialize<'de> for SharedList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(deserializer).map(SharedList::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_str_behaves_as_its_text() {
        let a = SharedStr::from_static("x é");
        let b = SharedStr::from("x é".to_owned());
        assert_eq!(a, b);
        assert_eq!(a, "x é");
        assert_eq!(b, "x é".to_owned());
        assert_eq!(format!("{a} {a:?}"), format!("{} {:?}", "x é", "x é"));
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            serde_json::to_string("x é").unwrap()
        );
        let back: SharedStr = serde_json::from_str("\"q\"").unwrap();
        assert_eq!(back, "q");
        assert_ne!(SharedStr::from("a"), SharedStr::from("b"));
        let (a, b) = (SharedStr::from("a"), SharedStr::from_static("b"));
        assert!(a < b);
        assert_eq!(a.cmp(&a.clone()), std::cmp::Ordering::Equal);
        assert_eq!(SharedStr::default(), "");
    }

    #[test]
    fn clones_share_the_text() {
        let a = SharedStr::from("shared".to_owned());
        let b = a.clone();
        assert!(a.same_storage(&b));
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert!(!a.same_storage(&SharedStr::from("shared")));
    }

    #[test]
    fn shared_list_behaves_as_a_vec_of_strings() {
        let l: SharedList = vec!["a".to_owned(), "b".to_owned()].into();
        assert_eq!(l, ["a", "b"]);
        assert_eq!(l, vec!["a".to_owned(), "b".to_owned()]);
        assert_ne!(l, ["a"]);
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            serde_json::to_string(&vec!["a", "b"]).unwrap()
        );
        assert_eq!(format!("{l:?}"), format!("{:?}", vec!["a", "b"]));
        let back: SharedList = serde_json::from_str("[\"a\",\"b\"]").unwrap();
        assert_eq!(back, l);
        let empty = SharedList::new();
        assert!(empty.is_empty());
        assert_eq!(SharedList::from(Vec::<String>::new()), empty);
        assert_eq!(serde_json::to_string(&empty).unwrap(), "[]");
        assert_eq!(l.clone().as_ptr(), l.as_ptr());
        const STATIC: &[SharedStr] = &[SharedStr::from_static("a"), SharedStr::from_static("b")];
        let s = SharedList::from_static(STATIC);
        assert_eq!(s, l);
        assert_eq!(format!("{s:?}"), format!("{l:?}"));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            serde_json::to_string(&l).unwrap()
        );
        assert_eq!(s.clone().as_ptr(), STATIC.as_ptr());
    }
}
