//! The reports in a real browser (`cargo xtask browser`; ignored otherwise): each page,
//! rendered from a log written by real `cfa evaluate` runs, is loaded by Debian's
//! headless Chromium from a file with every network route closed (the proxy is the
//! closed port 127.0.0.1:9 and no host name resolves). The DOM Chromium built must carry
//! the log's counts (computed here from the JSONL, not by cfa-report) and nothing that
//! could fetch (no `src`, `href`, `url(` or `@import`; the page's Content-Security-Policy
//! forbids every fetch anyway), and the screenshot must not be blank. A listener as the
//! proxy is no test of the page: Chromium's own background requests (its clock check)
//! reach it whatever the page holds. `$CFA_CHROMIUM` names the
//! browser (default `chromium`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::report_cli::{KINDS, cfa, check_counts, expected, fixture};
use std::path::Path;
use std::process::Command;

fn chromium() -> String {
    std::env::var("CFA_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom` or `--screenshot=…`);
/// every request would go to the closed port 9 and no name resolves.
fn browse(page: &Path, profile: &Path, mode: &str) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1600",
            "--hide-scrollbars",
        ])
        .arg("--proxy-server=127.0.0.1:9")
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}): run `cargo xtask browser`", chromium()));
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The RGBA/RGB pixels of an 8-bit, non-interlaced PNG: (width, height, channels, pixels).
fn decode_png(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut pos = 8;
    let (mut w, mut h, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, non-interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).unwrap();
    let stride = w * channels;
    assert_eq!(raw.len(), h * (stride + 1));
    let mut px = vec![0u8; h * stride];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        for x in 0..stride {
            let cur = raw[y * (stride + 1) + 1 + x];
            let a = if x >= channels {
                px[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 { px[(y - 1) * stride + x] } else { 0 };
            let c = if y > 0 && x >= channels {
                px[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let v = match filter {
                0 => cur,
                1 => cur.wrapping_add(a),
                2 => cur.wrapping_add(b),
                3 => cur.wrapping_add(((u16::from(a) + u16::from(b)) / 2) as u8),
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    let pred = if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    };
                    cur.wrapping_add(pred)
                }
                f => panic!("filter {f}"),
            };
            px[y * stride + x] = v;
        }
    }
    (w, h, channels, px)
}

#[test]
#[ignore = "needs Chromium: cargo xtask browser"]
fn reports_render_in_chromium_with_the_logs_counts_offline() {
    let (dir, log, _db) = fixture();
    let x = expected(&log);
    // The screenshots stay for a look (docs/img/dashboard.png is one of them).
    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || cfa_test_support::workspace_root().join("target"),
            std::path::PathBuf::from,
        )
        .join("report-browser");
    std::fs::create_dir_all(&shots).unwrap();
    for kind in KINDS {
        let page = dir.path().join(format!("{kind}.html"));
        cfa(dir.path())
            .args(["report", kind, "--lifecycle-db", "cfa.db", "-o"])
            .arg(&page)
            .assert()
            .success();
        let profile = dir.path().join(format!("profile-{kind}"));
        let dom = browse(&page, &profile, "--dump-dom");
        assert!(dom.contains("</html>"), "{kind}: no DOM");
        check_counts(kind, &dom, &x);
        for fetcher in [
            "src=", "href=", "url(", "@import", "<script", "<link", "http://", "https://",
        ] {
            assert!(!dom.contains(fetcher), "{kind}: the DOM holds {fetcher}");
        }
        assert!(
            dom.contains("content=\"default-src 'none'"),
            "{kind}: no CSP"
        );
        let png = shots.join(format!("{kind}.png"));
        let _ = std::fs::remove_file(&png);
        browse(&page, &profile, &format!("--screenshot={}", png.display()));
        let (w, h, ch, px) = decode_png(&std::fs::read(&png).unwrap());
        assert_eq!((w, h), (1280, 1600), "{kind}");
        let first = px[..ch].to_vec();
        let differing = px.chunks(ch).filter(|p| *p != first.as_slice()).count();
        let mut colours: Vec<&[u8]> = px.chunks(ch).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(
            differing * 50 > w * h,
            "{kind}: screenshot is (nearly) blank: {differing} of {} pixels differ",
            w * h
        );
        assert!(colours.len() > 16, "{kind}: only {} colours", colours.len());
    }
}
