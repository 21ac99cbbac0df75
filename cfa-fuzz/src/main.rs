//! `cfa-fuzz`: runs the targets for a given time and reports inputs and findings.
//!
//! The supervisor starts itself as a worker process and reads its progress lines.
//! Inputs run in deterministic batches (the generator of batch `k` of a target is
//! seeded from the run seed, the target name and `k`), so when the worker dies
//! outright (a stack overflow or an abort, which `catch_unwind` cannot catch) or
//! hangs, the supervisor replays the batch it was in, saving each input before it
//! runs, and the last input saved is the culprit. Panics are caught in the worker,
//! saved and counted; the run goes on.

use cfa_fuzz::corpus::{self, Corpus};
use cfa_fuzz::fnv;
use cfa_fuzz::mutate::{Rng, Seed, havoc, mix, mutate_parsed};
use cfa_fuzz::process::{self, PROCESS_TARGETS, ProcessTarget};
use cfa_fuzz::targets::{Fixtures, TARGETS, Target};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

const HELP: &str = "cfa-fuzz [OPTIONS]

Structure-aware mutation fuzzing of every parser and face (no coverage feedback).

options:
  --seconds N        run for N seconds (default 60)
  --target NAME      only this target (repeatable); see --list
  --seed S           run seed (default: from the clock; printed)
  --crash-dir DIR    where failing inputs go (default target/fuzz/crashes)
  --cfa PATH         the cfa binary for the process targets (default: beside this one)
  --no-process       skip the process targets (mcp, http, cli)
  --list             list the targets
  --replay FILE      run FILE once through --target NAME and report
";

#[derive(Debug, Clone)]
struct Args {
    seconds: f64,
    targets: Vec<String>,
    seed: u64,
    crash_dir: PathBuf,
    cfa: PathBuf,
    no_process: bool,
    list: bool,
    replay: Option<PathBuf>,
    worker: bool,
    /// Worker only: replay one batch `(target, index, size)` saving each input.
    batch: Option<(String, u64, u64)>,
    save_each: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut a = Args {
        seconds: 60.0,
        targets: Vec::new(),
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        crash_dir: corpus::workspace_dir().join("target/fuzz/crashes"),
        cfa: exe.with_file_name("cfa"),
        no_process: false,
        list: false,
        replay: None,
        worker: false,
        batch: None,
        save_each: None,
    };
    let mut it = std::env::args().skip(1);
    let value = |it: &mut dyn Iterator<Item = String>, flag: &str| {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                a.seconds = value(&mut it, "--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?;
            }
            "--target" => a.targets.push(value(&mut it, "--target")?),
            "--seed" => {
                a.seed = value(&mut it, "--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?;
            }
            "--crash-dir" => a.crash_dir = value(&mut it, "--crash-dir")?.into(),
            "--cfa" => a.cfa = value(&mut it, "--cfa")?.into(),
            "--no-process" => a.no_process = true,
            "--list" => a.list = true,
            "--replay" => a.replay = Some(value(&mut it, "--replay")?.into()),
            "--worker" => a.worker = true,
            "--batch" => {
                let v = value(&mut it, "--batch")?;
                let parts: Vec<&str> = v.split(':').collect();
                match parts.as_slice() {
                    [t, k, n] => {
                        let k = k.parse().map_err(|e| format!("--batch: {e}"))?;
                        let n = n.parse().map_err(|e| format!("--batch: {e}"))?;
                        a.batch = Some(((*t).to_owned(), k, n));
                    }
                    _ => return Err("--batch TARGET:INDEX:SIZE".into()),
                }
            }
            "--save-each" => a.save_each = Some(value(&mut it, "--save-each")?.into()),
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n\n{HELP}")),
        }
    }
    // The process targets run `cfa` from their own work directory.
    if let Ok(abs) = std::path::absolute(&a.cfa) {
        a.cfa = abs;
    }
    let known: Vec<&str> = TARGETS
        .iter()
        .map(|t| t.name)
        .chain(PROCESS_TARGETS.iter().map(|(n, _)| *n))
        .collect();
    for t in &a.targets {
        if !known.contains(&t.as_str()) {
            return Err(format!("unknown target {t} (known: {})", known.join(", ")));
        }
    }
    Ok(a)
}

impl Args {
    fn selected(&self, name: &str) -> bool {
        let process = PROCESS_TARGETS.iter().any(|(n, _)| *n == name);
        if self.targets.is_empty() {
            !(process && self.no_process)
        } else {
            self.targets.iter().any(|t| t == name)
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cfa-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    if args.list {
        for t in TARGETS {
            println!("{:<14} {}", t.name, t.about);
        }
        for (n, about) in PROCESS_TARGETS {
            println!("{n:<14} {about} [process]");
        }
        return ExitCode::SUCCESS;
    }
    let r = if args.worker {
        worker(&args)
    } else if let Some(file) = &args.replay {
        replay(&args, file)
    } else {
        supervise(&args)
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cfa-fuzz: {e}");
            ExitCode::from(2)
        }
    }
}

// ------------------------------------------------------------------ worker side

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic)".into());
        let loc = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panicked at {loc}: {msg}")));
    }));
}

/// One target's seeds and donor trees.
struct Pool {
    seeds: Vec<Seed>,
    /// Each seed's JSON tree, when it is JSON.
    parsed: Vec<Option<Value>>,
    donors: Vec<Value>,
}

impl Pool {
    fn new(seeds: Vec<Seed>) -> Self {
        let parsed: Vec<Option<Value>> = seeds
            .iter()
            .map(|s| serde_json::from_slice(&s.bytes).ok())
            .collect();
        let donors = parsed.iter().flatten().cloned().collect();
        Pool {
            seeds,
            parsed,
            donors,
        }
    }

    /// Input `i` of a batch: mostly mutated, sometimes a seed as it is.
    fn input(&self, rng: &mut Rng) -> Vec<u8> {
        let i = rng.below(self.seeds.len());
        let Some(seed) = self.seeds.get(i) else {
            return Vec::new();
        };
        if rng.chance(1, 64) {
            return seed.bytes.clone();
        }
        let parsed = self.parsed.get(i).and_then(Option::as_ref);
        let out = mutate_parsed(rng, seed, parsed, &self.seeds, &self.donors);
        // Stacked duplications can blow a document up to megabytes; most such
        // inputs only cost time, so keep one in eight.
        if out.len() > (512 << 10) && !rng.chance(1, 8) {
            let mut small = seed.bytes.clone();
            havoc(rng, &mut small, &self.seeds);
            return small;
        }
        out
    }
}

fn batch_size(name: &str) -> u64 {
    match name {
        "kernel" => 40,
        "bundle-yaml" | "bundle-json" | "keyword-pack" | "audit-log" | "intent" => 250,
        "mcp" | "http" => 16,
        "cli" => 4,
        _ => 1000,
    }
}

fn batch_rng(seed: u64, name: &str, k: u64) -> Rng {
    Rng::new(mix(&[seed, fnv(name.as_bytes()), k]))
}

enum Runner<'a> {
    InProcess(&'a Target),
    Process(Box<dyn ProcessTarget>),
}

struct Slot<'a> {
    name: &'static str,
    runner: Runner<'a>,
    pool: Pool,
    next_batch: u64,
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn save(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{name}-{:016x}.bin", fnv(data)));
    let _ = std::fs::write(&path, data);
    path
}

fn one_line(s: &str) -> String {
    s.replace('\n', "\\n").chars().take(600).collect()
}

/// Runs one input; `Err` carries the finding's message.
fn run_input(runner: &mut Runner<'_>, fx: &Fixtures, data: &[u8]) -> Result<(), String> {
    match runner {
        Runner::InProcess(t) => {
            LAST_PANIC.with(|p| *p.borrow_mut() = None);
            match catch_unwind(AssertUnwindSafe(|| (t.run)(fx, data))) {
                Ok(r) => r,
                Err(_) => Err(LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "panicked".into())),
            }
        }
        Runner::Process(p) => p.run(data),
    }
}

fn worker(args: &Args) -> Result<ExitCode, String> {
    quiet_panics();
    let corpus = corpus::load()?;
    let fx = Fixtures::new(&corpus)?;
    let work = std::env::temp_dir().join(format!("cfa-fuzz-{}", std::process::id()));
    let mut slots: Vec<Slot<'_>> = Vec::new();
    for t in TARGETS {
        if args.selected(t.name) || args.batch.as_ref().is_some_and(|b| b.0 == t.name) {
            slots.push(Slot {
                name: t.name,
                runner: Runner::InProcess(t),
                pool: Pool::new((t.seeds)(&corpus)),
                next_batch: 0,
            });
        }
    }
    for (name, _) in PROCESS_TARGETS {
        if args.batch.is_none() && args.selected(name)
            || args.batch.as_ref().is_some_and(|b| b.0 == *name)
        {
            if !args.cfa.is_file() {
                return Err(format!(
                    "process target {name} needs the cfa binary at {} (build it, or pass --cfa PATH or --no-process)",
                    args.cfa.display()
                ));
            }
            let p = process::start(name, &args.cfa, &work.join(name), &corpus)?;
            for pid in p.pids() {
                emit(&format!("S {pid}"));
            }
            slots.push(Slot {
                name,
                runner: Runner::Process(p),
                pool: Pool::new(process::seeds(name, &corpus)),
                next_batch: 0,
            });
        }
    }
    if let Some((name, k, n)) = &args.batch {
        // Replay one batch, saving each input before it runs.
        let slot = slots
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or("no such target")?;
        let mut rng = batch_rng(args.seed, name, *k);
        for _ in 0..*n {
            let data = slot.pool.input(&mut rng);
            if let Some(path) = &args.save_each {
                std::fs::write(path, &data).map_err(|e| e.to_string())?;
            }
            let _ = run_input(&mut slot.runner, &fx, &data);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds.max(0.0));
    let slice = Duration::from_millis(250);
    let mut seen: HashMap<String, u32> = HashMap::new();
    'outer: loop {
        for slot in &mut slots {
            if Instant::now() >= deadline {
                break 'outer;
            }
            let end = (Instant::now() + slice).min(deadline);
            while Instant::now() < end {
                let k = slot.next_batch;
                slot.next_batch += 1;
                let n = batch_size(slot.name);
                emit(&format!("B {} {k} {n}", slot.name));
                let mut rng = batch_rng(args.seed, slot.name, k);
                let mut done = 0u64;
                for _ in 0..n {
                    if done.is_multiple_of(16) && Instant::now() >= deadline {
                        break;
                    }
                    done += 1;
                    let data = slot.pool.input(&mut rng);
                    if let Err(msg) = run_input(&mut slot.runner, &fx, &data) {
                        let key = format!("{}|{}", slot.name, msg.lines().next().unwrap_or(""));
                        let count = seen.entry(key).or_insert(0);
                        *count += 1;
                        let evidence = match &slot.runner {
                            Runner::Process(p) => p.evidence().unwrap_or_else(|| data.clone()),
                            Runner::InProcess(_) => data.clone(),
                        };
                        let path = if *count <= 3 {
                            save(&args.crash_dir, slot.name, &evidence)
                                .display()
                                .to_string()
                        } else {
                            "-".to_owned()
                        };
                        emit(&format!("F {} {path} {}", slot.name, one_line(&msg)));
                    }
                }
                emit(&format!("D {} {k} {done}", slot.name));
            }
        }
    }
    for slot in &mut slots {
        if let Runner::Process(p) = &mut slot.runner
            && let Err(msg) = p.finish()
        {
            emit(&format!("F {} - {}", slot.name, one_line(&msg)));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ supervisor side

#[derive(Default)]
struct Tally {
    inputs: u64,
    findings: u64,
}

struct Finding {
    target: String,
    path: String,
    message: String,
}

fn worker_command(args: &Args, seed: u64, seconds: f64) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cfa-fuzz"));
    let mut c = Command::new(exe);
    c.arg("--worker")
        .args(["--seconds", &format!("{seconds:.3}")])
        .args(["--seed", &seed.to_string()])
        .arg("--crash-dir")
        .arg(&args.crash_dir)
        .arg("--cfa")
        .arg(&args.cfa);
    for t in &args.targets {
        c.args(["--target", t]);
    }
    if args.no_process {
        c.arg("--no-process");
    }
    c
}

/// Replays batch `k` of `target` saving each input; returns the saved culprit.
fn isolate(args: &Args, seed: u64, target: &str, k: u64, n: u64) -> Option<PathBuf> {
    let _ = std::fs::create_dir_all(&args.crash_dir);
    let probe = args.crash_dir.join(format!("{target}-replaying.bin"));
    let mut c = worker_command(args, seed, 0.0);
    c.args(["--batch", &format!("{target}:{k}:{n}")])
        .arg("--save-each")
        .arg(&probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().ok()?;
    let start = Instant::now();
    let failed = loop {
        match child.try_wait() {
            Ok(Some(st)) => break !st.success(),
            Ok(None) if start.elapsed() > Duration::from_secs(120) => {
                let _ = child.kill();
                let _ = child.wait();
                break true;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break false,
        }
    };
    if !failed {
        return None;
    }
    let data = std::fs::read(&probe).ok()?;
    let _ = std::fs::remove_file(&probe);
    Some(save(&args.crash_dir, target, &data))
}

fn supervise(args: &Args) -> Result<ExitCode, String> {
    // Fail early, in the supervisor, on a missing corpus.
    let c: Corpus = corpus::load()?;
    eprintln!(
        "cfa-fuzz: seed {} | {:.0} s | corpus {} | crashes -> {}",
        args.seed,
        args.seconds,
        c.root.display(),
        args.crash_dir.display()
    );
    let started = Instant::now();
    let total = Duration::from_secs_f64(args.seconds.max(0.0));
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut restarts = 0u64;
    loop {
        let left = total.saturating_sub(started.elapsed());
        let seed = args.seed.wrapping_add(restarts);
        let mut child = worker_command(args, seed, left.as_secs_f64())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the worker: {e}"))?;
        let stdout = child.stdout.take().ok_or("no worker stdout")?;
        let (tx, rx) = channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut open: Option<(String, u64, u64)> = None;
        let mut pids: Vec<u32> = Vec::new();
        let mut hung = false;
        loop {
            match rx.recv_timeout(Duration::from_secs(90)) {
                Ok(line) => {
                    let mut parts = line.splitn(4, ' ');
                    let tag = parts.next().unwrap_or("");
                    let a = parts.next().unwrap_or("").to_owned();
                    let b = parts.next().unwrap_or("").to_owned();
                    let rest = parts.next().unwrap_or("").to_owned();
                    match tag {
                        "B" => {
                            open = Some((a, b.parse().unwrap_or(0), rest.parse().unwrap_or(0)));
                        }
                        "D" => {
                            tally.entry(a).or_default().inputs += rest.parse().unwrap_or(0);
                            open = None;
                        }
                        "F" => {
                            tally.entry(a.clone()).or_default().findings += 1;
                            if b != "-"
                                || findings.iter().all(|f| f.target != a || f.message != rest)
                            {
                                eprintln!(
                                    "cfa-fuzz: FINDING in {a}: {rest}\n           input: {b}"
                                );
                            }
                            findings.push(Finding {
                                target: a,
                                path: b,
                                message: rest,
                            });
                        }
                        "S" => pids.extend(a.parse::<u32>().ok()),
                        _ => {}
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    hung = true;
                    let _ = child.kill();
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() && !hung {
            break;
        }
        for pid in pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let what = if hung {
            "hung (no progress for 90 s)".to_owned()
        } else {
            format!("died ({status})")
        };
        match open {
            Some((target, k, n)) => {
                let path = isolate(args, seed, &target, k, n).map_or_else(
                    || "(not reproduced)".to_owned(),
                    |p| p.display().to_string(),
                );
                eprintln!(
                    "cfa-fuzz: FINDING in {target}: the worker {what}\n           input: {path}"
                );
                tally.entry(target.clone()).or_default().findings += 1;
                findings.push(Finding {
                    target,
                    path,
                    message: format!("the fuzzer process {what}"),
                });
            }
            None => return Err(format!("the worker {what} outside any batch")),
        }
        restarts += 1;
        if started.elapsed() + Duration::from_secs(1) >= total || restarts > 20 {
            break;
        }
    }
    report(args, &tally, &findings, started.elapsed());
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report(args: &Args, tally: &BTreeMap<String, Tally>, findings: &[Finding], took: Duration) {
    let mut out = String::new();
    let secs = took.as_secs_f64();
    out.push_str(&format!(
        "\ncfa-fuzz: seed {} ran {secs:.1} s\n{:<14} {:>12} {:>10} {:>9}\n",
        args.seed, "target", "inputs", "inputs/s", "findings"
    ));
    let mut sums = [(0u64, 0u64), (0u64, 0u64)];
    let ordered = TARGETS
        .iter()
        .map(|t| (t.name, 0usize))
        .chain(PROCESS_TARGETS.iter().map(|(n, _)| (*n, 1usize)));
    for (name, group) in ordered {
        let Some(t) = tally.get(name) else { continue };
        out.push_str(&format!(
            "{name:<14} {:>12} {:>10.0} {:>9}\n",
            t.inputs,
            t.inputs as f64 / secs.max(1e-9),
            t.findings
        ));
        if let Some(s) = sums.get_mut(group) {
            s.0 += t.inputs;
            s.1 += t.findings;
        }
    }
    out.push_str(&format!(
        "in-process total: {} inputs, {} findings\nprocess total:    {} inputs, {} findings\n",
        sums[0].0, sums[0].1, sums[1].0, sums[1].1
    ));
    if !findings.is_empty() {
        out.push_str("findings (first of each):\n");
        let mut shown: Vec<(&str, &str)> = Vec::new();
        for f in findings {
            if shown.contains(&(f.target.as_str(), f.message.as_str())) {
                continue;
            }
            shown.push((&f.target, &f.message));
            out.push_str(&format!(
                "  [{}] {}\n      {}\n",
                f.target, f.path, f.message
            ));
        }
        out.push_str("reproduce one with: cfa-fuzz --replay <file> --target <name>\n");
    }
    print!("{out}");
}

fn replay(args: &Args, file: &Path) -> Result<ExitCode, String> {
    let [name] = args.targets.as_slice() else {
        return Err("--replay needs exactly one --target".into());
    };
    let data = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    quiet_panics();
    let corpus = corpus::load()?;
    let fx = Fixtures::new(&corpus)?;
    let mut runner = match TARGETS.iter().find(|t| t.name == name) {
        Some(t) => Runner::InProcess(t),
        None => {
            let work = std::env::temp_dir().join(format!("cfa-fuzz-replay-{}", std::process::id()));
            Runner::Process(process::start(name, &args.cfa, &work, &corpus)?)
        }
    };
    // Process evidence holds several inputs, one per line (mcp); others are one input.
    let inputs: Vec<Vec<u8>> = if name == "mcp" {
        data.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
    } else {
        vec![data]
    };
    let mut failed = None;
    for i in &inputs {
        if let Err(e) = run_input(&mut runner, &fx, i) {
            failed = Some(e);
            break;
        }
    }
    if failed.is_none()
        && let Runner::Process(p) = &mut runner
    {
        failed = p.finish().err();
    }
    match failed {
        Some(e) => {
            println!("{name}: FAIL: {e}");
            Ok(ExitCode::FAILURE)
        }
        None => {
            println!(
                "{name}: ok ({} bytes)",
                inputs.iter().map(Vec::len).sum::<usize>()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
