//! The Prometheus metrics of `cfa serve` (prometheus-client, OpenMetrics text):
//! decisions by action, replans, blocks by fault code, decision latency, HTTP request
//! latency by route and status, audit events written, the audit chain length and the
//! budgets' spent, reserved and remaining amounts by scope and dimension.
//! Every label value comes from a bounded set: methods and routes are mapped by the
//! caller, and fault codes past the first [`MAX_FAULT_CODES`] distinct ones (or not
//! shaped like a code) count as `other`.

use cfa::{PolicyAction, PolicyResult};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Distinct `fault_code` label values kept; later ones count as `other`.
pub const MAX_FAULT_CODES: usize = 512;

type Labels = Vec<(String, String)>;

/// A request histogram of [`Metrics::http`]'s cache: method, status and the histogram.
type HotHistogram = (&'static str, u16, Histogram);

fn latency_histogram() -> Histogram {
    // 5 µs … ~5 s
    Histogram::new(exponential_buckets(0.000_005, 2.0, 20))
}

/// All metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    approve: Counter,
    replan: Counter,
    block: Counter,
    replans: Counter,
    blocks: Family<Labels, Counter>,
    decision_seconds: Histogram,
    http_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    audit_written: Counter,
    chain_length: Gauge,
    budget_spent: Family<Labels, Gauge<f64, AtomicU64>>,
    budget_reserved: Family<Labels, Gauge<f64, AtomicU64>>,
    budget_remaining: Family<Labels, Gauge<f64, AtomicU64>>,
    fault_codes: Mutex<HashSet<String>>,
    /// The histograms of `http_seconds` already made, by route, then method and status:
    /// the same histograms as the family's (a clone shares its counts), found without
    /// building the family's label vector (six strings) on every request. Bounded like
    /// the labels (routes, methods and statuses come from bounded sets).
    http_hot: RwLock<HashMap<String, Vec<HotHistogram>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let decisions = Family::<Labels, Counter>::default();
        let action = |a: &str| {
            decisions
                .get_or_create(&vec![("action".to_owned(), a.to_owned())])
                .clone()
        };
        let (approve, replan, block) = (action("approve"), action("replan"), action("block"));
        registry.register(
            "cfa_decisions",
            "Policy decisions by action",
            decisions.clone(),
        );
        let replans = Counter::default();
        registry.register(
            "cfa_replans",
            "Decisions that required a replan",
            replans.clone(),
        );
        let blocks = Family::<Labels, Counter>::default();
        registry.register(
            "cfa_blocks",
            "Faults of blocked decisions, by fault code",
            blocks.clone(),
        );
        let decision_seconds = latency_histogram();
        registry.register(
            "cfa_decision_duration_seconds",
            "Time to parse, decide and audit one decision",
            decision_seconds.clone(),
        );
        let http_seconds: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "cfa_http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            http_seconds.clone(),
        );
        let audit_written = Counter::default();
        registry.register(
            "cfa_audit_events_written",
            "Audit events appended by this server",
            audit_written.clone(),
        );
        let chain_length = Gauge::default();
        registry.register(
            "cfa_audit_chain_length",
            "Events in the audit chain",
            chain_length.clone(),
        );
        let budget_gauge = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
            registry.register(name, help, f.clone());
            f
        };
        let budget_spent = budget_gauge(
            &mut registry,
            "cfa_budget_spent",
            "Budget spent in the current window (reconciled runs; DBU, runs, rows), by scope and dimension",
        );
        let budget_reserved = budget_gauge(
            &mut registry,
            "cfa_budget_reserved",
            "Budget held by open reservations in the current window, by scope and dimension",
        );
        let budget_remaining = budget_gauge(
            &mut registry,
            "cfa_budget_remaining",
            "Budget remaining in the current window (capped dimensions only), by scope and dimension",
        );
        Self {
            registry,
            approve,
            replan,
            block,
            replans,
            blocks,
            decision_seconds,
            http_seconds,
            audit_written,
            chain_length,
            budget_spent,
            budget_reserved,
            budget_remaining,
            fault_codes: Mutex::new(HashSet::new()),
            http_hot: RwLock::new(HashMap::new()),
        }
    }

    /// Registers the shadow candidate's counters (`cfa_shadow_decisions_total`,
    /// `cfa_shadow_flips_total{from,to}`) when there is one.
    #[must_use]
    pub fn with_shadow(mut self, shadow: Option<&crate::service::shadow::Shadow>) -> Self {
        if let Some(s) = shadow {
            self.registry.register(
                "cfa_shadow_decisions",
                "Decisions the shadow bundle evaluated beside the enforcing one",
                s.decisions.clone(),
            );
            self.registry.register(
                "cfa_shadow_flips",
                "Decisions where the shadow bundle's action or fault codes differ, by enforcing (from) and shadow (to) action",
                s.flips.clone(),
            );
        }
        self
    }

    /// `code` as a label value: itself when already seen, or new, code-shaped and
    /// within the cap; `other` otherwise.
    fn fault_label(&self, code: &str) -> String {
        let mut seen = self
            .fault_codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.contains(code) {
            return code.to_owned();
        }
        let shaped = !code.is_empty()
            && code.len() <= 128
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if shaped && seen.len() < MAX_FAULT_CODES {
            seen.insert(code.to_owned());
            return code.to_owned();
        }
        "other".to_owned()
    }

    /// Records one decision and how long it took.
    pub fn decision(&self, result: &PolicyResult, elapsed: Duration, audited: bool) {
        match result.action {
            PolicyAction::Approve => {
                self.approve.inc();
            }
            PolicyAction::Replan => {
                self.replan.inc();
                self.replans.inc();
            }
            PolicyAction::Block => {
                self.block.inc();
                for f in &result.faults {
                    self.blocks
                        .get_or_create(&vec![("fault_code".to_owned(), self.fault_label(&f.code))])
                        .inc();
                }
            }
        }
        if audited {
            self.audit_written.inc();
        }
        self.decision_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts `n` audit events written outside [`Metrics::decision`] (the kernel's).
    pub fn audit_events(&self, n: u64) {
        self.audit_written.inc_by(n);
    }

    /// Records one HTTP request (`method` and `route` from bounded sets).
    pub fn http(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        {
            let hot = self.http_hot.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, _, h)) = hot
                .get(route)
                .and_then(|seen| seen.iter().find(|(m, s, _)| *m == method && *s == status))
            {
                h.observe(seconds);
                return;
            }
        }
        let h = self
            .http_seconds
            .get_or_create(&vec![
                ("method".to_owned(), method.to_owned()),
                ("route".to_owned(), route.to_owned()),
                ("status".to_owned(), status.to_string()),
            ])
            .clone();
        h.observe(seconds);
        let mut hot = self
            .http_hot
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = hot.entry(route.to_owned()).or_default();
        if !seen.iter().any(|(m, s, _)| *m == method && *s == status) {
            seen.push((method, status, h));
        }
    }

    /// Sets the budget gauges to `statuses` (budgets no longer there disappear).
    pub fn budgets(&self, statuses: &[cfa_control::budget::BudgetStatus]) {
        use cfa_control::budget::{Dimension, micros_as_dbu};
        self.budget_spent.clear();
        self.budget_reserved.clear();
        self.budget_remaining.clear();
        #[allow(clippy::cast_precision_loss)]
        let value = |d: Dimension, n: u64| match d {
            Dimension::Dbu => micros_as_dbu(n),
            Dimension::Runs | Dimension::Rows => n as f64,
        };
        for st in statuses {
            let remaining = st.remaining();
            for d in Dimension::ALL {
                let Some(_) = st.budget.limits.get(d) else {
                    continue;
                };
                let labels = vec![
                    ("scope".to_owned(), st.budget.scope.to_string()),
                    ("dimension".to_owned(), d.as_str().to_owned()),
                ];
                self.budget_spent
                    .get_or_create(&labels)
                    .set(value(d, st.spent.get(d)));
                self.budget_reserved
                    .get_or_create(&labels)
                    .set(value(d, st.reserved.get(d)));
                self.budget_remaining
                    .get_or_create(&labels)
                    .set(value(d, remaining.get(d).unwrap_or(0)));
            }
        }
    }

    /// The OpenMetrics text, with the chain length set to `chain_length`.
    pub fn render(&self, chain_length: Option<u64>) -> String {
        if let Some(n) = chain_length {
            self.chain_length.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn counters_render() {
        let m = Metrics::new();
        let sig = cfa::StateSignature::from_json_str(
            r#"{"domain":"d","intent":"i","target_layer":"gold","datasets":[{"name":"c","pii_columns":["cpf"]}],
               "constraints":{"no_pii_raw":false}}"#,
        )
        .unwrap();
        let block = cfa::PolicyEngine::default().evaluate(&sig, 0);
        assert_eq!(block.action, PolicyAction::Block);
        m.decision(&block, Duration::from_micros(10), true);
        m.http("POST", "/v1/decisions", 200, Duration::from_micros(50));
        let text = m.render(Some(7));
        assert!(
            text.contains("cfa_decisions_total{action=\"block\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cfa_decisions_total{action=\"approve\"} 0"),
            "{text}"
        );
        assert!(text.contains("cfa_audit_events_written_total 1"), "{text}");
        assert!(text.contains("cfa_audit_chain_length 7"), "{text}");
        let code = &block.faults[0].code;
        assert!(
            text.contains(&format!("cfa_blocks_total{{fault_code=\"{code}\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains("cfa_decision_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("route=\"/v1/decisions\""), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn fault_code_labels_are_bounded() {
        let m = Metrics::new();
        assert_eq!(m.fault_label("A_CODE"), "A_CODE");
        assert_eq!(m.fault_label("not a code"), "other");
        assert_eq!(m.fault_label(&"X".repeat(1024)), "other");
        for i in 0..MAX_FAULT_CODES * 2 {
            m.fault_label(&format!("C{i}"));
        }
        assert_eq!(m.fault_label("A_CODE"), "A_CODE");
        assert_eq!(m.fault_label("BRAND_NEW"), "other");
    }
}
