//! PySpark checks on a token stream from a small Python tokenizer (strings and comments
//! are understood, so a forbidden word inside a comment or string never counts as code
//! and a PII name inside a string always counts as a column reference).
//!
//! The tokenizer works on the source's bytes and borrows names and (escape-free) string
//! values from it, so a token costs no allocation; lowercase copies are made only for
//! text that has uppercase or non-ASCII characters. Results of sources that tokenize are
//! kept in a small bounded cache keyed by the source after its leading comment lines (a
//! provenance header is such a block, so stamped copies of one script share an entry)
//! and by everything of the signature and contract the checks read; see
//! [`validate_pyspark_with`].

use super::{
    SchemaContract, StaticValidationResult, fault, forbidden_column_fault, merge_required,
    missing_merge_fault, missing_partition_fault, protected_pii, raw_pii_fault,
};
use crate::artifact::GeneratedArtifact;
use crate::cache::{SlotCache, hash_of};
use cfa_types::{Fault, FaultSeverity, StateSignature, TargetLayer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

/// Fault codes the PySpark validation can raise (besides `STATIC_RAW_PII_REFERENCE_{COL}`).
pub const PYSPARK_CODES: &[&str] = &[
    "STATIC_PYTHON_TOKENIZE_ERROR",
    "STATIC_FORBIDDEN_COLLECT",
    "STATIC_FORBIDDEN_TOPANDAS",
    "STATIC_FORBIDDEN_CROSSJOIN",
    "STATIC_FORBIDDEN_IMPORT_OS",
    "STATIC_FORBIDDEN_IMPORT_SUBPROCESS",
    "STATIC_FORBIDDEN_DYNAMIC_CODE",
    "STATIC_APPEND_TO_PROTECTED",
    "STATIC_MISSING_PARTITION_FILTER",
    "STATIC_MISSING_MERGE_OPERATION",
    "STATIC_RAW_PII_REFERENCE_{COL}",
];

/// One Python token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An identifier or keyword.
    Name(String),
    /// A string literal's (decoded) value; `formatted` for f-strings.
    Str {
        /// Value.
        value: String,
        /// True for f-strings.
        formatted: bool,
    },
    /// A number literal.
    Number,
    /// A single punctuation character.
    Op(char),
}

/// A tokenizer error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TokenizeError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn decode_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(x @ ('x' | 'u' | 'U')) => {
                let n = match x {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push('\u{fffd}'),
                }
            }
            Some('\n') => {}
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A token borrowing from the source: what the checks run on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Name(&'a str),
    Str {
        value: Cow<'a, str>,
        formatted: bool,
    },
    Number,
    Op(char),
}

impl Tok<'_> {
    fn into_owned(self) -> Token {
        match self {
            Tok::Name(n) => Token::Name(n.to_owned()),
            Tok::Str { value, formatted } => Token::Str {
                value: value.into_owned(),
                formatted,
            },
            Tok::Number => Token::Number,
            Tok::Op(c) => Token::Op(c),
        }
    }
}

/// The char starting at byte `i` of `src` (`i` is always a char boundary here).
fn char_at(src: &str, i: usize) -> Option<char> {
    src.get(i..).and_then(|rest| rest.chars().next())
}

/// The end of the name starting at byte `i`.
fn name_end(src: &str, mut i: usize) -> usize {
    let bytes = src.as_bytes();
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if b.is_ascii_alphanumeric() || b == b'_' {
                i += 1;
                continue;
            }
            break;
        }
        match char_at(src, i) {
            Some(c) if is_name_char(c) => i += c.len_utf8(),
            _ => break,
        }
    }
    i
}

/// Tokenizes Python source (comments dropped, strings decoded).
pub fn tokenize(src: &str) -> Result<Vec<Token>, TokenizeError> {
    Ok(lex(src)?.into_iter().map(Tok::into_owned).collect())
}

/// The tokenizer behind [`tokenize`], on bytes: every branch point (newline, `#`,
/// quotes, backslash, digits, ASCII letters) is an ASCII byte, and bytes of a multi-byte
/// char are never one of them, so only non-ASCII chars outside strings and comments are
/// decoded.
fn lex(src: &str) -> Result<Vec<Tok<'_>>, TokenizeError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::with_capacity(src.len() / 6);
    let mut i = 0usize;
    let mut line = 1usize;
    while let Some(&b) = bytes.get(i) {
        if !b.is_ascii() {
            let Some(c) = char_at(src, i) else { break };
            if c.is_whitespace() {
                i += c.len_utf8();
            } else if is_name_start(c) {
                let end = name_end(src, i);
                toks.push(Tok::Name(src.get(i..end).unwrap_or("")));
                i = end;
            } else {
                toks.push(Tok::Op(c));
                i += c.len_utf8();
            }
            continue;
        }
        let c = char::from(b);
        if b == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() || b == b'\\' {
            i += 1;
        } else if b == b'#' {
            i = bytes
                .get(i..)
                .and_then(|rest| rest.iter().position(|&x| x == b'\n'))
                .map_or(bytes.len(), |p| i + p);
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            i = name_end(src, i);
            let word = src.get(start..i).unwrap_or("");
            // A string prefix: at most two of r/b/u/f (any case) right before a quote.
            let is_prefix = word.len() <= 2
                && word
                    .bytes()
                    .all(|x| matches!(x.to_ascii_lowercase(), b'r' | b'b' | b'u' | b'f'))
                && matches!(bytes.get(i), Some(b'\'' | b'"'));
            if is_prefix {
                let raw = word.bytes().any(|x| x.eq_ignore_ascii_case(&b'r'));
                let formatted = word.bytes().any(|x| x.eq_ignore_ascii_case(&b'f'));
                let (tok, next, lines) = lex_string(src, i, raw, formatted, line)?;
                toks.push(tok);
                i = next;
                line += lines;
            } else {
                toks.push(Tok::Name(word));
            }
        } else if b == b'\'' || b == b'"' {
            let (tok, next, lines) = lex_string(src, i, false, false, line)?;
            toks.push(tok);
            i = next;
            line += lines;
        } else if b.is_ascii_digit() {
            while bytes
                .get(i)
                .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'.' || *x == b'_')
            {
                i += 1;
            }
            toks.push(Tok::Number);
        } else {
            toks.push(Tok::Op(c));
            i += 1;
        }
    }
    Ok(toks)
}

/// The string literal whose opening quote is at byte `start`: the token, the byte after
/// it, and how many newlines it spans.
fn lex_string(
    src: &str,
    start: usize,
    raw: bool,
    formatted: bool,
    line: usize,
) -> Result<(Tok<'_>, usize, usize), TokenizeError> {
    let bytes = src.as_bytes();
    let q = bytes.get(start).copied().unwrap_or(b'"');
    let triple = bytes.get(start + 1) == Some(&q) && bytes.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    let body_start = i;
    let mut lines = 0usize;
    let mut escapes = false;
    loop {
        let Some(&b) = bytes.get(i) else {
            return Err(TokenizeError {
                line,
                message: "unterminated string literal".into(),
            });
        };
        if b == b'\\' {
            escapes = true;
            // The backslash and the whole char after it.
            let next = char_at(src, i + 1);
            if next == Some('\n') {
                lines += 1;
            }
            i += 1 + next.map_or(1, char::len_utf8);
            continue;
        }
        if b == b'\n' {
            if !triple {
                return Err(TokenizeError {
                    line,
                    message: "newline in a single-quoted string".into(),
                });
            }
            lines += 1;
        }
        if b == q && (!triple || (bytes.get(i + 1) == Some(&q) && bytes.get(i + 2) == Some(&q))) {
            let body = src.get(body_start..i).unwrap_or("");
            // Without a backslash, decoding returns the body unchanged.
            let value = if raw || !escapes {
                Cow::Borrowed(body)
            } else {
                Cow::Owned(decode_escapes(body))
            };
            let end = i + if triple { 3 } else { 1 };
            return Ok((Tok::Str { value, formatted }, end, lines));
        }
        i += 1;
    }
}

/// Calls `f` with the identifier words of a string that can name a column: every word
/// except one directly followed by `.` (a qualifier such as `d1` in `d1.cpf` or `t` in
/// `t.`k` = s.`k``).
fn column_words<'t>(text: &'t str, mut f: impl FnMut(&'t str)) {
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if is_name_char(c) && i < text.len() {
            start.get_or_insert(i);
        } else if let Some(st) = start.take() {
            let qualifier = text.get(i..).is_some_and(|rest| rest.starts_with('.'));
            if !qualifier && let Some(w) = text.get(st..i) {
                f(w);
            }
        }
    }
}

/// `s.to_lowercase()`, borrowed when that changes nothing (ASCII without uppercase
/// letters; for ASCII text Unicode lowercasing is ASCII lowercasing).
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        Cow::Borrowed(s)
    } else if s.is_ascii() {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `word.to_lowercase() == lowered`, without a copy when `word` is ASCII.
fn lowercase_is(word: &str, lowered: &str) -> bool {
    if word.is_ascii() {
        word.len() == lowered.len()
            && word
                .bytes()
                .zip(lowered.bytes())
                .all(|(w, l)| w.to_ascii_lowercase() == l)
    } else {
        word.to_lowercase() == lowered
    }
}

/// Everything of the signature and the contract the checks read: with the source after
/// its leading comment lines, the cache key of a result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Context {
    /// Protected PII columns, lowercase.
    pii: Vec<String>,
    /// Forbidden columns of the contract, lowercase.
    forbidden: Vec<String>,
    /// Whether a contract was given (it counts as a check group).
    has_contract: bool,
    /// `constraints.partition_by`, lowercase.
    partition: Vec<String>,
    /// Whether the write must be a merge.
    merge_required: bool,
    /// The target layer (named in fault messages).
    target_layer: TargetLayer,
}

impl Context {
    fn new(sig: &StateSignature, contract: Option<&SchemaContract>) -> Self {
        Context {
            pii: protected_pii(sig),
            forbidden: contract.map(SchemaContract::lowercase).unwrap_or_default(),
            has_contract: contract.is_some(),
            partition: sig
                .constraints
                .partition_by
                .iter()
                .map(|c| c.to_lowercase())
                .collect(),
            merge_required: merge_required(sig),
            target_layer: sig.target_layer,
        }
    }
}

impl Context {
    /// Whether this is `Context::new(sig, None)`, found without building that context
    /// (no lowercase copies of ASCII names).
    fn is_of(&self, sig: &StateSignature) -> bool {
        if self.has_contract
            || !self.forbidden.is_empty()
            || self.target_layer != sig.target_layer
            || self.merge_required != merge_required(sig)
            || self.partition.len() != sig.constraints.partition_by.len()
            || !self
                .partition
                .iter()
                .zip(&sig.constraints.partition_by)
                .all(|(l, c)| lowercase_is(c, l))
        {
            return false;
        }
        if !sig.constraints.no_pii_raw {
            return self.pii.is_empty();
        }
        // `protected_pii`'s list: each lowercase name once, in order of first appearance.
        let mut taken = 0;
        for c in sig.datasets.iter().flat_map(|d| &d.pii_columns) {
            let seen = self.pii.get(..taken).unwrap_or_default();
            if seen.iter().any(|l| lowercase_is(c, l)) {
                continue;
            }
            match self.pii.get(taken) {
                Some(l) if lowercase_is(c, l) => taken += 1,
                _ => return false,
            }
        }
        taken == self.pii.len()
    }
}

/// `src` without its leading comment lines: the lines, from the top, whose first byte is
/// `#` (a provenance header and the `Generated by` banner are such lines). The tokenizer
/// drops each of them whole and is back at the start of a line after it, so `src` and
/// the remainder give the same tokens (only line numbers of errors differ).
fn after_leading_comments(src: &str) -> &str {
    let mut rest = src;
    while rest.starts_with('#') {
        rest = match rest.find('\n') {
            Some(nl) => rest.get(nl + 1..).unwrap_or(""),
            None => "",
        };
    }
    rest
}

/// Sources longer than this are validated without the cache, so the cache's memory
/// stays bounded (at most `SLOTS` entries of this size).
const MAX_CACHED_SOURCE: usize = 64 * 1024;

/// A cached result: the key it was computed for, and the result.
#[derive(Debug)]
struct Entry {
    body: Box<str>,
    context: Context,
    result: StaticValidationResult,
}

/// Results of sources that tokenize, by body and context (see [`validate_pyspark_with`]).
static CACHE: SlotCache<Entry, 64> = SlotCache::new();

/// Validates PySpark source against the signature.
pub fn validate_pyspark(src: &str, sig: &StateSignature) -> StaticValidationResult {
    validate_pyspark_with(src, sig, None)
}

/// [`validate_pyspark`] plus a schema contract (forbidden columns).
///
/// Results are cached (64 entries, sources up to 64 KiB, shared by all threads) by the
/// source after its leading comment lines and by what the checks read of `sig` and
/// `contract`; a hit is compared in full before it is used, and a source that does not
/// tokenize is never cached (its message names a line). Since leading comment lines
/// yield no tokens, the verdict and every message of a source depend only on that key,
/// so a stamped provenance header never changes a result and is still part of what is
/// validated. [`validate_pyspark_uncached`] gives the same result without the cache.
pub fn validate_pyspark_with(
    src: &str,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    validate_cached(&CACHE, src, Context::new(sig, contract))
}

/// The cached validation behind [`validate_pyspark_with`], with the cache as a parameter.
fn validate_cached<const N: usize>(
    cache: &SlotCache<Entry, N>,
    src: &str,
    context: Context,
) -> StaticValidationResult {
    let body = after_leading_comments(src);
    if body.len() > MAX_CACHED_SOURCE {
        return validate_in(src, &context).0;
    }
    let hash = hash_of(&(body, &context));
    let hit = cache.get(hash, |e| *e.body == *body && e.context == context);
    if let Some(entry) = hit {
        return entry.result.clone();
    }
    let (result, tokenized) = validate_in(src, &context);
    if tokenized {
        cache.insert(
            hash,
            Entry {
                body: body.into(),
                context,
                result: result.clone(),
            },
        );
    }
    result
}

/// How many artifacts a thread remembers in [`validate_pyspark_shared`].
const BY_HANDLE: usize = 4;

/// A remembered result: the artifact's handle (held, so its address is not reused while
/// remembered), the context it was checked under, and the result.
type HandleEntry = (Arc<GeneratedArtifact>, Context, StaticValidationResult);

thread_local! {
    /// The thread's last [`BY_HANDLE`] results of [`validate_pyspark_shared`], and the
    /// slot the next miss replaces.
    static HANDLES: RefCell<(Vec<HandleEntry>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// [`validate_pyspark_with`] (no contract) of `artifact`'s main file, for an artifact
/// behind a shared handle: a thread's last [`BY_HANDLE`] results are recognised by the
/// handle's address and the context in full, so the source is neither hashed nor compared
/// again. A shared artifact is never changed and the memo holds its handle, so an address
/// it recognises is that artifact's; the result is the one [`validate_pyspark_with`] gives.
pub(crate) fn validate_pyspark_shared(
    artifact: &Arc<GeneratedArtifact>,
    sig: &StateSignature,
) -> StaticValidationResult {
    let src = artifact
        .main_file()
        .map(|f| f.content.as_str())
        .unwrap_or("");
    HANDLES
        .try_with(|cell| {
            let Ok(mut recent) = cell.try_borrow_mut() else {
                return validate_cached(&CACHE, src, Context::new(sig, None));
            };
            let (entries, next) = &mut *recent;
            if let Some((_, _, result)) = entries
                .iter()
                .find(|(a, c, _)| Arc::ptr_eq(a, artifact) && c.is_of(sig))
            {
                return result.clone();
            }
            let context = Context::new(sig, None);
            let result = validate_cached(&CACHE, src, context.clone());
            let entry = (Arc::clone(artifact), context, result.clone());
            if entries.len() < BY_HANDLE {
                entries.push(entry);
            } else {
                if let Some(slot) = entries.get_mut(*next) {
                    *slot = entry;
                }
                *next = (*next + 1) % BY_HANDLE;
            }
            result
        })
        .unwrap_or_else(|_| validate_cached(&CACHE, src, Context::new(sig, None)))
}

/// [`validate_pyspark_with`] without the cache: tokenizes and checks `src` every time.
pub fn validate_pyspark_uncached(
    src: &str,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    validate_in(src, &Context::new(sig, contract)).0
}

/// The result for `src`, and whether it tokenized.
fn validate_in(src: &str, context: &Context) -> (StaticValidationResult, bool) {
    let toks = match lex(src) {
        Ok(t) => t,
        Err(e) => {
            let result = StaticValidationResult::from_faults(
                vec![fault(
                    "STATIC_PYTHON_TOKENIZE_ERROR",
                    FaultSeverity::Critical,
                    format!("generated Python cannot be tokenized: {e}"),
                    &["Regenerate the code; generated Python must tokenize."],
                )],
                1,
            );
            return (result, false);
        }
    };
    let checks = 5 + u32::from(context.has_contract);
    let faults = check_tokens(&toks, context);
    (StaticValidationResult::from_faults(faults, checks), true)
}

fn push_once(faults: &mut Vec<Fault>, f: Fault) {
    if !faults.iter().any(|g| g.code == f.code) {
        faults.push(f);
    }
}

/// Call frames that matter to the checks, by the name before `(`.
const SHA2: u8 = 1;
/// Arguments that name no column (hashing/dropping, aliases, format, mode, option, cast
/// and table names).
const NOT_A_COLUMN: u8 = 2;
/// A filter predicate.
const FILTER: u8 = 4;
/// A write mode or writer call.
const WRITE: u8 = 8;

fn frame_kind(name: &str) -> u8 {
    match name {
        "sha2" => SHA2 | NOT_A_COLUMN,
        "mode" | "option" | "saveAsTable" => NOT_A_COLUMN | WRITE,
        "drop" | "alias" | "format" | "cast" | "table" | "forName" | "tableExists" | "get" => {
            NOT_A_COLUMN
        }
        "save" | "insertInto" => WRITE,
        "filter" | "where" => FILTER,
        _ => 0,
    }
}

/// The open brackets, with how many open frames are of each kind.
#[derive(Default)]
struct Frames {
    stack: Vec<u8>,
    sha2: u32,
    not_a_column: u32,
    filter: u32,
    write: u32,
}

impl Frames {
    fn counters(&mut self, kind: u8) -> [(u8, &mut u32); 4] {
        [
            (kind & SHA2, &mut self.sha2),
            (kind & NOT_A_COLUMN, &mut self.not_a_column),
            (kind & FILTER, &mut self.filter),
            (kind & WRITE, &mut self.write),
        ]
    }
    fn push(&mut self, kind: u8) {
        self.stack.push(kind);
        for (on, n) in self.counters(kind) {
            if on != 0 {
                *n += 1;
            }
        }
    }
    fn pop(&mut self) {
        if let Some(kind) = self.stack.pop() {
            for (on, n) in self.counters(kind) {
                if on != 0 {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }
    /// Whether any open frame is of `kind`.
    fn inside(&self, kind: u8) -> bool {
        let n = match kind {
            SHA2 => self.sha2,
            NOT_A_COLUMN => self.not_a_column,
            FILTER => self.filter,
            _ => self.write,
        };
        n > 0
    }
}

fn check_tokens(toks: &[Tok<'_>], cx: &Context) -> Vec<Fault> {
    let pii = &cx.pii;
    let forbidden = &cx.forbidden;
    let partition = &cx.partition;
    let protect_append = cx.merge_required;
    let mut faults = Vec::new();
    let mut frames = Frames::default();
    let mut partition_found = false;
    let mut merge_call = false;
    let mut when_matched = false;
    let crit = FaultSeverity::Critical;
    for (i, t) in toks.iter().enumerate() {
        let prev = if i > 0 { toks.get(i - 1) } else { None };
        let after_dot = prev == Some(&Tok::Op('.'));
        match t {
            Tok::Op(c @ ('(' | '[' | '{')) => {
                let kind = match (c, prev) {
                    ('(', Some(Tok::Name(n))) => frame_kind(n),
                    _ => 0,
                };
                frames.push(kind);
            }
            Tok::Op(')' | ']' | '}') => frames.pop(),
            Tok::Name(n) => {
                let n = *n;
                let code = match n {
                    "collect" if after_dot => Some((
                        "STATIC_FORBIDDEN_COLLECT",
                        "collect() pulls all data to the driver",
                    )),
                    "toPandas" if after_dot => Some((
                        "STATIC_FORBIDDEN_TOPANDAS",
                        "toPandas() pulls all data to the driver",
                    )),
                    "crossJoin" => Some((
                        "STATIC_FORBIDDEN_CROSSJOIN",
                        "crossJoin is a cartesian product",
                    )),
                    "__import__" | "importlib" | "eval" | "exec" | "compile" if !after_dot => {
                        Some((
                            "STATIC_FORBIDDEN_DYNAMIC_CODE",
                            "dynamic imports or code execution",
                        ))
                    }
                    _ => None,
                };
                if let Some((code, what)) = code {
                    push_once(
                        &mut faults,
                        fault(code, crit, format!("generated code uses {what}"), &[]),
                    );
                }
                if matches!(n, "import" | "from") {
                    // Every name of the import statement counts: `import a, os`,
                    // `from os import path`, `from x import subprocess`.
                    let mut k = i + 1;
                    while let Some(tok) = toks.get(k) {
                        match tok {
                            Tok::Name("os") => push_once(
                                &mut faults,
                                fault(
                                    "STATIC_FORBIDDEN_IMPORT_OS",
                                    crit,
                                    "generated code imports os",
                                    &[],
                                ),
                            ),
                            Tok::Name("subprocess") => push_once(
                                &mut faults,
                                fault(
                                    "STATIC_FORBIDDEN_IMPORT_SUBPROCESS",
                                    crit,
                                    "generated code imports subprocess",
                                    &[],
                                ),
                            ),
                            Tok::Name(_) | Tok::Op(',' | '.' | '(' | ')') => {}
                            _ => break,
                        }
                        k += 1;
                        if k > i + 64 {
                            break;
                        }
                    }
                }
                if after_dot && n == "merge" && toks.get(i + 1) == Some(&Tok::Op('(')) {
                    merge_call = true;
                }
                if after_dot && (n == "whenMatchedUpdateAll" || n == "whenMatchedUpdate") {
                    when_matched = true;
                }
                if protect_append && after_dot && n == "insertInto" {
                    push_once(
                        &mut faults,
                        fault(
                            "STATIC_APPEND_TO_PROTECTED",
                            FaultSeverity::High,
                            "insertInto appends into a protected layer",
                            &["Use DeltaTable.merge() for silver/gold writes."],
                        ),
                    );
                }
                if after_dot && !frames.inside(SHA2) {
                    if let Some(p) = pii.iter().find(|p| lowercase_is(n, p)) {
                        push_once(&mut faults, raw_pii_fault(p, "attribute access"));
                    }
                    if let Some(f) = forbidden.iter().find(|f| lowercase_is(n, f)) {
                        push_once(&mut faults, forbidden_column_fault(f));
                    }
                }
            }
            Tok::Str { value, formatted } => {
                let lower = lowercase(value);
                // Strings that name no column: hashing/dropping arguments, aliases, format,
                // mode, option, cast and table names, and the join type after `how=`.
                let after_how = i >= 2
                    && toks.get(i - 1) == Some(&Tok::Op('='))
                    && matches!(toks.get(i - 2), Some(Tok::Name("how")));
                let names_column = !after_how && !frames.inside(NOT_A_COLUMN);
                // A string names columns through its identifier words: `"cpf"`,
                // `"d1.cpf"`, `"t.`cpf` = s.`cpf`"`, `F.expr("upper(cpf)")`.
                let check_columns =
                    (names_column || *formatted) && !(pii.is_empty() && forbidden.is_empty());
                let check_partition =
                    !partition_found && !partition.is_empty() && frames.inside(FILTER);
                if check_columns || check_partition {
                    column_words(&lower, |w| {
                        if check_columns {
                            if pii.iter().any(|p| p == w) {
                                push_once(
                                    &mut faults,
                                    raw_pii_fault(w, "string reference outside sha2()/drop()"),
                                );
                            }
                            if forbidden.iter().any(|f| f == w) {
                                push_once(&mut faults, forbidden_column_fault(w));
                            }
                        }
                        if check_partition && partition.iter().any(|p| p == w) {
                            partition_found = true;
                        }
                    });
                }
                if protect_append && lower == "append" && frames.inside(WRITE) {
                    push_once(
                        &mut faults,
                        fault(
                            "STATIC_APPEND_TO_PROTECTED",
                            FaultSeverity::High,
                            format!("append write into the protected {} layer", cx.target_layer),
                            &["Use DeltaTable.merge() for silver/gold writes."],
                        ),
                    );
                }
            }
            Tok::Number | Tok::Op(_) => {}
        }
    }
    if !partition.is_empty() && !partition_found {
        faults.push(missing_partition_fault());
    }
    if cx.merge_required && !(merge_call && when_matched) {
        faults.push(missing_merge_fault(cx.target_layer.as_str()));
    }
    faults
}

#[cfg(test)]
mod reference;

#[cfg(test)]
mod tests;
