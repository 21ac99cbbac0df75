//! Sequential link checking over per-event results, in file order.

use super::VerifyOptions;
use super::check::{Checked, HashState};
use super::reason::BadReason;
use super::report::{BadEvent, VerifyReport};
use crate::merkle::{self, CompactRange};

/// Sequential link checking over per-event results.
pub(crate) struct ChainState {
    allow_legacy: bool,
    count_intent: bool,
    /// The last good event's `event_hash` (the text's bytes, always UTF-8).
    prev: Vec<u8>,
    pub(super) report: VerifyReport,
    merkle: Option<CompactRange>,
    root_at: Option<u64>,
    collect: bool,
    /// The second half of a split file: accept the first event's `previous_hash`
    /// and remember it (with its line and offset) for the join.
    pub(super) open_start: bool,
    pub(super) first_link: Option<(String, u64, u64)>,
    /// A line with content was fed (whitespace before the first one is stripped).
    seen_content: bool,
    /// Whitespace that is an error only if another event follows it.
    pending: Option<BadEvent>,
    /// Second half only: whitespace before its first event, an error only if the
    /// first half has events (decided when the halves are joined).
    pub(super) lead_ws: Option<BadEvent>,
    pub(super) lead_pending: Option<BadEvent>,
    /// The last line with content ended in a line break (a torn line does not).
    last_terminated: bool,
}

impl ChainState {
    pub(crate) fn new(opts: &VerifyOptions) -> Self {
        let (prev, tree) = match &opts.start {
            Some(s) => (s.previous_hash.clone().into_bytes(), s.tree.clone()),
            None => (Vec::new(), CompactRange::new()),
        };
        let merkle = (opts.merkle || opts.collect_leaves || opts.root_at.is_some()).then_some(tree);
        let mut st = Self {
            allow_legacy: opts.allow_legacy,
            count_intent: opts.intent_id.is_some(),
            prev,
            report: VerifyReport {
                intent_events: opts.intent_id.as_ref().map(|_| 0),
                ..VerifyReport::default()
            },
            merkle,
            root_at: opts.root_at,
            collect: opts.collect_leaves,
            open_start: false,
            first_link: None,
            seen_content: false,
            pending: None,
            lead_ws: None,
            lead_pending: None,
            last_terminated: false,
        };
        st.snapshot();
        st
    }

    pub(crate) fn broken(&self) -> bool {
        self.report.first_bad.is_some()
    }

    /// Counts an event that is not checked because the chain is already broken.
    pub(crate) fn skip(&mut self) {
        self.report.events += 1;
    }

    fn snapshot(&mut self) {
        if let (Some(tree), Some(at)) = (&self.merkle, self.root_at)
            && tree.size() == at
        {
            self.report.root_at = Some(tree.root());
        }
    }

    pub(crate) fn feed(&mut self, line: u64, offset: u64, result: Result<Checked<'_>, BadReason>) {
        let index = self.report.events;
        self.report.events += 1;
        if self.broken() {
            return;
        }
        let bad = |reason| {
            Some(BadEvent {
                index,
                line,
                offset,
                reason,
            })
        };
        let c = match result {
            Ok(c) => c,
            Err(reason) => {
                self.report.first_bad = bad(reason);
                return;
            }
        };
        if self.open_start && index == 0 {
            self.first_link = Some((text(&c.previous_hash), line, offset));
            self.prev.clear();
            self.prev.extend_from_slice(&c.previous_hash);
        }
        if *c.previous_hash != *self.prev {
            self.report.first_bad = bad(BadReason::LinkBroken {
                expected: text(&self.prev),
                found: text(&c.previous_hash),
            });
            return;
        }
        match c.hash {
            HashState::Full => {}
            HashState::Legacy if self.allow_legacy => self.report.legacy_events += 1,
            HashState::Legacy => {
                self.report.first_bad = bad(BadReason::LegacyHash {
                    stored: text(&c.event_hash),
                });
                return;
            }
            HashState::Mismatch(computed) => {
                self.report.first_bad = bad(BadReason::HashMismatch {
                    stored: text(&c.event_hash),
                    computed,
                });
                return;
            }
        }
        if self.count_intent
            && c.intent
            && let Some(n) = self.report.intent_events.as_mut()
        {
            *n += 1;
        }
        if let Some(m) = c.mismatch {
            self.report.first_bad = bad(m.into());
            return;
        }
        self.prev.clear();
        self.prev.extend_from_slice(&c.event_hash);
        if let Some(tree) = self.merkle.as_mut() {
            let leaf = merkle::event_leaf(&String::from_utf8_lossy(&c.event_hash));
            tree.push(leaf);
            if self.collect {
                self.report.leaves.push(leaf);
            }
        }
        self.snapshot();
    }

    /// A non-empty line of only whitespace.
    fn feed_space_only(&mut self, line: u64, offset: u64) {
        if self.broken() {
            return;
        }
        let bad = BadEvent {
            index: self.report.events,
            line,
            offset,
            reason: BadReason::Whitespace {
                message: "a line of only whitespace between events (only empty lines may \
                          separate events)"
                    .to_owned(),
            },
        };
        if self.seen_content {
            self.pending.get_or_insert(bad);
        } else if self.open_start {
            self.lead_ws.get_or_insert(bad);
        }
    }

    /// A line with content; `bad_lead`/`bad_trail` name padding `json.loads` refuses.
    fn feed_content(
        &mut self,
        line: u64,
        offset: u64,
        result: Result<Checked<'_>, BadReason>,
        bad_lead: Option<String>,
        bad_trail: Option<String>,
        terminated: bool,
    ) {
        let index = self.report.events;
        self.last_terminated = terminated;
        let padding = |what: &str, c: &str| BadEvent {
            index,
            line,
            offset,
            reason: BadReason::Whitespace {
                message: format!(
                    "{c} {what} the event; only spaces and tabs may pad an event that is \
                     neither the first nor the last"
                ),
            },
        };
        if !self.broken()
            && let Some(p) = self.pending.take()
        {
            self.report.first_bad = Some(p);
        }
        if !self.broken() {
            if !self.seen_content && self.open_start {
                self.lead_pending = self
                    .lead_ws
                    .take()
                    .or_else(|| bad_lead.as_deref().map(|c| padding("before", c)));
            } else if self.seen_content
                && let Some(c) = bad_lead.as_deref()
            {
                self.report.first_bad = Some(padding("before", c));
            }
        }
        self.seen_content = true;
        self.feed(line, offset, result);
        if !self.broken()
            && let Some(c) = bad_trail.as_deref()
        {
            self.pending = Some(padding("after", c));
        }
    }

    pub(crate) fn finish(self, detect_torn: bool) -> VerifyReport {
        self.finish_at(detect_torn, true)
    }

    /// `at_eof`: nothing follows (else pending whitespace becomes the first bad event).
    pub(crate) fn finish_at(mut self, detect_torn: bool, at_eof: bool) -> VerifyReport {
        if !at_eof
            && !self.broken()
            && let Some(p) = self.pending.take()
        {
            self.report.first_bad = Some(p);
        }
        // An unparsable LAST line without a line break is a torn tail (a crash
        // during append); a complete line that is not JSON is just unparsable.
        if detect_torn
            && !self.last_terminated
            && let Some(bad) = self.report.first_bad.as_mut()
            && bad.index + 1 == self.report.events
            && matches!(bad.reason, BadReason::Unparsable { .. })
        {
            bad.reason = BadReason::TornTail { offset: bad.offset };
        }
        self.report.tail_hash = text(&self.prev);
        self.report.tree = self.merkle;
        self.report
    }
}

/// A hash's text from its bytes (always UTF-8 here, see [`Checked`]).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) enum LineKind<'a> {
    SpaceOnly,
    Content {
        result: Result<Checked<'a>, BadReason>,
        bad_lead: Option<String>,
        bad_trail: Option<String>,
        terminated: bool,
    },
}

pub(super) struct LineCheck<'a> {
    pub(super) line: u64,
    pub(super) offset: u64,
    pub(super) kind: LineKind<'a>,
}

impl ChainState {
    pub(super) fn feed_check(&mut self, line: u64, lc: LineCheck<'_>) {
        match lc.kind {
            LineKind::SpaceOnly => self.feed_space_only(line, lc.offset),
            LineKind::Content {
                result,
                bad_lead,
                bad_trail,
                terminated,
            } => self.feed_content(line, lc.offset, result, bad_lead, bad_trail, terminated),
        }
    }
}
