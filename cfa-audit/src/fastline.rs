//! Fast path for verification: recognises a line in the reference's exact layout
//! whose values are already in canonical form, so the hashed text can be assembled
//! from raw slices of the line without re-serialising.
//!
//! Soundness: [`parse`] accepts a value's text only if it is byte-identical to what
//! `json.dumps(…, sort_keys=True)` would write for the decoded value (sorted unique
//! ASCII keys, default separators, Python escapes, Python float repr). Anything else
//! returns `None` and the caller takes the full parse + canonical writer path.

use sha2::{Digest, Sha256};

/// What the verifier reads of a reference-layout line besides its payload (which
/// [`parse`] writes to [`Scratch::payload`]). String fields include their quotes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastLine<'a> {
    pub intent_id: &'a [u8],
    /// `intent_id` holds an escape.
    pub intent_escaped: bool,
    /// Content of the `event_hash` string (no quotes, no escapes): printable ASCII,
    /// left as bytes (it is compared, never read as text, on the fast path).
    pub event_hash: &'a [u8],
    /// Content of the `previous_hash` string (no quotes, no escapes; as `event_hash`).
    pub previous_hash: &'a [u8],
    /// The top-level `policy_bundle_version` literal (with quotes).
    pub policy_bundle_version: &'a [u8],
    /// The raw value of `details.policy_bundle_version`, when details has that key.
    pub details_bundle_version: Option<&'a [u8]>,
}

/// SHA-256 of the canonical payload that [`parse`] wrote ([`Scratch::payload`]), in
/// one call over contiguous bytes.
pub(crate) fn digest(payload: &[u8]) -> [u8; 32] {
    Sha256::digest(payload).into()
}

impl FastLine<'_> {
    /// The decoded `intent_id` when it has no escapes.
    pub fn intent_plain(&self) -> Option<&str> {
        if self.intent_escaped {
            return None;
        }
        let inner = self
            .intent_id
            .get(1..self.intent_id.len().saturating_sub(1))?;
        std::str::from_utf8(inner).ok()
    }
}

/// Reusable buffers of the fast path, one per thread, so that checking a line
/// allocates nothing once they have grown to the size of the largest line.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The canonical payload (the text the event hash is taken of) written by the
    /// last [`parse`] that recognised its line.
    pub payload: Vec<u8>,
    /// The `"key": value` entries of the objects being copied (a stack of frames).
    entries: Vec<Entry>,
    /// Decoded text of keys written with escapes (sort keys of `entries`).
    keys: Vec<u8>,
    /// Copy of an object's text while its entries are put in order.
    tmp: Vec<u8>,
    /// The key order of the last details object read in place that was not in order
    /// (indices into `entries`), tried first on the next one.
    perm: Vec<usize>,
    /// The last literal without escapes read at each place that [`SEEN_SLOTS`]
    /// names (quotes included), tried first at that place on the next line.
    seen: [Vec<u8>; SEEN_SLOTS],
    /// The last text of the details' first values ([`SEEN_KEYS`] of them) that is a
    /// string, an array or an object and that [`Cursor::check_value`] accepted,
    /// tried first at that place on the next line ([`Cursor::check_value_seen`]).
    seen_values: [Vec<u8>; SEEN_KEYS],
}

/// The places whose literals repeat from line to line: `stage`, `event_type`,
/// `outcome` and `policy_bundle_version`, then the details' first keys (as
/// [`SEEN_KEYS`] counts).
const SEEN_SLOTS: usize = 4 + SEEN_KEYS;
/// How many of the details' first keys are remembered.
const SEEN_KEYS: usize = 8;

/// One `"key": value` text at `start..end` of [`Scratch::payload`] (of the line, when
/// read in place by [`Cursor::object_in_line`]), sorted by `key`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The key's first eight bytes, big-endian, zero-padded: when two prefixes differ
    /// they order the keys as the whole keys do (see [`order`]).
    prefix: u64,
    key: KeyText,
    start: usize,
    end: usize,
}

/// Where the sort key of an entry lives: in the line (no escapes) or decoded in
/// [`Scratch::keys`].
#[derive(Debug, Clone, Copy)]
enum KeyText {
    Line(usize, usize),
    Decoded(usize, usize),
}

/// The first eight bytes of `key` as a big-endian number, zero-padded.
fn key_prefix(key: &[u8]) -> u64 {
    if let Some(w) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*w);
    }
    // A short key, byte by byte (a copy of a run-time length is a `memcpy` call).
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(key) {
        *d = *s;
    }
    u64::from_be_bytes(w)
}

/// The order of two keys by code point (UTF-8 bytes): by their prefixes, and by the
/// whole keys when the prefixes are equal (a shorter key's padding is zero, which is
/// at most the byte it is compared with, so unequal prefixes never disagree with the
/// whole keys).
fn order(line: &[u8], decoded: &[u8], x: &Entry, y: &Entry) -> std::cmp::Ordering {
    x.prefix
        .cmp(&y.prefix)
        .then_with(|| key_bytes(line, decoded, x.key).cmp(key_bytes(line, decoded, y.key)))
}

fn key_bytes<'k>(line: &'k [u8], decoded: &'k [u8], k: KeyText) -> &'k [u8] {
    match k {
        KeyText::Line(s, e) => line.get(s..e).unwrap_or_default(),
        KeyText::Decoded(s, e) => decoded.get(s..e).unwrap_or_default(),
    }
}

struct Cursor<'a, 's> {
    b: &'a [u8],
    i: usize,
    /// Raw value of the `policy_bundle_version` key of the details object (depth 1).
    details_bundle_version: Option<&'a [u8]>,
    /// The last [`Cursor::string`] held an escape.
    escaped: bool,
    /// [`Cursor::check_value`] met an object nested in the details whose keys are not
    /// in order (the line is then read again by [`Cursor::object`], which sorts them).
    nested_unsorted: bool,
    s: &'s mut Scratch,
}

const MAX_DEPTH: u32 = 120;

impl<'a> Cursor<'a, '_> {
    fn eat(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i.checked_add(lit.len())?;
        if self.b.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A canonical string literal; returns the slice including quotes and sets
    /// [`Cursor::escaped`] when it holds an escape.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        self.escaped = false;
        self.eat(b"\"")?;
        loop {
            // Skip a run of plain printable ASCII; what ends it must be a quote or a
            // backslash (anything else is not canonical).
            self.i += plain_run(self.b.get(self.i..)?);
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return self.b.get(start..self.i),
                b'\\' => {
                    self.escaped = true;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f' => {}
                        b'u' => {
                            let cp = self.hex4()?;
                            match cp {
                                0x08 | 0x09 | 0x0a | 0x0c | 0x0d => return None,
                                0x00..=0x1f | 0x7f..=0xd7ff | 0xe000..=0xffff => {}
                                0xd800..=0xdbff => {
                                    self.eat(b"\\u")?;
                                    let lo = self.hex4()?;
                                    if !(0xdc00..=0xdfff).contains(&lo) {
                                        return None;
                                    }
                                }
                                _ => return None,
                            }
                        }
                        _ => return None,
                    }
                }
                0x20..=0x7e => {}
                _ => return None,
            }
        }
    }

    /// [`Cursor::string`] for a literal that is most often `N` characters long (a
    /// hash's 64 hex digits, a UUID's 36, a timestamp's 32): when the byte after
    /// that many is a quote, the `N` bytes are tested all at once ([`plain_block`]);
    /// else, or when one of them is not plain, the literal is scanned as usual.
    #[inline]
    fn string_of<const N: usize>(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if let Some(rest) = self.b.get(start..)
            && let Some(n) = plain_block::<N>(rest)
        {
            self.escaped = false;
            self.i = start + n;
            return rest.get(..n);
        }
        self.string()
    }

    /// [`Cursor::string`] for a string value in the details: hashes and UUIDs first
    /// ([`Cursor::string_of`]).
    fn value_string(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        if let Some(rest) = self.b.get(start..)
            && let Some(n) = plain_block::<64>(rest).or_else(|| plain_block::<36>(rest))
        {
            self.escaped = false;
            self.i = start + n;
            return rest.get(..n);
        }
        self.string()
    }

    /// [`Cursor::string`] at a place where the same literal comes line after line
    /// (`slot`, see [`SEEN_SLOTS`]): when the line holds the last literal without
    /// escapes read there, byte for byte, it is that literal (its bytes are plain
    /// up to its closing quote, so the scan would stop at the same place); else the
    /// literal is scanned and, when it has no escape, remembered.
    #[inline]
    fn string_seen(&mut self, slot: usize) -> Option<&'a [u8]> {
        let start = self.i;
        if let (Some(seen), Some(rest)) = (self.s.seen.get(slot), self.b.get(start..))
            && !seen.is_empty()
            && holds(rest, seen)
        {
            self.escaped = false;
            self.i = start + seen.len();
            return rest.get(..seen.len());
        }
        let lit = self.string()?;
        if !self.escaped
            && let Some(seen) = self.s.seen.get_mut(slot)
        {
            seen.clear();
            seen.extend_from_slice(lit);
        }
        Some(lit)
    }

    /// Four lowercase hex digits.
    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.peek()?;
            self.i += 1;
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            v = v * 16 + u32::from(d);
        }
        Some(v)
    }

    /// Copies a canonical value to the details text, sorting object keys where needed.
    fn value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.i;
        match self.peek()? {
            b'{' => return self.object(depth + 1),
            b'[' => {
                self.i += 1;
                self.s.payload.push(b'[');
                if self.peek()? == b']' {
                    self.i += 1;
                    self.s.payload.push(b']');
                    return Some(());
                }
                loop {
                    self.value(depth + 1)?;
                    match self.peek()? {
                        b']' => {
                            self.i += 1;
                            self.s.payload.push(b']');
                            return Some(());
                        }
                        b',' => {
                            self.eat(b", ")?;
                            self.s.payload.extend_from_slice(b", ");
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                self.string()?;
            }
            b't' => self.eat(b"true")?,
            b'f' => self.eat(b"false")?,
            b'n' => self.eat(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return None,
        }
        let text = self.b.get(start..self.i)?;
        self.s.payload.extend_from_slice(text);
        Some(())
    }

    /// Copies a canonical object to the details text with its keys sorted by code point.
    fn object(&mut self, depth: u32) -> Option<()> {
        self.eat(b"{")?;
        self.s.payload.push(b'{');
        if self.peek()? == b'}' {
            self.i += 1;
            self.s.payload.push(b'}');
            return Some(());
        }
        let base = self.s.payload.len();
        let (frame, key_frame) = (self.s.entries.len(), self.s.keys.len());
        let mut sorted = true;
        loop {
            let (_, key, sort_key) = self.object_key(None)?;
            let entry = Entry {
                prefix: key_prefix(key_bytes(self.b, &self.s.keys, sort_key)),
                key: sort_key,
                start: 0,
                end: 0,
            };
            if self.s.entries.len() > frame {
                if let Some(prev) = self.s.entries.last() {
                    match order(self.b, &self.s.keys, prev, &entry) {
                        std::cmp::Ordering::Less => {}
                        std::cmp::Ordering::Greater => sorted = false,
                        std::cmp::Ordering::Equal => return None,
                    }
                }
                self.s.payload.extend_from_slice(b", ");
            }
            self.eat(b": ")?;
            let start = self.s.payload.len();
            self.s.payload.extend_from_slice(key);
            self.s.payload.extend_from_slice(b": ");
            let value_start = self.i;
            self.value(depth)?;
            if depth == 1 && key == b"\"policy_bundle_version\"" {
                self.details_bundle_version = self.b.get(value_start..self.i);
            }
            let end = self.s.payload.len();
            self.s.entries.push(Entry {
                start,
                end,
                ..entry
            });
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    break;
                }
                b',' => self.eat(b", ")?,
                _ => return None,
            }
        }
        if !sorted {
            let Scratch {
                payload: details,
                entries,
                keys,
                tmp,
                ..
            } = &mut *self.s;
            let line = self.b;
            let own = entries.get_mut(frame..)?;
            own.sort_unstable_by(|x, y| order(line, keys, x, y));
            if own.windows(2).any(|w| match w {
                [x, y] => order(line, keys, x, y).is_eq(),
                _ => false,
            }) {
                return None;
            }
            tmp.clear();
            tmp.extend_from_slice(details.get(base..)?);
            details.truncate(base);
            for (n, e) in own.iter().enumerate() {
                if n > 0 {
                    details.extend_from_slice(b", ");
                }
                details.extend_from_slice(tmp.get(e.start - base..e.end - base)?);
            }
        }
        self.s.entries.truncate(frame);
        self.s.keys.truncate(key_frame);
        self.s.payload.push(b'}');
        Some(())
    }

    /// [`Cursor::check_value`] of the details' `n`-th value (depth 1), `n` below
    /// [`SEEN_KEYS`]: a hash or a UUID as one block ([`plain_block`]); else, for a
    /// string, an array or an object, the last such text accepted at that place when
    /// the line holds it byte for byte; else the value is checked and, when it is a
    /// string, an array or an object, remembered. Such a text ends at its closing
    /// quote or bracket, and whether it is accepted depends on its own bytes only
    /// (at depth 1 it records nothing else), so the line holding it there reads it
    /// exactly as the check would. Numbers and literals are never remembered (`1` is
    /// a prefix of `12`).
    fn check_value_seen(&mut self, n: usize) -> Option<()> {
        let start = self.i;
        let rest = self.b.get(start..)?;
        match rest.first() {
            Some(b'"') => {
                if let Some(k) = plain_block::<64>(rest).or_else(|| plain_block::<36>(rest)) {
                    self.escaped = false;
                    self.i = start + k;
                    return Some(());
                }
            }
            Some(b'[' | b'{') => {}
            _ => return self.check_value(1),
        }
        if let Some(seen) = self.s.seen_values.get(n)
            && !seen.is_empty()
            && holds(rest, seen)
        {
            self.i = start + seen.len();
            return Some(());
        }
        if rest.first() == Some(&b'"') {
            self.string()?;
        } else {
            self.check_value(1)?;
        }
        if let (Some(text), Some(seen)) =
            (rest.get(..self.i - start), self.s.seen_values.get_mut(n))
        {
            seen.clear();
            seen.extend_from_slice(text);
        }
        Some(())
    }

    /// Checks a canonical value where it is, copying nothing: what [`Cursor::value`]
    /// accepts, when every object in it has its keys in order already (else it fails
    /// and sets [`Cursor::nested_unsorted`]); the value's text is then its canonical
    /// text as it stands in the line.
    fn check_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => self.check_object(depth + 1),
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.check_value(depth + 1)?;
                    match self.peek()? {
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        b',' => self.eat(b", ")?,
                        _ => return None,
                    }
                }
            }
            b'"' => self.value_string().map(|_| ()),
            b't' => self.eat(b"true"),
            b'f' => self.eat(b"false"),
            b'n' => self.eat(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A nested object checked in place ([`Cursor::check_value`]): its keys must be
    /// in order.
    fn check_object(&mut self, depth: u32) -> Option<()> {
        let (frame, key_frame) = (self.s.entries.len(), self.s.keys.len());
        let sorted = self.object_in_line(depth)?;
        self.s.entries.truncate(frame);
        self.s.keys.truncate(key_frame);
        if !sorted {
            self.nested_unsorted = true;
            return None;
        }
        Some(())
    }

    /// Reads an object's key: where it starts in the line (its opening quote), its
    /// text with the quotes, and how it sorts (its text in the line, or decoded into
    /// the key buffer when escaped). A `slot` names the place for
    /// [`Cursor::string_seen`].
    #[inline]
    fn object_key(&mut self, slot: Option<usize>) -> Option<(usize, &'a [u8], KeyText)> {
        let key_start = self.i;
        let key = match slot {
            Some(slot) => self.string_seen(slot)?,
            None => self.string()?,
        };
        let sort_key = if self.escaped {
            let decoded: String = serde_json::from_slice(key).ok()?;
            let at = self.s.keys.len();
            self.s.keys.extend_from_slice(decoded.as_bytes());
            KeyText::Decoded(at, self.s.keys.len())
        } else {
            KeyText::Line(key_start + 1, self.i - 1)
        };
        Some((key_start, key, sort_key))
    }

    /// Reads a canonical object where it is (values by [`Cursor::check_value`]),
    /// pushing each `"key": value` entry, as a range of the line, on
    /// [`Scratch::entries`]; returns whether the keys came in order. Two equal keys
    /// next to each other fail, as in [`Cursor::object`].
    fn object_in_line(&mut self, depth: u32) -> Option<bool> {
        self.eat(b"{")?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(true);
        }
        let frame = self.s.entries.len();
        let mut sorted = true;
        loop {
            let n = self.s.entries.len() - frame;
            let slot = (depth == 1 && n < SEEN_KEYS).then_some(4 + n);
            let (key_start, key, sort_key) = self.object_key(slot)?;
            let entry = Entry {
                prefix: key_prefix(key_bytes(self.b, &self.s.keys, sort_key)),
                key: sort_key,
                start: key_start,
                end: 0,
            };
            if self.s.entries.len() > frame
                && let Some(prev) = self.s.entries.last()
            {
                match order(self.b, &self.s.keys, prev, &entry) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Greater => sorted = false,
                    std::cmp::Ordering::Equal => return None,
                }
            }
            self.eat(b": ")?;
            let value_start = self.i;
            match slot {
                Some(_) => self.check_value_seen(n)?,
                None => self.check_value(depth)?,
            }
            if depth == 1 && key == b"\"policy_bundle_version\"" {
                self.details_bundle_version = self.b.get(value_start..self.i);
            }
            self.s.entries.push(Entry {
                end: self.i,
                ..entry
            });
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    return Some(sorted);
                }
                b',' => self.eat(b", ")?,
                _ => return None,
            }
        }
    }

    /// The details object read in place ([`Cursor::object_in_line`]) and its
    /// canonical text appended to the payload: the line's own text when its keys are
    /// in order, else its entries' texts in key order (each copied once).
    fn details_in_line(&mut self) -> Option<()> {
        let start = self.i;
        let sorted = self.object_in_line(1)?;
        if sorted {
            let text = self.b.get(start..self.i)?;
            self.s.payload.extend_from_slice(text);
            return Some(());
        }
        let Scratch {
            payload,
            entries,
            keys,
            perm,
            ..
        } = &mut *self.s;
        let line = self.b;
        // The order that sorted the last line's details, when it puts these entries
        // in strictly ascending key order too (the writer puts the same keys in the
        // same places line after line); else the entries are sorted. Either way the
        // result is the one strictly ascending order of the keys (equal keys fail).
        let ascending = |perm: &[usize]| {
            perm.len() == entries.len()
                && perm.windows(2).all(|w| match w {
                    [a, b] => match (entries.get(*a), entries.get(*b)) {
                        (Some(x), Some(y)) => order(line, keys, x, y).is_lt(),
                        _ => false,
                    },
                    _ => false,
                })
        };
        if !ascending(perm) {
            perm.clear();
            perm.extend(0..entries.len());
            perm.sort_unstable_by(|&a, &b| match (entries.get(a), entries.get(b)) {
                (Some(x), Some(y)) => order(line, keys, x, y),
                _ => std::cmp::Ordering::Equal,
            });
            if !ascending(perm) {
                return None;
            }
        }
        // Entries next to each other in the line and in key order go as one slice
        // (the line separates them with the canonical ", ").
        payload.push(b'{');
        let mut run: Option<(usize, usize, usize)> = None;
        for &k in perm.iter() {
            let e = entries.get(k)?;
            run = match run {
                Some((s, _, last)) if k == last + 1 => Some((s, e.end, k)),
                Some((s, end, _)) => {
                    payload.extend_from_slice(line.get(s..end)?);
                    payload.extend_from_slice(b", ");
                    Some((e.start, e.end, k))
                }
                None => Some((e.start, e.end, k)),
            };
        }
        if let Some((s, end, _)) = run {
            payload.extend_from_slice(line.get(s..end)?);
        }
        payload.push(b'}');
        Some(())
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        if self.peek()? == b'-' {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            is_float = true;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        let text = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        if is_float {
            let x: f64 = text.parse().ok()?;
            if !x.is_finite() || cfa_types::canonical::py_float_repr(x) != text {
                return None;
            }
        } else if text == "-0" {
            return None;
        } else if text.len() > 18 {
            // serde_json (without arbitrary precision) reads ints beyond 64 bits as
            // floats; keep fast and slow paths in agreement by leaving them to the slow path.
            let fits = text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
            if !fits {
                return None;
            }
        }
        Some(())
    }
}

/// The canonical payload up to the details object: `details` sorts first.
const PAYLOAD_HEAD: &[u8] = b"{\"details\": ";

/// Recognises the reference layout with canonical values (object keys in any order)
/// and writes the canonical payload to `scratch.payload` (cleared first): the details
/// text copied (keys put in order where they are not), then the other fields' raw
/// literals in key order. `None` means "use the slow path".
pub(crate) fn parse<'a>(line: &'a [u8], scratch: &mut Scratch) -> Option<FastLine<'a>> {
    match parse_prefix(line, scratch)? {
        (f, n) if n == line.len() => Some(f),
        _ => None,
    }
}

/// [`parse`] of the event that starts `buf`, which may go on past it: returns the
/// event and its length. What it accepts is printable ASCII only (no line break, no
/// Python whitespace other than the space), so when a `\n` follows, the event is the
/// whole line `str.splitlines` cuts there, with nothing to strip.
///
/// The details are read in place first: when every object nested in them has its
/// keys in order (the reference writes them so), the payload is assembled from the
/// line's own slices, each byte copied once; only when one does not is the line read
/// again with every value copied and the objects sorted.
pub(crate) fn parse_prefix<'a>(
    buf: &'a [u8],
    scratch: &mut Scratch,
) -> Option<(FastLine<'a>, usize)> {
    let mut retry = false;
    match layout(buf, scratch, false, &mut retry) {
        None if retry => layout(buf, scratch, true, &mut retry),
        r => r,
    }
}

/// [`parse_prefix`] with the details copied value by value (`copy`) or read in place
/// (else; `retry` is set when that failed only because a nested object needs sorting).
fn layout<'a>(
    line: &'a [u8],
    scratch: &mut Scratch,
    copy: bool,
    retry: &mut bool,
) -> Option<(FastLine<'a>, usize)> {
    scratch.payload.clear();
    scratch.entries.clear();
    scratch.keys.clear();
    scratch.payload.extend_from_slice(PAYLOAD_HEAD);
    let mut c = Cursor {
        b: line,
        i: 0,
        details_bundle_version: None,
        escaped: false,
        nested_unsorted: false,
        s: scratch,
    };
    c.eat(b"{\"intent_id\": ")?;
    let intent_id = c.string_of::<36>()?;
    let intent_escaped = c.escaped;
    c.eat(b", \"stage\": ")?;
    let stage = c.string_seen(0)?;
    c.eat(b", \"event_type\": ")?;
    let event_type = c.string_seen(1)?;
    c.eat(b", \"outcome\": ")?;
    let outcome = c.string_seen(2)?;
    c.eat(b", \"policy_bundle_version\": ")?;
    let policy_bundle_version = c.string_seen(3)?;
    c.eat(b", \"details\": ")?;
    if copy {
        c.object(1)?;
    } else if c.details_in_line().is_none() {
        *retry = c.nested_unsorted;
        return None;
    }
    c.eat(b", \"timestamp\": ")?;
    let timestamp = c.string_of::<32>()?;
    c.eat(b", \"event_hash\": ")?;
    let event_hash = c.string_of::<64>()?;
    let event_hash = plain(event_hash, c.escaped)?;
    c.eat(b", \"previous_hash\": ")?;
    let previous_hash = c.string_of::<64>()?;
    let previous_hash = plain(previous_hash, c.escaped)?;
    c.eat(b"}")?;
    let consumed = c.i;
    let details_bundle_version = c.details_bundle_version;
    let p = &mut scratch.payload;
    for piece in [
        b", \"event_type\": ".as_slice(),
        event_type,
        b", \"intent_id\": ",
        intent_id,
        b", \"outcome\": ",
        outcome,
        b", \"previous_hash\": \"",
        previous_hash,
        b"\", \"stage\": ",
        stage,
        b", \"timestamp\": ",
        timestamp,
        b"}",
    ] {
        p.extend_from_slice(piece);
    }
    Some((
        FastLine {
            intent_id,
            intent_escaped,
            event_hash,
            previous_hash,
            policy_bundle_version,
            details_bundle_version,
        },
        consumed,
    ))
}

/// The length of the run of bytes at the start of `b` that a canonical string holds
/// as they are: printable ASCII (0x20..=0x7e) other than `"` and `\\`. Eight bytes at
/// a time: per byte, the high bit of each test word is set where the byte fails the
/// test; borrows and carries only ever move upwards, so the lowest set bit belongs to
/// the first byte that fails.
fn plain_run(b: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let fails = |w: u64| {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w;
        let del_or_high = w | w.wrapping_add(ONES);
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let s = w ^ (ONES * u64::from(b'\\'));
        let slash = s.wrapping_sub(ONES) & !s;
        (below_space | del_or_high | quote | slash) & HIGH
    };
    let mut n = 0usize;
    let mut words = b.chunks_exact(8);
    for c in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = fails(u64::from_le_bytes(w));
        if m != 0 {
            return n + (m.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + words
        .remainder()
        .iter()
        .position(|&c| c.wrapping_sub(0x20) >= 0x5f || c == b'"' || c == b'\\')
        .unwrap_or(words.remainder().len())
}

/// The length of the literal at the start of `b` (with its quotes) when it is a quote,
/// `N` bytes that [`plain_run`] passes, and a quote: what [`Cursor::string`] reads
/// there, without an escape. The closing quote is looked at first; the `N` bytes are
/// then tested with no early exit, which the compiler does 16 bytes at a time.
#[inline]
fn plain_block<const N: usize>(b: &[u8]) -> Option<usize> {
    if b.get(N + 1) != Some(&b'"') || b.first() != Some(&b'"') {
        return None;
    }
    let body: &[u8; N] = b.get(1..=N)?.try_into().ok()?;
    let mut bad = false;
    for &c in body {
        bad |= (c.wrapping_sub(0x20) >= 0x5f) | (c == b'"') | (c == b'\\');
    }
    (!bad).then_some(N + 2)
}

/// `rest.starts_with(seen)` for the short texts [`Scratch::seen`] and
/// [`Scratch::seen_values`] keep, without a `memcmp` call: two overlapping words
/// (16, 8 or 4 bytes) cover a text of up to twice their size, longer texts go 16
/// bytes at a time with the last 16 overlapping.
#[inline]
fn holds(rest: &[u8], seen: &[u8]) -> bool {
    fn ends<const W: usize>(r: &[u8], s: &[u8]) -> bool {
        r.first_chunk::<W>() == s.first_chunk::<W>() && r.last_chunk::<W>() == s.last_chunk::<W>()
    }
    let Some(r) = rest.get(..seen.len()) else {
        return false;
    };
    match seen.len() {
        0..4 => r.iter().zip(seen).all(|(a, b)| a == b),
        4..8 => ends::<4>(r, seen),
        8..16 => ends::<8>(r, seen),
        16..=32 => ends::<16>(r, seen),
        _ => {
            r.chunks_exact(16)
                .zip(seen.chunks_exact(16))
                .all(|(a, b)| a.first_chunk::<16>() == b.first_chunk::<16>())
                && r.last_chunk::<16>() == seen.last_chunk::<16>()
        }
    }
}

/// The content of a quoted literal [`Cursor::string`] read (`escaped`: it held an
/// escape, then `None`): printable ASCII, so it needs no UTF-8 check.
fn plain(lit: &[u8], escaped: bool) -> Option<&[u8]> {
    if escaped {
        return None;
    }
    lit.get(1..lit.len().checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::AuditEvent;

    fn agrees(line: &str) -> bool {
        let mut buf = Scratch::default();
        // Lines with a duplicated key are invalid as a whole (and never fast).
        let Ok(e) = AuditEvent::from_jsonl_line(line) else {
            assert!(parse(line.as_bytes(), &mut buf).is_none(), "{line}");
            return false;
        };
        match parse(line.as_bytes(), &mut buf) {
            Some(_) => {
                let slow = e.canonical_payload();
                assert_eq!(String::from_utf8_lossy(&buf.payload), slow, "{line}");
                assert_eq!(
                    hex::encode(digest(&buf.payload)),
                    cfa_types::canonical::sha256_hex(slow.as_bytes())
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_run_stops_at_the_first_byte_a_canonical_string_escapes() {
        let naive = |b: &[u8]| {
            b.iter()
                .position(|&c| !(0x20..=0x7e).contains(&c) || c == b'"' || c == b'\\')
                .unwrap_or(b.len())
        };
        let mut text = b"abcdefghijklmnopqrstuvwxyz0123456789 ~!".to_vec();
        assert_eq!(plain_run(&text), text.len());
        for bad in [0x00, 0x1f, b'"', b'\\', 0x7f, 0x80, 0xc3, 0xff] {
            for at in 0..text.len() {
                let keep = text[at];
                text[at] = bad;
                assert_eq!(plain_run(&text), naive(&text), "byte {bad:#x} at {at}");
                assert_eq!(plain_run(&text), at);
                // a second failing byte further on does not move the first
                if at + 3 < text.len() {
                    text[at + 3] = 0;
                    assert_eq!(plain_run(&text), at);
                    text[at + 3] = b'x';
                }
                text[at] = keep;
            }
        }
        for b in 0..=255u8 {
            let one = [b' ', b, b' ', b' ', b' ', b' ', b' ', b' ', b' '];
            assert_eq!(plain_run(&one), naive(&one), "byte {b:#x}");
        }
    }

    /// What a cursor reads at the start of `text`: the literal, where it stops,
    /// whether it held an escape.
    fn read_with(
        text: &[u8],
        how: impl Fn(&mut Cursor<'_, '_>) -> Option<Vec<u8>>,
    ) -> (Option<Vec<u8>>, usize, bool) {
        let mut s = Scratch::default();
        let mut c = Cursor {
            b: text,
            i: 0,
            details_bundle_version: None,
            escaped: true,
            nested_unsorted: false,
            s: &mut s,
        };
        let got = how(&mut c);
        match got {
            Some(lit) => (Some(lit), c.i, c.escaped),
            None => (None, 0, false),
        }
    }

    #[test]
    fn literals_of_the_usual_lengths_are_read_as_the_scan_reads_them() {
        let scan = |t: &[u8]| read_with(t, |c| c.string().map(<[u8]>::to_vec));
        let of64 = |t: &[u8]| read_with(t, |c| c.string_of::<64>().map(<[u8]>::to_vec));
        let of36 = |t: &[u8]| read_with(t, |c| c.string_of::<36>().map(<[u8]>::to_vec));
        let of32 = |t: &[u8]| read_with(t, |c| c.string_of::<32>().map(<[u8]>::to_vec));
        let value = |t: &[u8]| read_with(t, |c| c.value_string().map(<[u8]>::to_vec));
        let mut fast_hits = 0;
        for len in [0usize, 1, 8, 31, 32, 33, 35, 36, 37, 63, 64, 65, 70] {
            let body: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut cases = vec![body.clone()];
            for bad in [
                b"\"".as_slice(),
                b"\\",
                b"\\n",
                b"\\u00e9",
                b"\\x",
                b"\\u000a",
                &[0x1f],
                &[0x7f],
                &[0x80],
                &[0xc3, 0xa9],
                b"\n",
            ] {
                for at in [0, len / 2, len.saturating_sub(1), len] {
                    let mut t = body.clone();
                    t.splice(at.min(len)..at.min(len), bad.iter().copied());
                    t.truncate(len.max(1));
                    cases.push(t);
                }
            }
            for case in cases {
                for tail in [b"\", \"x\": 1}".as_slice(), b"\"", b"", b"\\\"\""] {
                    let mut text = b"\"".to_vec();
                    text.extend_from_slice(&case);
                    text.extend_from_slice(tail);
                    let want = scan(&text);
                    for (name, got) in [
                        ("64", of64(&text)),
                        ("36", of36(&text)),
                        ("32", of32(&text)),
                        ("value", value(&text)),
                    ] {
                        assert_eq!(got, want, "{name}: {}", String::from_utf8_lossy(&text));
                    }
                    fast_hits +=
                        usize::from(want.0.is_some() && [64, 36, 32].contains(&case.len()));
                }
            }
        }
        assert!(fast_hits > 0);
    }

    #[test]
    fn the_last_lines_key_order_is_reused_only_when_it_sorts_the_next_line() {
        let base = r#"{"intent_id": "i", "stage": "s", "event_type": "e", "outcome": "o", "policy_bundle_version": "", "details": DETAILS, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        // One scratch for the whole sequence, as the verifier keeps one per thread.
        let mut buf = Scratch::default();
        let sequence = [
            (r#"{"d": 1, "s": 2, "f": [], "i": [], "r": "x"}"#, true),
            (r#"{"d": 3, "s": 4, "f": [1], "i": [], "r": "y"}"#, true),
            // same shape, other keys: the old order no longer sorts them
            (r#"{"z": 1, "b": 2, "a": 3, "c": 4, "y": 5}"#, true),
            (r#"{"d": 1, "s": 2, "f": [], "i": [], "r": "x"}"#, true),
            // an equal pair the last order would put side by side, or not
            (r#"{"d": 1, "s": 2, "f": [], "i": [], "d": "x"}"#, false),
            (r#"{"d": 1, "s": 2, "f": [], "s": [], "r": "x"}"#, false),
            (r#"{"d": 1, "s": 2, "f": [], "i": [], "r": "x"}"#, true),
            (r#"{"d": 1, "r": 2, "f": [], "i": [], "r": "x"}"#, false),
            (r#"{"d": 1, "s": 2, "f": [], "i": [], "r": "x"}"#, true),
            // fewer or more entries than the last order has
            (r#"{"b": 1, "a": 2}"#, true),
            (r#"{"c": 1, "b": 2, "a": 3}"#, true),
            (r#"{"c": 1, "b": 2, "c": 3}"#, false),
            (r#"{"b": 1, "a": 2, "b": 3}"#, false),
            (r#"{"\u00e9": 1, "z": 2, "\ud83d\ude80": 3, "a": 4}"#, true),
            (
                r#"{"\u00e9": 1, "z": 2, "\ud83d\ude80": 3, "\u00e9": 4}"#,
                false,
            ),
        ];
        for (details, fast) in sequence {
            let line = base.replace("DETAILS", details);
            let got = parse(line.as_bytes(), &mut buf).is_some();
            assert_eq!(got, fast, "{details}");
            if fast {
                let slow = AuditEvent::from_jsonl_line(&line)
                    .unwrap()
                    .canonical_payload();
                assert_eq!(String::from_utf8_lossy(&buf.payload), slow, "{details}");
            }
        }
    }

    #[test]
    fn a_remembered_literal_is_taken_only_where_the_line_holds_it_whole() {
        let base = r#"{"intent_id": "i", "stage": STAGE, "event_type": "e", "outcome": OUTCOME, "policy_bundle_version": "v", "details": DETAILS, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        let lines = [
            (r#""s""#, r#""approve""#, r#"{"b": 1, "a": 2}"#),
            (r#""s""#, r#""approve""#, r#"{"b": 1, "a": 2}"#),
            // a longer literal that starts like the remembered one, and a shorter one
            (r#""s2""#, r#""approve_x""#, r#"{"bb": 1, "a": 2}"#),
            (r#""s""#, r#""approv""#, r#"{"b": 1, "ab": 2}"#),
            // escaped and non-canonical literals are never remembered nor taken
            (
                r#""sé""#,
                r#""
""#,
                r#"{"é": 1, "a": 2}"#,
            ),
            (
                r#""sé""#,
                r#""
""#,
                r#"{"é": 1, "a": 2}"#,
            ),
            (r#""s\/""#, r#""a""#, r#"{"b": 1, "a": 2}"#),
            (r#""s""#, r#""approve""#, r#"{"b": 1, "b": 2}"#),
            (
                r#""s""#,
                r#""approve""#,
                r#"{"b": 1, "a": {"b": 1, "a": 2}}"#,
            ),
            (r#""s""#, r#""approve""#, r#"{"b": 1, "a": 2, "c": 3}"#),
            (r#""s""#, r#""approve""#, r#"{"b": 1}"#),
            (r#""s""#, r#""appr\u0000""#, r#"{"b": 1, "a": 2}"#),
            (r#""s""#, r#""approve"#, r#"{"b": 1, "a": 2}"#),
        ];
        let mut shared = Scratch::default();
        let mut fast = 0;
        for (stage, outcome, details) in lines {
            let line = base
                .replace("STAGE", stage)
                .replace("OUTCOME", outcome)
                .replace("DETAILS", details);
            let mut fresh = Scratch::default();
            let a = parse(line.as_bytes(), &mut shared)
                .map(|f| (f.policy_bundle_version, f.event_hash));
            let b =
                parse(line.as_bytes(), &mut fresh).map(|f| (f.policy_bundle_version, f.event_hash));
            assert_eq!(a, b, "{line}");
            assert_eq!(shared.payload, fresh.payload, "{line}");
            fast += usize::from(a.is_some());
            // and the fast path still agrees with the slow one
            let _ = agrees(&line);
        }
        assert!(fast >= 8, "{fast}");
    }

    #[test]
    fn holds_is_starts_with() {
        let mut checked = 0;
        for len in 0..80usize {
            let seen: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut rests = vec![seen.clone(), seen[..len.saturating_sub(1)].to_vec()];
            let mut longer = seen.clone();
            longer.extend_from_slice(b"\", \"x\": 1}");
            rests.push(longer.clone());
            for at in 0..len {
                for bad in [b'A', b'"', 0x00, 0xff] {
                    let mut r = longer.clone();
                    r[at] = bad;
                    rests.push(r);
                }
            }
            for rest in rests {
                assert_eq!(
                    holds(&rest, &seen),
                    rest.starts_with(&seen),
                    "{len}: {}",
                    String::from_utf8_lossy(&rest)
                );
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn a_remembered_details_value_is_taken_only_where_the_line_holds_it_whole() {
        let base = r#"{"intent_id": "i", "stage": "s", "event_type": "e", "outcome": "o", "policy_bundle_version": "v", "details": DETAILS, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        let details = [
            r#"{"a": "abc", "b": ["x"], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "abc", "b": ["x"], "c": {"k": 1}, "d": 1}"#,
            // longer and shorter texts that start like the remembered ones
            r#"{"a": "abcd", "b": ["x", "y"], "c": {"k": 12}, "d": 12}"#,
            r#"{"a": "ab", "b": ["x"], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "ab", "b": ["x"], "c": {"k": 1}, "d": 1.5}"#,
            r#"{"a": "ab", "b": ["x"], "c": {"k": 1}, "d": 1}"#,
            // the remembered text followed by what is not a separator
            r#"{"a": "ab"x, "b": ["x"], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "ab", "b": ["x"]], "c": {"k": 1}, "d": 1}"#,
            // non-canonical, escaped, unsorted nested and duplicated texts
            r#"{"a": "ab", "b": ["x",1], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1, "j": 2}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1, "j": 2}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1, "k": 2}, "d": 1}"#,
            r#"{"a": "a\u00e9", "b": ["\n"], "c": {"k": 1, "k": 2}, "d": 1}"#,
            // the same values at other places, and the keys unsorted
            r#"{"b": "abc", "a": ["x"], "d": {"k": 1}, "c": 1}"#,
            r#"{"b": ["x"], "a": "abc", "c": 1, "d": {"k": 1}}"#,
            r#"{"b": ["x"], "a": "abc", "c": 1, "d": {"k": 1}}"#,
            r#"{"b": [], "a": "", "c": {}, "d": "x"}"#,
            r#"{"b": [], "a": "", "c": {}, "d": "x"}"#,
            r#"{"b": [1], "a": "\"", "c": {}, "d": "x"}"#,
        ];
        let mut shared = Scratch::default();
        let mut fast = 0;
        for d in details {
            let line = base.replace("DETAILS", d);
            let mut fresh = Scratch::default();
            let a = parse(line.as_bytes(), &mut shared)
                .map(|f| (f.details_bundle_version, f.event_hash));
            let b = parse(line.as_bytes(), &mut fresh)
                .map(|f| (f.details_bundle_version, f.event_hash));
            assert_eq!(a, b, "{line}");
            if a.is_some() {
                assert_eq!(shared.payload, fresh.payload, "{line}");
            }
            fast += usize::from(a.is_some());
            // and the fast path still agrees with the slow one
            let _ = agrees(&line);
        }
        assert!(fast >= 14, "{fast}");
    }

    #[test]
    fn a_prefix_parse_ends_where_the_event_does_and_never_crosses_a_line_break() {
        let line = r#"{"intent_id": "i", "stage": "s", "event_type": "e", "outcome": "o", "policy_bundle_version": "", "details": {"a": [1, "x"]}, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        let mut buf = Scratch::default();
        let whole = parse(line.as_bytes(), &mut buf).map(|f| f.event_hash);
        let payload = buf.payload.clone();
        for tail in ["\n{", "\r\n", "  \n", "\u{2028}", ""] {
            let text = format!("{line}{tail}");
            let (f, n) = parse_prefix(text.as_bytes(), &mut buf).unwrap();
            assert_eq!(n, line.len(), "{tail:?}");
            assert_eq!(Some(f.event_hash), whole);
            assert_eq!(buf.payload, payload);
            // parse itself still wants the whole input to be the event
            assert_eq!(parse(text.as_bytes(), &mut buf).is_some(), tail.is_empty());
        }
        // A line break inside the event stops the prefix parse (no event at all).
        let broken = line.replacen("\"s\"", "\"s\n\"", 1);
        assert!(parse_prefix(broken.as_bytes(), &mut buf).is_none());
    }

    #[test]
    fn plain_run_agrees_over_many_words() {
        let naive = |b: &[u8]| {
            b.iter()
                .position(|&c| !(0x20..=0x7e).contains(&c) || c == b'"' || c == b'\\')
                .unwrap_or(b.len())
        };
        let mut text: Vec<u8> = (0..100u8).map(|i| b'0' + i % 10).collect();
        assert_eq!(plain_run(&text), 100);
        for bad in [0x0a, b'"', b'\\', 0x7f, 0xe2] {
            for at in 0..text.len() {
                let keep = text[at];
                text[at] = bad;
                assert_eq!(plain_run(&text), at, "byte {bad:#x} at {at}");
                assert_eq!(plain_run(&text[1..]), naive(&text[1..]));
                text[at] = keep;
            }
        }
    }

    #[test]
    fn details_are_read_in_place_unless_a_nested_object_needs_sorting() {
        let base = r#"{"intent_id": "i", "stage": "s", "event_type": "e", "outcome": "o", "policy_bundle_version": "", "details": DETAILS, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        let mut buf = Scratch::default();
        // (details, read in place, retried with copying)
        let cases = [
            (r#"{}"#, true, false),
            (
                r#"{"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}}"#,
                true,
                false,
            ),
            (
                r#"{"z": 1, "a": {"c": 2, "d": [{"x": 1, "y": 2}]}, "m": []}"#,
                true,
                false,
            ),
            (r#"{"\u00e9": 1, "z": 2, "\ud83d\ude80": 3}"#, true, false),
            (r#"{"a": {"d": 1, "c": 2}}"#, false, true),
            (r#"{"b": 1, "a": [[{"z": 1, "y": 2}]]}"#, false, true),
            (r#"{"b": 1, "a": 2, "b": 3}"#, false, false),
            (r#"{"a": {"c": 1, "c": 2}}"#, false, false),
        ];
        for (details, in_place, retried) in cases {
            let line = base.replace("DETAILS", details);
            let mut retry = false;
            let got = layout(line.as_bytes(), &mut buf, false, &mut retry).is_some();
            assert_eq!((got, retry), (in_place, retried), "{details}");
            if in_place {
                let in_line = buf.payload.clone();
                let mut retry = false;
                assert!(layout(line.as_bytes(), &mut buf, true, &mut retry).is_some());
                assert_eq!(
                    in_line, buf.payload,
                    "{details}: both ways give one payload"
                );
            }
            // Whichever way it is read, the fast path agrees with the slow one.
            assert_eq!(agrees(&line), in_place || retried, "{details}");
        }
    }

    #[test]
    fn accepts_canonical_and_rejects_the_rest() {
        let base = r#"{"intent_id": "i", "stage": "s", "event_type": "e", "outcome": "o", "policy_bundle_version": "", "details": DETAILS, "timestamp": "t", "event_hash": "h", "previous_hash": ""}"#;
        let ok = [
            r#"{}"#,
            r#"{"a": 1.5, "b": [1, null, true, false, {"x": "\u00e9\ud83d\ude80\n"}], "c": -0.0, "d": 1e-05}"#,
            r#"{"a": "\u007f\u0001"}"#,
            r#"{"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": 2}}"#,
            r#"{"\u00e9": 1, "z": 2, "\ud83d\ude80": 3, "\uff61": 4}"#,
            r#"{"abcdefghZ": 1, "abcdefghA": 2, "a\u0000": 3, "a": 4, "abcdefgh": 5}"#,
        ];
        for d in ok {
            assert!(agrees(&base.replace("DETAILS", d)), "{d}");
        }
        let slow = [
            r#"{"b": 1, "b": 2}"#,
            r#"{"a":1}"#,
            r#"{"a": 1.50}"#,
            r#"{"a": 1E5}"#,
            r#"{"a": "\u00E9"}"#,
            r#"{"a": "\/"}"#,
            r#"{"a": "\u0041"}"#,
            r#"{"a": "\u000a"}"#,
            r#"{"a": -0}"#,
            r#"{"a": 1, "a": 1}"#,
            r#"{"a": "é"}"#,
        ];
        for d in slow {
            assert!(!agrees(&base.replace("DETAILS", d)), "{d}");
        }
    }
}
