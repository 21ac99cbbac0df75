//! Maps a validation path (`policy_bundle.rules[2].name`) back to the line and
//! column of the node it names, in YAML or JSON text. The tree is built only when a
//! bundle has issues, so the happy path never pays for it.

use std::iter::Peekable;
use std::str::Chars;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One node of a document with where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PosNode {
    pub(crate) position: Position,
    pub(crate) kind: PosKind,
}

/// The shape of a [`PosNode`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PosKind {
    Leaf,
    Seq(Vec<PosNode>),
    Map(Vec<(String, PosNode)>),
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (part.get(..i).unwrap_or(""), part.get(i..).unwrap_or("")),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else { break };
            if let Ok(i) = stripped.get(..end).unwrap_or("").parse::<usize>() {
                out.push(Segment::Index(i));
            }
            rest = stripped.get(end + 1..).unwrap_or("");
        }
    }
    out
}

/// The position of the node named by a bundle validation `path`, or of its deepest
/// existing ancestor (a missing key points at the object that lacks it). The leading
/// `policy_bundle` segment descends into the wrapper only when the document has one.
pub(crate) fn locate_bundle_path(root: &PosNode, path: &str) -> Position {
    let segs = segments(path);
    let mut node = root;
    let mut iter = segs.into_iter().peekable();
    if let Some(Segment::Key("policy_bundle")) = iter.peek() {
        iter.next();
        if let Some(inner) = child_by_key(node, "policy_bundle") {
            node = inner;
        }
    }
    for seg in iter {
        let next = match seg {
            Segment::Key(k) => child_by_key(node, k),
            Segment::Index(i) => match &node.kind {
                PosKind::Seq(items) => items.get(i),
                _ => None,
            },
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node.position
}

fn child_by_key<'a>(node: &'a PosNode, key: &str) -> Option<&'a PosNode> {
    match &node.kind {
        PosKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, n)| n),
        _ => None,
    }
}

/// Builds the position tree of JSON text that `serde_json` already accepted.
pub(crate) fn json_positions(text: &str) -> Option<PosNode> {
    let mut s = Scanner {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    s.skip_ws();
    s.value(0)
}

struct Scanner<'a> {
    chars: Peekable<Chars<'a>>,
    line: usize,
    column: usize,
}

const MAX_DEPTH: usize = 256;

impl Scanner<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.bump();
        }
    }

    fn pos(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn value(&mut self, depth: usize) -> Option<PosNode> {
        if depth > MAX_DEPTH {
            return None;
        }
        let position = self.pos();
        let kind = match self.chars.peek()? {
            '{' => {
                self.bump();
                let mut entries = Vec::new();
                loop {
                    self.skip_ws();
                    match self.chars.peek()? {
                        '}' => {
                            self.bump();
                            break;
                        }
                        ',' => {
                            self.bump();
                        }
                        '"' => {
                            let key = self.string()?;
                            self.skip_ws();
                            if self.bump()? != ':' {
                                return None;
                            }
                            self.skip_ws();
                            let v = self.value(depth + 1)?;
                            entries.push((key, v));
                        }
                        _ => return None,
                    }
                }
                PosKind::Map(entries)
            }
            '[' => {
                self.bump();
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.chars.peek()? {
                        ']' => {
                            self.bump();
                            break;
                        }
                        ',' => {
                            self.bump();
                        }
                        _ => items.push(self.value(depth + 1)?),
                    }
                }
                PosKind::Seq(items)
            }
            '"' => {
                self.string()?;
                PosKind::Leaf
            }
            _ => {
                while self
                    .chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | ']' | '}') && !c.is_ascii_whitespace())
                {
                    self.bump();
                }
                PosKind::Leaf
            }
        };
        Some(PosNode { position, kind })
    }

    /// Reads a JSON string literal and returns its decoded text.
    fn string(&mut self) -> Option<String> {
        let mut raw = String::new();
        raw.push(self.bump()?);
        loop {
            let c = self.bump()?;
            raw.push(c);
            match c {
                '\\' => raw.push(self.bump()?),
                '"' => break,
                _ => {}
            }
        }
        serde_json::from_str::<String>(&raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_resolve() {
        let text =
            "{\n  \"version\": \"v\",\n  \"rules\": [\n    {\"name\": 5, \"a\\u00e9\": 1}\n  ]\n}";
        let tree = json_positions(text).unwrap();
        assert_eq!(
            locate_bundle_path(&tree, "policy_bundle.rules[0].name"),
            Position {
                line: 4,
                column: 14
            }
        );
        // a missing key points at its object
        assert_eq!(
            locate_bundle_path(&tree, "policy_bundle.rules[0].severity"),
            Position { line: 4, column: 5 }
        );
        assert_eq!(
            locate_bundle_path(&tree, "policy_bundle.version"),
            Position {
                line: 2,
                column: 14
            }
        );
    }
}
