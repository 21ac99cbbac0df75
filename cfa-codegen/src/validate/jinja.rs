//! A tiny, deterministic "dbt compile" for generated models: it renders `{{ config(...) }}`
//! (to nothing, recording its arguments), `{{ source('s', 't') }}` (to `"s"."t"`),
//! `{{ ref('m') }}` (to `"m"`) and `{{ var('name') }}` (to the supplied value), and drops
//! `{# comments #}`. Anything else — `{% %}` blocks, other calls, filters, expressions —
//! is an error, so a model that compiles here has no hidden logic.

use crate::ident::identifier_problem;
use std::collections::BTreeMap;

/// A config argument value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// A string.
    Str(String),
    /// A list of strings.
    List(Vec<String>),
}

/// The compiled model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// Plain SQL.
    pub sql: String,
    /// `config()` keyword arguments, in order.
    pub config: Vec<(String, ConfigValue)>,
}

impl Compiled {
    /// A string config value.
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.iter().find_map(|(k, v)| match v {
            ConfigValue::Str(s) if k == key => Some(s.as_str()),
            _ => None,
        })
    }

    /// A list config value (a single string counts as a one-element list).
    pub fn config_list(&self, key: &str) -> Option<Vec<String>> {
        self.config.iter().find_map(|(k, v)| {
            if k != key {
                return None;
            }
            Some(match v {
                ConfigValue::Str(s) => vec![s.clone()],
                ConfigValue::List(l) => l.clone(),
            })
        })
    }
}

/// Why a model cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {message}")]
pub struct TemplateError {
    /// Byte offset in the model.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Compiles with `partition_start = '1970-01-01'`.
pub fn compile(model: &str) -> Result<Compiled, TemplateError> {
    let mut vars = BTreeMap::new();
    vars.insert("partition_start".to_owned(), "1970-01-01".to_owned());
    compile_with(model, &vars)
}

/// Compiles with the given `var()` values.
pub fn compile_with(
    model: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Compiled, TemplateError> {
    let mut out = String::with_capacity(model.len());
    let mut config = Vec::new();
    let mut rest = model;
    let mut offset = 0usize;
    loop {
        let next = ["{{", "{%", "{#"]
            .iter()
            .filter_map(|m| rest.find(m).map(|i| (i, *m)))
            .min_by_key(|(i, _)| *i);
        let Some((i, marker)) = next else {
            if rest.contains("}}") || rest.contains("%}") || rest.contains("#}") {
                return Err(err(offset, "unbalanced template delimiter"));
            }
            out.push_str(rest);
            break;
        };
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let at = offset + i;
        let close = match marker {
            "{{" => "}}",
            "{%" => {
                return Err(err(
                    at,
                    "'{% %}' blocks are not allowed in generated models",
                ));
            }
            _ => "#}",
        };
        let inner_start = after.get(2..).unwrap_or("");
        let Some(end) = inner_start.find(close) else {
            return Err(err(at, format!("unterminated '{marker}'")));
        };
        let inner = inner_start.get(..end).unwrap_or("");
        if marker == "{{" {
            out.push_str(&render_call(inner, at + 2, vars, &mut config)?);
        }
        let consumed = i + 2 + end + 2;
        rest = rest.get(consumed..).unwrap_or("");
        offset += consumed;
    }
    Ok(Compiled { sql: out, config })
}

fn err(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

#[derive(Debug)]
enum Arg {
    Str(String),
    List(Vec<String>),
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
    base: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn error(&self, m: impl Into<String>) -> TemplateError {
        err(self.base + self.pos, m)
    }
    fn name(&mut self) -> Result<String, TemplateError> {
        self.skip_ws();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.pos += 1;
        }
        let n = self.s.get(start..self.pos).unwrap_or(&[]);
        if n.is_empty() {
            return Err(self.error("expected a name"));
        }
        Ok(String::from_utf8_lossy(n).into_owned())
    }
    fn string(&mut self) -> Result<String, TemplateError> {
        self.skip_ws();
        let q = self.peek().ok_or_else(|| self.error("expected a string"))?;
        if q != b'\'' && q != b'"' {
            return Err(self.error("expected a quoted string"));
        }
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == q {
                let v = String::from_utf8_lossy(self.s.get(start..self.pos).unwrap_or(&[]))
                    .into_owned();
                self.pos += 1;
                return Ok(v);
            }
            if c == b'\\' || c == b'\n' {
                return Err(self.error("escapes and newlines are not allowed in strings"));
            }
            self.pos += 1;
        }
        Err(self.error("unterminated string"))
    }
    fn value(&mut self) -> Result<Arg, TemplateError> {
        self.skip_ws();
        if self.eat(b'[') {
            let mut items = Vec::new();
            if !self.eat(b']') {
                loop {
                    items.push(self.string()?);
                    if self.eat(b']') {
                        break;
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected ',' or ']'"));
                    }
                }
            }
            Ok(Arg::List(items))
        } else {
            self.string().map(Arg::Str)
        }
    }
}

fn safe(name: &str, cur: &Cursor<'_>) -> Result<(), TemplateError> {
    match identifier_problem(name) {
        None => Ok(()),
        Some(p) => Err(cur.error(format!("{name:?}: {p}"))),
    }
}

fn render_call(
    inner: &str,
    base: usize,
    vars: &BTreeMap<String, String>,
    config: &mut Vec<(String, ConfigValue)>,
) -> Result<String, TemplateError> {
    let mut cur = Cursor {
        s: inner.as_bytes(),
        pos: 0,
        base,
    };
    let func = cur.name()?;
    if !cur.eat(b'(') {
        return Err(cur.error("expected '(' after the function name"));
    }
    let mut positional: Vec<Arg> = Vec::new();
    let mut keyword: Vec<(String, Arg)> = Vec::new();
    if !cur.eat(b')') {
        loop {
            cur.skip_ws();
            if cur
                .peek()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
            {
                let k = cur.name()?;
                if !cur.eat(b'=') {
                    return Err(cur.error("expected '=' after a keyword"));
                }
                keyword.push((k, cur.value()?));
            } else {
                if !keyword.is_empty() {
                    return Err(cur.error("positional argument after keyword argument"));
                }
                positional.push(cur.value()?);
            }
            if cur.eat(b')') {
                break;
            }
            if !cur.eat(b',') {
                return Err(cur.error("expected ',' or ')'"));
            }
        }
    }
    cur.skip_ws();
    if cur.pos != cur.s.len() {
        return Err(cur.error("unexpected text after the call"));
    }
    let strs = |args: &[Arg]| -> Option<Vec<String>> {
        args.iter()
            .map(|a| match a {
                Arg::Str(s) => Some(s.clone()),
                Arg::List(_) => None,
            })
            .collect()
    };
    match func.as_str() {
        "config" => {
            if !positional.is_empty() {
                return Err(cur.error("config() takes keyword arguments only"));
            }
            for (k, v) in keyword {
                let v = match v {
                    Arg::Str(s) => ConfigValue::Str(s),
                    Arg::List(l) => ConfigValue::List(l),
                };
                config.push((k, v));
            }
            Ok(String::new())
        }
        "source" => match (strs(&positional).as_deref(), keyword.is_empty()) {
            (Some([s, t]), true) => {
                safe(s, &cur)?;
                safe(t, &cur)?;
                Ok(format!("\"{s}\".\"{t}\""))
            }
            _ => Err(cur.error("source() takes two string arguments")),
        },
        "ref" => match (strs(&positional).as_deref(), keyword.is_empty()) {
            (Some([m]), true) => {
                safe(m, &cur)?;
                Ok(format!("\"{m}\""))
            }
            _ => Err(cur.error("ref() takes one string argument")),
        },
        "var" => match (strs(&positional).as_deref(), keyword.is_empty()) {
            (Some([name]), true) => vars
                .get(name)
                .cloned()
                .ok_or_else(|| cur.error(format!("var '{name}' has no value"))),
            (Some([name, default]), true) => {
                Ok(vars.get(name).cloned().unwrap_or_else(|| default.clone()))
            }
            _ => Err(cur.error("var() takes a name and an optional default")),
        },
        other => Err(cur.error(format!(
            "function '{other}' is not allowed in generated models"
        ))),
    }
}
