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

/// Where every node of a YAML or JSON document starts, for pointing validation
/// issues (`datasets[0].name`, `policy_bundle.rules[2].action`) at a line and column.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionMap {
    root: PosNode,
}

impl PositionMap {
    /// The positions of a YAML document that [`crate::yaml::parse_value`] accepts;
    /// `None` for an empty document or text that does not parse.
    pub fn from_yaml(text: &str) -> Option<Self> {
        crate::yaml::parse_positions(text).map(|root| PositionMap { root })
    }

    /// The positions of a JSON document that `serde_json` accepts; `None` otherwise.
    pub fn from_json(text: &str) -> Option<Self> {
        json_positions(text).map(|root| PositionMap { root })
    }

    /// The position of the node at a dotted `path` (`a.b[2].c`), or of its deepest
    /// existing ancestor: a missing key points at the object that lacks it.
    pub fn locate(&self, path: &str) -> Position {
        walk(&self.root, segments(path))
    }

    /// Like [`PositionMap::locate`] for a bundle validation path: the leading
    /// `policy_bundle` segment descends into the wrapper only when the document has one.
    pub fn locate_bundle_path(&self, path: &str) -> Position {
        locate_bundle_path(&self.root, path)
    }
}

/// See [`PositionMap::locate_bundle_path`].
pub(crate) fn locate_bundle_path(root: &PosNode, path: &str) -> Position {
    let mut segs = segments(path);
    let mut node = root;
    if let Some(Segment::Key("policy_bundle")) = segs.first() {
        segs.remove(0);
        if let Some(inner) = child_by_key(node, "policy_bundle") {
            node = inner;
        }
    }
    walk(node, segs)
}

fn walk(mut node: &PosNode, segs: Vec<Segment<'_>>) -> Position {
    for seg in segs {
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
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
                let mut len = 0usize;
                while self
                    .chars
                    .peek()
                    .is_some_and(|c| !matches!(c, ',' | ']' | '}') && !c.is_ascii_whitespace())
                {
                    self.bump();
                    len += 1;
                }
                // A scalar must have some text: `[}` is not JSON, and reading an
                // empty leaf there would loop forever on the same `}`.
                if len == 0 {
                    return None;
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
    fn text_that_is_not_json_gives_no_map_and_terminates() {
        // A closing brace where an array item belongs used to be read as an empty
        // scalar again and again, without end.
        for text in ["[}", "[1, }", "{\"a\": [}]}", "{\"a\": }", "[,}"] {
            assert_eq!(PositionMap::from_json(text), None, "{text}");
        }
        assert!(PositionMap::from_json("[1, {\"a\": [true, null]}]").is_some());
    }

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

    #[test]
    fn generic_paths_in_yaml_and_json() {
        let y = PositionMap::from_yaml("datasets:\n  - name: a\n    size_gb: -1\n").unwrap();
        assert_eq!(
            y.locate("datasets[0].size_gb"),
            Position {
                line: 3,
                column: 14
            }
        );
        assert_eq!(
            y.locate("datasets[0].missing"),
            Position { line: 2, column: 5 }
        );
        assert_eq!(y.locate("datasets[9]"), Position { line: 2, column: 3 });
        let j = PositionMap::from_json("{\"datasets\": {\"nfe\": {\"size_gb\": true}}}").unwrap();
        assert_eq!(
            j.locate("datasets.nfe.size_gb"),
            Position {
                line: 1,
                column: 34
            }
        );
        assert!(PositionMap::from_json("{").is_none());
        assert!(PositionMap::from_yaml("").is_none());
    }
}
