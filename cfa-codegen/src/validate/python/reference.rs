//! The validator as it was before the fast path: a `Vec<char>` tokenizer with an owned
//! token per word and a lowercase copy per name and string. Kept only for tests, as the
//! oracle the fast tokenizer and the checks are compared against.
#![allow(dead_code)]

use super::super::{
    SchemaContract, StaticValidationResult, fault, forbidden_column_fault, merge_required,
    missing_merge_fault, missing_partition_fault, protected_pii, raw_pii_fault,
};
use super::{Token, TokenizeError};
use cfa_types::{Fault, FaultSeverity, StateSignature};

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

/// Tokenizes Python source (comments dropped, strings decoded).
pub fn tokenize(src: &str) -> Result<Vec<Token>, TokenizeError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0usize;
    let mut line = 1usize;
    let at = |k: usize| chars.get(k).copied();
    while let Some(c) = at(i) {
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() || c == '\\' {
            i += 1;
        } else if c == '#' {
            while at(i).is_some_and(|x| x != '\n') {
                i += 1;
            }
        } else if is_name_start(c) {
            let start = i;
            while at(i).is_some_and(is_name_char) {
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
            let lower = word.to_ascii_lowercase();
            let is_prefix = word.len() <= 2
                && lower.chars().all(|x| matches!(x, 'r' | 'b' | 'u' | 'f'))
                && matches!(at(i), Some('\'' | '"'));
            if is_prefix {
                let (tok, next, lines) = string_at(&chars, i, &lower, line)?;
                toks.push(tok);
                i = next;
                line += lines;
            } else {
                toks.push(Token::Name(word));
            }
        } else if c == '\'' || c == '"' {
            let (tok, next, lines) = string_at(&chars, i, "", line)?;
            toks.push(tok);
            i = next;
            line += lines;
        } else if c.is_ascii_digit() {
            while at(i).is_some_and(|x| x.is_ascii_alphanumeric() || x == '.' || x == '_') {
                i += 1;
            }
            toks.push(Token::Number);
        } else {
            toks.push(Token::Op(c));
            i += 1;
        }
    }
    Ok(toks)
}

fn string_at(
    chars: &[char],
    start: usize,
    prefix: &str,
    line: usize,
) -> Result<(Token, usize, usize), TokenizeError> {
    let q = chars.get(start).copied().unwrap_or('"');
    let triple = chars.get(start + 1) == Some(&q) && chars.get(start + 2) == Some(&q);
    let mut i = start + if triple { 3 } else { 1 };
    let body_start = i;
    let mut lines = 0usize;
    loop {
        let Some(c) = chars.get(i).copied() else {
            return Err(TokenizeError {
                line,
                message: "unterminated string literal".into(),
            });
        };
        if c == '\\' {
            if chars.get(i + 1) == Some(&'\n') {
                lines += 1;
            }
            i += 2;
            continue;
        }
        if c == '\n' {
            if !triple {
                return Err(TokenizeError {
                    line,
                    message: "newline in a single-quoted string".into(),
                });
            }
            lines += 1;
        }
        if c == q && (!triple || (chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q))) {
            let body: String = chars.get(body_start..i).unwrap_or(&[]).iter().collect();
            let value = if prefix.contains('r') {
                body
            } else {
                decode_escapes(&body)
            };
            let end = i + if triple { 3 } else { 1 };
            return Ok((
                Token::Str {
                    value,
                    formatted: prefix.contains('f'),
                },
                end,
                lines,
            ));
        }
        i += 1;
    }
}

/// The identifier words of a string that can name a column: every word except one
/// directly followed by `.` (a qualifier such as `d1` in `d1.cpf` or `t` in
/// `t.`k` = s.`k``).
fn column_words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
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
                out.push(w);
            }
        }
    }
    out
}

/// Validates PySpark source against the signature.
pub fn validate_pyspark(src: &str, sig: &StateSignature) -> StaticValidationResult {
    validate_pyspark_with(src, sig, None)
}

/// [`validate_pyspark`] plus a schema contract (forbidden columns).
pub fn validate_pyspark_with(
    src: &str,
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> StaticValidationResult {
    let toks = match tokenize(src) {
        Ok(t) => t,
        Err(e) => {
            return StaticValidationResult::from_faults(
                vec![fault(
                    "STATIC_PYTHON_TOKENIZE_ERROR",
                    FaultSeverity::Critical,
                    format!("generated Python cannot be tokenized: {e}"),
                    &["Regenerate the code; generated Python must tokenize."],
                )],
                1,
            );
        }
    };
    let checks = 5 + u32::from(contract.is_some());
    StaticValidationResult::from_faults(check_tokens(&toks, sig, contract), checks)
}

fn push_once(faults: &mut Vec<Fault>, f: Fault) {
    if !faults.iter().any(|g| g.code == f.code) {
        faults.push(f);
    }
}

fn check_tokens(
    toks: &[Token],
    sig: &StateSignature,
    contract: Option<&SchemaContract>,
) -> Vec<Fault> {
    let pii = protected_pii(sig);
    let forbidden = contract.map(SchemaContract::lowercase).unwrap_or_default();
    let partition: Vec<String> = sig
        .constraints
        .partition_by
        .iter()
        .map(|c| c.to_lowercase())
        .collect();
    let protect_append = merge_required(sig);
    let mut faults = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut partition_found = false;
    let mut merge_call = false;
    let mut when_matched = false;
    let crit = FaultSeverity::Critical;
    for (i, t) in toks.iter().enumerate() {
        let prev = if i > 0 { toks.get(i - 1) } else { None };
        let after_dot = prev == Some(&Token::Op('.'));
        let in_frame = |names: &[&str]| stack.iter().any(|f| names.contains(&f.as_str()));
        match t {
            Token::Op(c @ ('(' | '[' | '{')) => {
                let frame = match (c, prev) {
                    ('(', Some(Token::Name(n))) => n.clone(),
                    _ => String::new(),
                };
                stack.push(frame);
            }
            Token::Op(')' | ']' | '}') => {
                stack.pop();
            }
            Token::Name(n) => {
                let code = match n.as_str() {
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
                if matches!(n.as_str(), "import" | "from") {
                    // Every name of the import statement counts: `import a, os`,
                    // `from os import path`, `from x import subprocess`.
                    let mut k = i + 1;
                    while let Some(tok) = toks.get(k) {
                        match tok {
                            Token::Name(m) if m == "os" => push_once(
                                &mut faults,
                                fault(
                                    "STATIC_FORBIDDEN_IMPORT_OS",
                                    crit,
                                    "generated code imports os",
                                    &[],
                                ),
                            ),
                            Token::Name(m) if m == "subprocess" => push_once(
                                &mut faults,
                                fault(
                                    "STATIC_FORBIDDEN_IMPORT_SUBPROCESS",
                                    crit,
                                    "generated code imports subprocess",
                                    &[],
                                ),
                            ),
                            Token::Name(_) | Token::Op(',' | '.' | '(' | ')') => {}
                            _ => break,
                        }
                        k += 1;
                        if k > i + 64 {
                            break;
                        }
                    }
                }
                if after_dot && n == "merge" && toks.get(i + 1) == Some(&Token::Op('(')) {
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
                let lower = n.to_lowercase();
                if after_dot && !in_frame(&["sha2"]) {
                    if pii.contains(&lower) {
                        push_once(&mut faults, raw_pii_fault(&lower, "attribute access"));
                    }
                    if forbidden.contains(&lower) {
                        push_once(&mut faults, forbidden_column_fault(&lower));
                    }
                }
            }
            Token::Str { value, formatted } => {
                let lower = value.to_lowercase();
                // Strings that name no column: hashing/dropping arguments, aliases, format,
                // mode, option and cast names, table names, and the join type after `how=`.
                let after_how = i >= 2
                    && toks.get(i - 1) == Some(&Token::Op('='))
                    && matches!(toks.get(i - 2), Some(Token::Name(n)) if n == "how");
                let names_column = !after_how
                    && !in_frame(&[
                        "sha2",
                        "drop",
                        "alias",
                        "format",
                        "mode",
                        "option",
                        "cast",
                        "table",
                        "saveAsTable",
                        "forName",
                        "tableExists",
                        "get",
                    ]);
                // A string names columns through its identifier words: `"cpf"`,
                // `"d1.cpf"`, `"t.`cpf` = s.`cpf`"`, `F.expr("upper(cpf)")`.
                let words = column_words(&lower);
                if names_column || *formatted {
                    for w in &words {
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
                }
                if in_frame(&["filter", "where"])
                    && words.iter().any(|w| partition.iter().any(|p| p == w))
                {
                    partition_found = true;
                }
                if protect_append
                    && lower == "append"
                    && in_frame(&["mode", "save", "saveAsTable", "insertInto", "option"])
                {
                    push_once(
                        &mut faults,
                        fault(
                            "STATIC_APPEND_TO_PROTECTED",
                            FaultSeverity::High,
                            format!("append write into the protected {} layer", sig.target_layer),
                            &["Use DeltaTable.merge() for silver/gold writes."],
                        ),
                    );
                }
            }
            Token::Number | Token::Op(_) => {}
        }
    }
    if !partition.is_empty() && !partition_found {
        faults.push(missing_partition_fault());
    }
    if merge_required(sig) && !(merge_call && when_matched) {
        faults.push(missing_merge_fault(sig.target_layer.as_str()));
    }
    faults
}
