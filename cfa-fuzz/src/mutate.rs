//! A small deterministic PRNG and the mutators: structure-aware for JSON, YAML, JSONL
//! and line-oriented text, plus byte-level havoc and splices between seeds.

use serde_json::{Map, Number, Value};

/// SplitMix64: tiny, fast, and the same sequence for the same seed on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `num/den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }

    /// A random element of a non-empty list (the default value for an empty one).
    pub fn one<T: Copy + Default>(&mut self, items: &[T]) -> T {
        self.pick(items).copied().unwrap_or_default()
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Mixes several numbers into one seed (for per-batch generators).
pub fn mix(parts: &[u64]) -> u64 {
    let mut r = Rng::new(0x5EED_CFA0);
    let mut acc = 0u64;
    for p in parts {
        r.0 ^= p.wrapping_add(acc);
        acc = r.next_u64();
    }
    acc
}

/// How a seed is written, which picks the structure-aware mutators that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
    /// One JSON object per line.
    Jsonl,
    /// Line-oriented text (notes, proofs, keys, intents).
    Text,
    /// A header line (an HTTP request line, a CLI command) and then a body of
    /// JSON, YAML or text.
    Headed,
}

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Its format.
    pub kind: Kind,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Seed {
    /// A seed from text.
    pub fn new(kind: Kind, text: impl Into<Vec<u8>>) -> Self {
        Seed {
            kind,
            bytes: text.into(),
        }
    }
}

/// Strings that trip validators, printers and canonical writers.
const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "\t\n\r",
    "\u{3000}",
    "\u{1c}\u{1d}\u{1e}\u{1f}",
    "\u{85}x\u{a0}",
    "\u{2028}\u{2029}",
    "\u{feff}",
    "\u{200b}",
    "\u{202e}gold",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "0",
    "-0",
    "1e999",
    "🚀",
    "fiscal-ção 🚀",
    "e\u{301}",
    "\u{0}",
    "\u{7f}",
    "\u{10ffff}",
    "gold",
    "silver",
    "bronze",
    "raw",
    "sensitive",
    "high_volume",
    "pii",
    "approve",
    "replan",
    "block",
    "critical",
    "semantic",
    "missing_partition",
    "cost_budget_exceeded",
    "pii_in_protected_layer",
    "../../etc/passwd",
    "%s%n%x",
    "'; DROP TABLE t; --",
    "a.b[0].c",
    "\\",
    "\"",
    "{}",
    "[]",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "e3b0c44298fc1c14",
    "2026-01-01T00:00:00.000000+00:00",
];

/// Raw JSON number texts, some beyond what f64/i64/u64 hold.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e309",
    "5e-324",
    "1e-400",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    "0.30000000000000004",
    "1e16",
    "9007199254740993",
    "4294967296",
    "4294967295",
    "-1",
    "0.1",
    "1E+2",
    "3.0",
];

/// Tokens spliced into text at random places.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\ud83d\\ude80",
    "\\u0000",
    "\\",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\u{feff}",
    "\u{3000}",
    "\u{85}",
    "null",
    "true",
    "-0",
    "1e999",
    "&a ",
    "*a",
    "<<: ",
    "!!str ",
    "!!binary ",
    "? ",
    "- ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "# ",
    "|\n",
    ">-\n",
    "'",
    "~",
    "0x1F",
    "0o17",
    ".inf",
    ".nan",
    "yes",
    "on",
    "\u{2014}",
    "\u{0}",
];

fn edge_number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::from(i64::MAX),
        1 => Value::from(i64::MIN),
        2 => Value::from(u64::MAX),
        3 => Number::from_f64(-0.0).map_or(Value::Null, Value::Number),
        4 => Number::from_f64(1e308).map_or(Value::Null, Value::Number),
        5 => Number::from_f64(5e-324).map_or(Value::Null, Value::Number),
        6 => Number::from_f64(f64::MAX).map_or(Value::Null, Value::Number),
        7 => Value::from(-1),
        8 => Value::from(0),
        9 => Number::from_f64(0.1 + 0.2).map_or(Value::Null, Value::Number),
        10 => Value::from(1u64 << 53),
        _ => Value::from(rng.next_u64() as i64 >> rng.below(64)),
    }
}

fn edge_string(rng: &mut Rng) -> String {
    match rng.below(40) {
        // Long strings, sized around the limits renderers and columns care about.
        0 => "a".repeat(rng.one(&[255, 256, 4096, 65_535, 65_536, 70_000])),
        1 => "é".repeat(rng.one(&[128, 32_768, 40_000])),
        2..=5 => {
            let n = rng.below(64);
            (0..n)
                .filter_map(|_| char::from_u32(rng.below(0x11_0000) as u32))
                .collect()
        }
        _ => rng
            .pick(EDGE_STRINGS)
            .copied()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn nest(rng: &mut Rng, inner: Value) -> Value {
    let depth = match rng.below(8) {
        0..=2 => 2,
        3 | 4 => 20,
        5 | 6 => 126 + rng.below(5),
        _ => 200 + rng.below(800),
    };
    let mut v = inner;
    for _ in 0..depth {
        v = if rng.chance(1, 2) {
            Value::Array(vec![v])
        } else {
            let mut m = Map::new();
            m.insert("a".into(), v);
            Value::Object(m)
        };
    }
    v
}

/// A replacement value: an edge case, a wrong type, or a deep nest.
fn edge_value(rng: &mut Rng, old: &Value) -> Value {
    match rng.below(14) {
        0..=2 => edge_number(rng),
        3..=5 => Value::String(edge_string(rng)),
        6 => Value::Null,
        7 => Value::Bool(rng.chance(1, 2)),
        8 => Value::Array(Vec::new()),
        9 => Value::Object(Map::new()),
        10 => nest(rng, old.clone()),
        11 => {
            let n = if old.is_array() || old.is_object() {
                1 + rng.below(3)
            } else {
                1 + rng.below(50)
            };
            Value::Array(vec![old.clone(); n])
        }
        12 => match old {
            Value::String(s) => Value::String(format!("{s}{}", edge_string(rng))),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            other => Value::String(other.to_string()),
        },
        _ => match old {
            Value::Number(n) => n
                .as_f64()
                .and_then(|x| Number::from_f64(x + rng.one(&[-1.0, 1.0, 0.01, -0.01])))
                .map_or(Value::Null, Value::Number),
            Value::Bool(b) => Value::Bool(!b),
            _ => edge_number(rng),
        },
    }
}

/// Walks to a random node and changes it (or one of its children).
fn mutate_tree(rng: &mut Rng, v: &mut Value, donors: &[Value], depth: usize) {
    let descend = depth < 12 && rng.chance(3, 4);
    match v {
        Value::Object(m) if !m.is_empty() && descend => {
            let i = rng.below(m.len());
            if let Some((_, child)) = m.iter_mut().nth(i) {
                mutate_tree(rng, child, donors, depth + 1);
            }
        }
        Value::Array(a) if !a.is_empty() && descend => {
            let i = rng.below(a.len());
            if let Some(child) = a.get_mut(i) {
                mutate_tree(rng, child, donors, depth + 1);
            }
        }
        Value::Object(m) => match rng.below(7) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                if let Some(k) = m.keys().nth(i).cloned() {
                    m.shift_remove(&k);
                }
            }
            1 => {
                let key = if rng.chance(1, 2) {
                    edge_string(rng)
                } else {
                    rng.one(&[
                        "extra",
                        "signature",
                        "state_signature",
                        "policy_bundle",
                        "__proto__",
                    ])
                    .to_owned()
                };
                let val = edge_value(rng, &Value::Null);
                m.insert(key, val);
            }
            2 if !m.is_empty() => {
                // Rename a key (same value under another name).
                let i = rng.below(m.len());
                let key = m.keys().nth(i).cloned().unwrap_or_default();
                if let Some((k, val)) = m.shift_remove_entry(&key) {
                    let new = format!("{k}{}", edge_string(rng));
                    m.insert(new, val);
                }
            }
            3 => {
                if let Some(d) = donor_node(rng, donors) {
                    let key = m
                        .keys()
                        .nth(rng.below(m.len().max(1)))
                        .cloned()
                        .unwrap_or_else(|| "k".into());
                    m.insert(key, d);
                }
            }
            4 if !m.is_empty() => {
                // Reverse key order (order-sensitive readers).
                let mut items: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
                items.reverse();
                m.extend(items);
            }
            _ => *v = edge_value(rng, v),
        },
        Value::Array(a) => match rng.below(6) {
            0 if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            1 if !a.is_empty() => {
                let i = rng.below(a.len());
                if let Some(x) = a.get(i).cloned() {
                    a.insert(i, x);
                }
            }
            2 if a.len() > 1 => {
                let (i, j) = (rng.below(a.len()), rng.below(a.len()));
                a.swap(i, j);
            }
            3 => {
                let x = donor_node(rng, donors).unwrap_or_else(|| edge_value(rng, &Value::Null));
                a.push(x);
            }
            _ => *v = edge_value(rng, v),
        },
        _ => {
            if rng.chance(1, 5)
                && let Some(d) = donor_node(rng, donors)
            {
                *v = d;
                return;
            }
            *v = edge_value(rng, v);
        }
    }
}

/// A random subtree of a random donor document.
fn donor_node(rng: &mut Rng, donors: &[Value]) -> Option<Value> {
    let mut v = rng.pick(donors)?;
    for _ in 0..rng.below(6) {
        let next = match v {
            Value::Object(m) if !m.is_empty() => m.values().nth(rng.below(m.len())),
            Value::Array(a) if !a.is_empty() => a.get(rng.below(a.len())),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => break,
        }
    }
    Some(v.clone())
}

/// Writes a value as JSON in one of several styles.
fn write_json(rng: &mut Rng, v: &Value) -> Vec<u8> {
    match rng.below(3) {
        0 => serde_json::to_vec_pretty(v).unwrap_or_default(),
        _ => serde_json::to_vec(v).unwrap_or_default(),
    }
}

/// A minimal block-YAML emitter (flow JSON for scalars and empty collections), so
/// mutated trees come back as YAML the parser reads through its block paths.
fn write_yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&pad);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                block_child(val, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for val in a {
                out.push_str(&pad);
                out.push('-');
                block_child(val, indent, out);
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// A value as block YAML.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write_yaml(v, 0, &mut out);
    out
}

fn block_child(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_yaml(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_yaml(val, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&other.to_string());
            out.push('\n');
        }
    }
}

/// JSON-aware text edits: duplicate keys, raw number tokens no `Value` can hold,
/// lone surrogate escapes, BOM and Unicode whitespace between tokens, deep nests.
fn json_text_edit(rng: &mut Rng, text: &mut Vec<u8>) {
    match rng.below(8) {
        0 => {
            // Duplicate the first key/value pair of some object.
            let starts: Vec<usize> = positions(text, b'{');
            if let Some(&s) = rng.pick(&starts) {
                let rest = text.get(s + 1..).unwrap_or_default();
                let end = rest
                    .iter()
                    .position(|b| *b == b',' || *b == b'}')
                    .unwrap_or(0);
                let pair = rest.get(..end).unwrap_or_default().to_vec();
                if pair.contains(&b':') {
                    let mut ins = pair;
                    ins.push(b',');
                    splice_in(text, s + 1, &ins);
                }
            }
        }
        1 => replace_number(rng, text),
        2 => {
            let quotes = positions(text, b'"');
            if let Some(&q) = rng.pick(&quotes) {
                let esc = rng.one(&[
                    "\\ud800", "\\udfff", "\\ud83d", "\\u0000", "\\u001f", "\\uFFFF",
                ]);
                splice_in(text, q + 1, esc.as_bytes());
            }
        }
        3 => splice_in(text, 0, "\u{feff}".as_bytes()),
        4 => {
            let ws = rng.one(&[
                "\u{a0}", "\u{3000}", "\u{2028}", "\u{feff}", "\x0b", "\x0c", "\r",
            ]);
            let at = rng.below(text.len() + 1);
            splice_in(text, at, ws.as_bytes());
        }
        5 => {
            let depth = rng.one(&[
                64, 127, 128, 129, 127, 128, 129, 256, 257, 1_000, 20_000, 200_000,
            ]);
            let open = if rng.chance(1, 2) { b'[' } else { b'{' };
            let mut t = Vec::with_capacity(depth * 2 + text.len());
            if open == b'[' {
                t.extend(std::iter::repeat_n(b'[', depth));
                t.extend_from_slice(text);
                t.extend(std::iter::repeat_n(b']', depth));
            } else {
                for _ in 0..depth {
                    t.extend_from_slice(b"{\"a\":");
                }
                t.extend_from_slice(text);
                t.extend(std::iter::repeat_n(b'}', depth));
            }
            *text = t;
        }
        6 => {
            let at = rng.below(text.len() + 1);
            text.truncate(at);
        }
        _ => {
            // Concatenated documents / trailing garbage.
            let tail = rng.one(&["{}", " x", "\n{\"a\":1}", "]", "\u{0}"]);
            text.extend_from_slice(tail.as_bytes());
        }
    }
}

fn replace_number(rng: &mut Rng, text: &mut Vec<u8>) {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let b = text.get(i).copied().unwrap_or(0);
        let prev = if i == 0 {
            b' '
        } else {
            text.get(i - 1).copied().unwrap_or(0)
        };
        if (b.is_ascii_digit() || b == b'-') && matches!(prev, b' ' | b':' | b'[' | b',' | b'\n') {
            let start = i;
            while i < text.len()
                && text
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
            {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    if let Some(&(s, e)) = rng.pick(&spans) {
        let num = rng.pick(EDGE_NUMBERS).copied().unwrap_or("0");
        text.splice(s..e, num.bytes());
    }
}

fn positions(text: &[u8], byte: u8) -> Vec<usize> {
    text.iter()
        .enumerate()
        .filter(|(_, b)| **b == byte)
        .map(|(i, _)| i)
        .take(4096)
        .collect()
}

fn splice_in(text: &mut Vec<u8>, at: usize, ins: &[u8]) {
    let at = at.min(text.len());
    text.splice(at..at, ins.iter().copied());
}

/// Byte-level havoc: 1 to 8 stacked edits (flips, interesting bytes, inserts,
/// deletes, duplicated ranges, tokens, splices from another seed).
pub fn havoc(rng: &mut Rng, data: &mut Vec<u8>, others: &[Seed]) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                if let Some(b) = data.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 if len > 0 => {
                let i = rng.below(len);
                let v = rng.one(&[0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'\n', b'{', 0xc3, 0xed]);
                if let Some(b) = data.get_mut(i) {
                    *b = v;
                }
            }
            2 if len > 0 => {
                let s = rng.below(len);
                let e = (s + 1 + rng.below(16)).min(len);
                data.drain(s..e);
            }
            3 if len > 0 => {
                let s = rng.below(len);
                let e = (s + 1 + rng.below(64)).min(len);
                let chunk: Vec<u8> = data.get(s..e).unwrap_or_default().to_vec();
                let at = rng.below(len + 1);
                splice_in(data, at, &chunk);
            }
            4 => {
                let tok = rng.pick(TOKENS).copied().unwrap_or("");
                let at = rng.below(len + 1);
                splice_in(data, at, tok.as_bytes());
            }
            5 => {
                if let Some(other) = rng.pick(others) {
                    let o = &other.bytes;
                    if !o.is_empty() {
                        let s = rng.below(o.len());
                        let e = (s + 1 + rng.below(256)).min(o.len());
                        let at = rng.below(len + 1);
                        splice_in(data, at, o.get(s..e).unwrap_or_default());
                    }
                }
            }
            6 if len > 0 => {
                let at = rng.below(len);
                data.truncate(at);
            }
            7 => {
                // Invalid UTF-8 sequences.
                let bad: &[u8] = rng.one(&[
                    &[0xff][..],
                    &[0xc3],
                    &[0xed, 0xa0, 0x80],
                    &[0xf4, 0x90, 0x80, 0x80],
                    &[0xe2, 0x82],
                ]);
                let at = rng.below(len + 1);
                splice_in(data, at, bad);
            }
            8 if len > 1 => {
                let (i, j) = (rng.below(len), rng.below(len));
                data.swap(i, j);
            }
            _ => {
                let n = rng.below(8);
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                splice_in(data, at, &bytes);
            }
        }
    }
}

/// Line-level edits: delete, duplicate, swap, blank, CRLF, a line from another seed.
fn line_edit(rng: &mut Rng, data: &[u8], others: &[Seed], mutate_line: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let n = lines.len();
    match rng.below(9) {
        0 if n > 1 => {
            lines.remove(rng.below(n));
        }
        1 => {
            let i = rng.below(n);
            if let Some(l) = lines.get(i).cloned() {
                lines.insert(i, l);
            }
        }
        2 if n > 1 => {
            let (i, j) = (rng.below(n), rng.below(n));
            lines.swap(i, j);
        }
        3 => {
            let blank: &[u8] = rng.one(&[&b""[..], b"   ", b"\t", b"\r", b"\x0c"]);
            lines.insert(rng.below(n + 1), blank.to_vec());
        }
        4 => {
            for l in &mut lines {
                l.push(b'\r');
            }
        }
        5 => {
            if let Some(other) = rng.pick(others) {
                let ol: Vec<&[u8]> = other.bytes.split(|b| *b == b'\n').collect();
                if let Some(l) = rng.pick(&ol) {
                    lines.insert(rng.below(n + 1), l.to_vec());
                }
            }
        }
        6 if mutate_line => {
            let i = rng.below(n);
            if let Some(l) = lines.get_mut(i) {
                let seed = Seed {
                    kind: Kind::Json,
                    bytes: std::mem::take(l),
                };
                let mut m = mutate_json(rng, &seed, None, &[], others);
                m.retain(|b| *b != b'\n');
                *l = m;
            }
        }
        7 => {
            let i = rng.below(n);
            if let Some(l) = lines.get_mut(i) {
                let mut t = l.clone();
                json_text_edit(rng, &mut t);
                t.retain(|b| *b != b'\n');
                *l = t;
            }
        }
        _ => {
            let i = rng.below(n);
            if let Some(l) = lines.get_mut(i) {
                havoc(rng, l, others);
            }
        }
    }
    lines.join(&b'\n')
}

fn mutate_json(
    rng: &mut Rng,
    seed: &Seed,
    parsed: Option<&Value>,
    donors: &[Value],
    others: &[Seed],
) -> Vec<u8> {
    let r = rng.below(100);
    let tree = || match parsed {
        Some(v) => Some(v.clone()),
        None => serde_json::from_slice::<Value>(&seed.bytes).ok(),
    };
    if r < 55
        && let Some(mut v) = tree()
    {
        for _ in 0..1 + rng.below(3) {
            mutate_tree(rng, &mut v, donors, 0);
        }
        let mut out = write_json(rng, &v);
        if rng.chance(1, 4) {
            json_text_edit(rng, &mut out);
        }
        return out;
    }
    let mut out = seed.bytes.clone();
    if r < 85 {
        json_text_edit(rng, &mut out);
    } else {
        havoc(rng, &mut out, others);
    }
    out
}

fn mutate_yaml(rng: &mut Rng, seed: &Seed, donors: &[Value], others: &[Seed]) -> Vec<u8> {
    let r = rng.below(100);
    let text = String::from_utf8_lossy(&seed.bytes);
    if r < 45
        && let Ok(mut v) = cfa_policy::yaml::parse_value(&text)
    {
        for _ in 0..1 + rng.below(3) {
            mutate_tree(rng, &mut v, donors, 0);
        }
        if rng.chance(1, 5) {
            return write_json(rng, &v);
        }
        let mut out = String::new();
        write_yaml(&v, 0, &mut out);
        return out.into_bytes();
    }
    if r < 60 {
        return yaml_special(rng, &seed.bytes);
    }
    if r < 80 {
        return line_edit(rng, &seed.bytes, others, false);
    }
    let mut out = seed.bytes.clone();
    havoc(rng, &mut out, others);
    out
}

/// YAML-only constructs: anchors and aliases (and alias bombs), tags, merge keys,
/// complex keys, tabs, directives and multiple documents.
fn yaml_special(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    // Alias bombs are rare: each costs the parser its whole node budget.
    let case = match rng.below(8) {
        0 if !rng.chance(1, 16) => 7,
        c => c,
    };
    match case {
        0 => {
            let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
            let levels = 3 + rng.below(8);
            for i in 1..levels {
                let p = i - 1;
                bomb.push_str(&format!(
                    "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
                ));
            }
            splice_in(&mut out, 0, bomb.as_bytes());
        }
        1 => splice_in(&mut out, 0, b"base: &b {version: x}\n<<: *b\n"),
        2 => {
            let lines = positions(&out, b'\n');
            if let Some(&at) = rng.pick(&lines) {
                splice_in(&mut out, at + 1, b"\t");
            }
        }
        3 => splice_in(&mut out, 0, b"%YAML 1.2\n---\n"),
        4 => out.extend_from_slice(b"\n---\nsecond: doc\n"),
        5 => {
            let lines = positions(&out, b'\n');
            if let Some(&at) = rng.pick(&lines) {
                let t = rng.one(&[
                    "!!str ", "!!int ", "!!float ", "!!map ", "!custom ", "&x ", "*x ",
                ]);
                let line_end = out
                    .get(at + 1..)
                    .and_then(|r| r.iter().position(|b| *b == b':'))
                    .map(|p| at + 1 + p + 1);
                if let Some(pos) = line_end {
                    splice_in(&mut out, pos, format!(" {t}").as_bytes());
                }
            }
        }
        6 => {
            let depth = rng.one(&[10, 100, 1_000, 10_000, 100_000]);
            let mut t = Vec::new();
            t.extend_from_slice(b"k: ");
            t.extend(std::iter::repeat_n(b'[', depth));
            t.extend(std::iter::repeat_n(b']', depth));
            t.push(b'\n');
            splice_in(&mut out, 0, &t);
        }
        _ => splice_in(&mut out, 0, b"? [complex, key]\n: value\n"),
    }
    out
}

/// Keeps the header most of the time and mutates the body by its own format; else
/// edits the header (query values, path, method) and keeps the body.
fn mutate_headed(rng: &mut Rng, seed: &Seed, others: &[Seed], donors: &[Value]) -> Vec<u8> {
    let bytes = &seed.bytes;
    let split = bytes
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(bytes.len());
    let head = bytes.get(..split).unwrap_or_default();
    let body = bytes.get(split + 1..).unwrap_or_default();
    let mut out = Vec::with_capacity(bytes.len() + 64);
    if rng.chance(4, 5) {
        let kind = if serde_json::from_slice::<Value>(body).is_ok() {
            Kind::Json
        } else if head.windows(4).any(|w| w == b"yaml") {
            Kind::Yaml
        } else {
            Kind::Text
        };
        let inner = Seed {
            kind,
            bytes: body.to_vec(),
        };
        out.extend_from_slice(head);
        out.push(b'\n');
        out.extend(mutate(rng, &inner, others, donors));
    } else {
        let mut h = head.to_vec();
        if rng.chance(1, 2) {
            let v = edge_string(rng);
            let v: String = v.chars().take(300).collect();
            let sep = if h.contains(&b'?') { b'&' } else { b'?' };
            h.push(sep);
            let key = rng.one(&["policy_bundle=", "replan_count=", "intent_id=", "x="]);
            h.extend_from_slice(key.as_bytes());
            h.extend_from_slice(v.as_bytes());
        } else {
            havoc(rng, &mut h, &[]);
        }
        h.retain(|b| *b != b'\n');
        out.extend(h);
        out.push(b'\n');
        out.extend_from_slice(body);
    }
    out
}

/// One mutated input from `seed`; `others` are the target's other seeds (splices)
/// and `donors` their parsed JSON (subtree transplants).
pub fn mutate(rng: &mut Rng, seed: &Seed, others: &[Seed], donors: &[Value]) -> Vec<u8> {
    mutate_parsed(rng, seed, None, others, donors)
}

/// [`mutate`] with the seed's JSON tree already parsed (`parsed`), when it is JSON.
pub fn mutate_parsed(
    rng: &mut Rng,
    seed: &Seed,
    parsed: Option<&Value>,
    others: &[Seed],
    donors: &[Value],
) -> Vec<u8> {
    let mut out = match seed.kind {
        Kind::Json => mutate_json(rng, seed, parsed, donors, others),
        Kind::Yaml => mutate_yaml(rng, seed, donors, others),
        Kind::Jsonl => {
            if rng.chance(1, 10) {
                let mut o = seed.bytes.clone();
                havoc(rng, &mut o, others);
                o
            } else {
                line_edit(rng, &seed.bytes, others, true)
            }
        }
        Kind::Headed => mutate_headed(rng, seed, others, donors),
        Kind::Text => {
            if rng.chance(1, 2) {
                line_edit(rng, &seed.bytes, others, false)
            } else {
                let mut o = seed.bytes.clone();
                havoc(rng, &mut o, others);
                o
            }
        }
    };
    // Sometimes stack a second, different edit.
    if rng.chance(1, 6) {
        havoc(rng, &mut out, others);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let seeds = vec![Seed::new(
            Kind::Json,
            r#"{"a": [1, 2.5, "x"], "b": {"c": null}}"#,
        )];
        let donors: Vec<Value> = vec![serde_json::from_slice(&seeds[0].bytes).unwrap()];
        let run = |s| {
            let mut rng = Rng::new(s);
            (0..200)
                .map(|_| mutate(&mut rng, &seeds[0], &seeds, &donors))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn yaml_writer_round_trips_plain_trees() {
        let v: Value = serde_json::json!({"policy_bundle": {"version": "x", "rules": [
            {"code": "A", "params": {"min_size_gb": 1.5}, "remediation": []}, {"k": [1, {}]}]}});
        let mut out = String::new();
        write_yaml(&v, 0, &mut out);
        assert_eq!(cfa_policy::yaml::parse_value(&out).unwrap(), v);
    }
}
