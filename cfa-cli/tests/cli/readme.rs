//! The README's "Using it" sequence, run as written: the block after the
//! `<!-- readme-sequence: ... -->` comment, fenced as ```` ```sh tutorial ````, line by line
//! in order with the debug `cfa` binary, in one fresh empty directory. Each line must exit
//! with the code its comment states (`# exit 3: ...`), 0 when it states none. The only
//! shell features a line may use are quoting and `> file` (stdout to a file in that
//! directory); anything else is refused, so the README cannot drift into lines this test
//! does not really run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The comment that marks the sequence block; the fence must follow it.
const MARKER: &str = "<!-- readme-sequence:";
/// The fence that opens the block.
const FENCE: &str = "```sh tutorial";

/// One line of the sequence, parsed.
#[derive(Debug, PartialEq)]
struct Step {
    /// 1-based line number in the README.
    line: usize,
    /// The line as written.
    text: String,
    /// Arguments after `cfa`.
    args: Vec<String>,
    /// `> file`: where stdout goes.
    stdout_to: Option<String>,
    /// The exit code the README states.
    exit: i32,
}

fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

/// The sequence block of `readme`: exactly one marker, the fence on the next non-blank
/// line, and the lines up to the closing fence.
fn sequence(readme: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = readme.lines().collect();
    let marks: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].trim_start().starts_with(MARKER))
        .collect();
    let [mark] = marks[..] else {
        return Err(format!(
            "README.md must hold exactly one `{MARKER} ... -->` comment, found {}",
            marks.len()
        ));
    };
    let mut i = mark + 1;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    if lines.get(i).map(|l| l.trim()) != Some(FENCE) {
        return Err(format!(
            "README.md line {}: the sequence comment must be followed by {FENCE}",
            mark + 1
        ));
    }
    let mut steps = Vec::new();
    for (j, raw) in lines.iter().enumerate().skip(i + 1) {
        if raw.trim() == "```" {
            if steps.is_empty() {
                return Err("README.md: the sequence block is empty".into());
            }
            return Ok(steps);
        }
        if raw.trim().is_empty() {
            continue;
        }
        steps.push(parse_line(j + 1, raw)?);
    }
    Err("README.md: the sequence block is never closed".into())
}

/// Ends the current word: it is the redirection target after `>`, else an argument.
fn finish(
    cur: &mut Option<String>,
    words: &mut Vec<String>,
    redirect_next: &mut bool,
    stdout_to: &mut Option<String>,
) {
    if let Some(w) = cur.take() {
        if *redirect_next {
            *stdout_to = Some(w);
            *redirect_next = false;
        } else {
            words.push(w);
        }
    }
}

/// Splits one line the way a POSIX shell would for the features we allow: words,
/// '…' and "…" quoting (with `\"` and `\\` inside double quotes), `> file`, and a
/// trailing `# comment`.
fn parse_line(line: usize, text: &str) -> Result<Step, String> {
    let fail = |why: &str| Err(format!("README.md line {line}: {why}: {text}"));
    let mut words: Vec<String> = Vec::new();
    let mut cur: Option<String> = None;
    let mut redirect_next = false;
    let mut stdout_to = None;
    let mut comment = None;
    let mut chars = text.char_indices();
    while let Some((pos, c)) = chars.next() {
        match c {
            ' ' | '\t' => finish(&mut cur, &mut words, &mut redirect_next, &mut stdout_to),
            '#' if cur.is_none() => {
                comment = Some(text[pos + 1..].trim().to_owned());
                break;
            }
            '>' if cur.is_none() => {
                if redirect_next || stdout_to.is_some() {
                    return fail("more than one `>`");
                }
                redirect_next = true;
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => w.push(ch),
                        None => return fail("unclosed '"),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, ch @ ('"' | '\\'))) => w.push(ch),
                            Some((_, ch)) => {
                                w.push('\\');
                                w.push(ch);
                            }
                            None => return fail("unclosed \""),
                        },
                        Some((_, '$' | '`')) => return fail("expansion inside \"…\""),
                        Some((_, ch)) => w.push(ch),
                        None => return fail("unclosed \""),
                    }
                }
            }
            '|' | '&' | ';' | '<' | '>' | '`' | '$' | '(' | ')' | '\\' | '*' | '?' | '~' => {
                return fail(&format!("unsupported shell syntax `{c}`"));
            }
            _ => cur.get_or_insert_with(String::new).push(c),
        }
    }
    finish(&mut cur, &mut words, &mut redirect_next, &mut stdout_to);
    if redirect_next {
        return fail("`>` without a file");
    }
    if words.first().map(String::as_str) != Some("cfa") {
        return fail("a sequence line must start with `cfa `");
    }
    let exit = match comment.as_deref().and_then(|c| c.strip_prefix("exit ")) {
        None => 0,
        Some(rest) => {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse() {
                Ok(n) => n,
                Err(_) => return fail("`# exit` must be followed by a number"),
            }
        }
    };
    Ok(Step {
        line,
        text: text.to_owned(),
        args: words.split_off(1),
        stdout_to,
        exit,
    })
}

/// Runs `steps` in order in `dir`; the first line whose exit code differs from the
/// stated one is the error.
fn run(steps: &[Step], dir: &Path) -> Result<(), String> {
    for step in steps {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cfa"));
        cmd.args(&step.args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        // The sequence must not depend on the caller's environment.
        for var in [
            "CFA_POLICY_BUNDLE",
            "CFA_MCP_API_KEY",
            "CFA_MCP_RATE_LIMIT",
            "CFA_OTEL_ENDPOINT",
            "CFA_PG_DSN",
            "OPENAI_API_KEY",
            "DEEPSEEK_API_KEY",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd
            .output()
            .map_err(|e| format!("README.md line {}: cannot run cfa: {e}", step.line))?;
        if let Some(file) = &step.stdout_to {
            std::fs::write(dir.join(file), &out.stdout)
                .map_err(|e| format!("README.md line {}: cannot write {file}: {e}", step.line))?;
        }
        let code = out.status.code();
        if code != Some(step.exit) {
            return Err(format!(
                "README.md line {}: `{}` exited {code:?}, the README says {}\n--- stdout\n{}\n--- stderr\n{}",
                step.line,
                step.text.trim(),
                step.exit,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            ));
        }
    }
    Ok(())
}

#[test]
fn the_readme_sequence_runs_in_order_in_a_fresh_directory() {
    let readme = std::fs::read_to_string(readme_path()).unwrap();
    let steps = sequence(&readme).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        steps[0].args,
        ["init"],
        "the sequence starts with `cfa init` (it makes the files the other lines use)"
    );
    let dir = tempfile::tempdir().unwrap();
    run(&steps, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    // The lines really ran: their files are there.
    for made in ["cfa.yaml", "catalog.json", "sig.json", "audit.jsonl"] {
        assert!(dir.path().join(made).is_file(), "{made} was not created");
    }
}

#[test]
fn a_missing_or_unmarked_block_is_an_error() {
    assert!(sequence("# README\n\n```sh\ncfa init\n```\n").is_err());
    assert!(sequence("<!-- readme-sequence: x -->\n```sh\ncfa init\n```\n").is_err());
    assert!(sequence("<!-- readme-sequence: x -->\n```sh tutorial\n```\n").is_err());
    assert!(sequence("<!-- readme-sequence: x -->\n```sh tutorial\ncfa init\n").is_err());
    let two = "<!-- readme-sequence: a -->\n```sh tutorial\ncfa init\n```\n\
               <!-- readme-sequence: b -->\n```sh tutorial\ncfa init\n```\n";
    assert!(sequence(two).is_err());
}

#[test]
fn lines_are_split_like_a_shell_and_exit_codes_come_from_the_comment() {
    let s = parse_line(
        7,
        r#"cfa resolve "Join nfe, \"x\"" -c 'my catalog.json' > sig.json   # exit 3: replan"#,
    )
    .unwrap();
    assert_eq!(
        s.args,
        ["resolve", r#"Join nfe, "x""#, "-c", "my catalog.json"]
    );
    assert_eq!(s.stdout_to.as_deref(), Some("sig.json"));
    assert_eq!(s.exit, 3);
    assert_eq!(parse_line(1, "cfa status  # the config").unwrap().exit, 0);
    assert_eq!(parse_line(1, "cfa a#b").unwrap().args, ["a#b"]);
    for bad in [
        "ls -la",
        "cfa init && cfa status",
        "cfa init | head",
        "cfa resolve \"$HOME\"",
        "cfa x > a > b",
        "cfa x >",
        "cfa x # exit soon",
    ] {
        assert!(parse_line(1, bad).is_err(), "{bad}");
    }
}

#[test]
fn a_line_that_exits_otherwise_than_stated_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let ok = parse_line(1, "cfa backend list").unwrap();
    assert!(run(&[ok], dir.path()).is_ok());
    let missing = parse_line(2, "cfa signature validate missing.json").unwrap();
    let err = run(&[missing], dir.path()).unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    let wrong_code = parse_line(3, "cfa backend list   # exit 4").unwrap();
    assert!(run(&[wrong_code], dir.path()).is_err());
}
