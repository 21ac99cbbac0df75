//! The `execution` and `lifecycle` sections of `cfa.yaml` (CFA additions; the reference
//! has neither): sandbox, failure/retry policy, lease lifetime, runtime thresholds and
//! promotion thresholds. Every key is optional; unknown keys and out-of-range values
//! are errors naming the key. `cfa evaluate` flags beat these values, which beat the
//! reference defaults (docs/compatibility.md#execution-outcomes, docs/compatibility.md#lifecycle).
//!
//! ```yaml
//! execution:
//!   sandbox: postgres            # mock | panic | postgres | none
//!   dsn_env: CFA_PG_DSN          # the DSN is read from this variable, never from the file
//!   partition_start: "2026-01-01"
//!   failure_policy: full_rollback
//!   max_attempts: 3
//!   lease_ttl_secs: 600
//!   thresholds: { max_rows: 1000000, max_null_ratio: 0.05 }
//! lifecycle:
//!   promotion: { min_executions: 5, ifo_threshold: 0.8 }
//! ```

use crate::exec_phase::{FailurePolicyChoice, SandboxChoice};
use crate::input::PlainError;
use cfa::execute::RuntimeThresholds;
use cfa::lifecycle::PromotionPolicy;
use miette::Report;
use serde::Deserialize;

/// Runtime threshold overrides (docs/compatibility.md#execution-outcomes); unset keys keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdSettings {
    /// Largest null ratio per column.
    pub max_null_ratio: Option<f64>,
    /// Shuffle budget, MB.
    pub max_shuffle_mb: Option<f64>,
    /// Minimum output rows (0: off).
    pub min_rows: Option<u64>,
    /// Maximum output rows (0: off).
    pub max_rows: Option<u64>,
    /// Cost ceiling, DBU, when the signature sets none.
    pub max_cost_dbu: Option<f64>,
    /// Columns the output must have.
    pub required_output_columns: Option<Vec<String>>,
    /// Columns the output must not have.
    pub forbidden_output_columns: Option<Vec<String>>,
}

/// The `execution` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutionSettings {
    /// Default sandbox.
    pub sandbox: Option<SandboxChoice>,
    /// Name of the environment variable holding the postgres DSN (the DSN may hold a
    /// password, so the file names the variable, not the secret).
    pub dsn_env: Option<String>,
    /// Value of the `cfa.partition_start` session setting (postgres).
    pub partition_start: Option<String>,
    /// Failure policy.
    pub failure_policy: Option<FailurePolicyChoice>,
    /// Attempts per step, the first included.
    pub max_attempts: Option<u32>,
    /// Lifetime of a target lease, seconds.
    pub lease_ttl_secs: Option<u32>,
    /// Runtime thresholds.
    pub thresholds: ThresholdSettings,
    /// The `spark` sandbox's python and warehouse.
    pub spark: crate::spark_cli::SparkSettings,
}

/// Promotion threshold overrides (docs/compatibility.md#lifecycle).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromotionSettings {
    /// Executions needed before promotion.
    pub min_executions: Option<usize>,
    /// Evaluation window, days.
    pub evaluation_window_days: Option<u32>,
    /// IFo threshold.
    pub ifo_threshold: Option<f64>,
    /// IFs threshold.
    pub ifs_threshold: Option<f64>,
    /// IFg threshold.
    pub ifg_threshold: Option<f64>,
    /// Empty windows before an active skill is deprecated.
    pub inactivity_periods_for_deprecation: Option<u32>,
}

/// The `lifecycle` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleSettings {
    /// Promotion thresholds.
    pub promotion: PromotionSettings,
}

/// Parses section `key` of a config document (absent or null: all defaults); the
/// config itself deserializes these sections through serde with positions.
#[cfg(test)]
pub fn section<T: for<'de> Deserialize<'de> + Default>(
    raw: Option<&serde_json::Value>,
    key: &str,
    file: &str,
) -> Result<T, Report> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| PlainError(format!("{file}: invalid '{key}' section: {e}")).into()),
    }
}

fn ratio(v: Option<f64>, key: &str, file: &str) -> Result<(), Report> {
    match v {
        Some(x) if !(0.0..=1.0).contains(&x) => {
            Err(PlainError(format!("{file}: '{key}' must be between 0 and 1, not {x}")).into())
        }
        _ => Ok(()),
    }
}

fn non_negative(v: Option<f64>, key: &str, file: &str) -> Result<(), Report> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => Err(PlainError(format!(
            "{file}: '{key}' must be a non-negative number, not {x}"
        ))
        .into()),
        _ => Ok(()),
    }
}

fn positive(v: Option<u32>, key: &str, file: &str) -> Result<(), Report> {
    match v {
        Some(0) => Err(PlainError(format!("{file}: '{key}' must be at least 1")).into()),
        _ => Ok(()),
    }
}

impl ThresholdSettings {
    /// Range checks; `origin` names where the values came from in errors.
    pub fn check(&self, origin: &str) -> Result<(), Report> {
        ratio(
            self.max_null_ratio,
            "execution.thresholds.max_null_ratio",
            origin,
        )?;
        non_negative(
            self.max_shuffle_mb,
            "execution.thresholds.max_shuffle_mb",
            origin,
        )?;
        non_negative(
            self.max_cost_dbu,
            "execution.thresholds.max_cost_dbu",
            origin,
        )?;
        if let (Some(min), Some(max)) = (self.min_rows, self.max_rows)
            && max > 0
            && min > max
        {
            return Err(PlainError(format!(
                "{origin}: 'execution.thresholds.min_rows' ({min}) is above 'max_rows' ({max})"
            ))
            .into());
        }
        Ok(())
    }

    /// `self` over `base`: each key set here wins.
    pub fn apply(&self, mut base: RuntimeThresholds) -> RuntimeThresholds {
        if let Some(v) = self.max_null_ratio {
            base.max_null_ratio = v;
        }
        if let Some(v) = self.max_shuffle_mb {
            base.max_shuffle_mb = v;
        }
        if let Some(v) = self.min_rows {
            base.min_rows = v;
        }
        if let Some(v) = self.max_rows {
            base.max_rows = v;
        }
        if let Some(v) = self.max_cost_dbu {
            base.max_cost_dbu = Some(v);
        }
        if let Some(v) = &self.required_output_columns {
            base.required_output_columns.clone_from(v);
        }
        if let Some(v) = &self.forbidden_output_columns {
            base.forbidden_output_columns.clone_from(v);
        }
        base
    }
}

impl ExecutionSettings {
    /// Range checks of the section.
    pub fn check(&self, file: &str) -> Result<(), Report> {
        positive(self.max_attempts, "execution.max_attempts", file)?;
        positive(self.lease_ttl_secs, "execution.lease_ttl_secs", file)?;
        if let Some(var) = &self.dsn_env
            && (var.trim().is_empty() || var.contains('='))
        {
            return Err(PlainError(format!(
                "{file}: 'execution.dsn_env' must name an environment variable, not '{var}'"
            ))
            .into());
        }
        if let Some(date) = &self.partition_start {
            crate::exec_phase::iso_date(date)
                .map_err(|e| PlainError(format!("{file}: 'execution.partition_start': {e}")))?;
        }
        self.thresholds.check(file)
    }
}

impl PromotionSettings {
    /// Range checks of the section.
    pub fn check(&self, file: &str) -> Result<(), Report> {
        ratio(
            self.ifo_threshold,
            "lifecycle.promotion.ifo_threshold",
            file,
        )?;
        ratio(
            self.ifs_threshold,
            "lifecycle.promotion.ifs_threshold",
            file,
        )?;
        ratio(
            self.ifg_threshold,
            "lifecycle.promotion.ifg_threshold",
            file,
        )?;
        positive(
            self.evaluation_window_days,
            "lifecycle.promotion.evaluation_window_days",
            file,
        )?;
        if self.min_executions == Some(0) {
            return Err(PlainError(format!(
                "{file}: 'lifecycle.promotion.min_executions' must be at least 1"
            ))
            .into());
        }
        Ok(())
    }

    /// The promotion policy: these overrides over the reference defaults.
    pub fn policy(&self) -> PromotionPolicy {
        let mut p = PromotionPolicy::default();
        if let Some(v) = self.min_executions {
            p.min_executions = v;
        }
        if let Some(v) = self.evaluation_window_days {
            p.evaluation_window_days = v;
        }
        if let Some(v) = self.ifo_threshold {
            p.ifo_threshold = v;
        }
        if let Some(v) = self.ifs_threshold {
            p.ifs_threshold = v;
        }
        if let Some(v) = self.ifg_threshold {
            p.ifg_threshold = v;
        }
        if let Some(v) = self.inactivity_periods_for_deprecation {
            p.inactivity_periods_for_deprecation = v;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn sections_parse_apply_and_reject_bad_values() {
        let e: ExecutionSettings = section(
            Some(&json!({"sandbox": "postgres", "max_attempts": 2,
                         "thresholds": {"max_rows": 10, "max_null_ratio": 0.5}})),
            "execution",
            "cfa.yaml",
        )
        .unwrap();
        assert_eq!(e.sandbox, Some(SandboxChoice::Postgres));
        e.check("cfa.yaml").unwrap();
        let t = e.thresholds.apply(RuntimeThresholds::default());
        assert_eq!((t.max_rows, t.max_null_ratio, t.min_rows), (10, 0.5, 0));

        let bad = [
            json!({"sandbox": "flink"}),
            json!({"thresholds": {"max_rowz": 1}}),
            json!({"max_attempts": -1}),
        ];
        for v in bad {
            assert!(section::<ExecutionSettings>(Some(&v), "execution", "f").is_err());
        }
        let out_of_range = [
            json!({"max_attempts": 0}),
            json!({"lease_ttl_secs": 0}),
            json!({"thresholds": {"max_null_ratio": 1.5}}),
            json!({"thresholds": {"max_cost_dbu": -1.0}}),
            json!({"thresholds": {"min_rows": 5, "max_rows": 2}}),
            json!({"dsn_env": "host=x"}),
            json!({"partition_start": "2026-13-01"}),
            json!({"partition_start": "yesterday"}),
        ];
        for v in out_of_range {
            let s: ExecutionSettings = section(Some(&v), "execution", "f").unwrap();
            assert!(s.check("f").is_err(), "{v}");
        }

        let l: LifecycleSettings = section(
            Some(&json!({"promotion": {"min_executions": 5, "ifo_threshold": 0.8}})),
            "lifecycle",
            "f",
        )
        .unwrap();
        l.promotion.check("f").unwrap();
        let p = l.promotion.policy();
        assert_eq!((p.min_executions, p.ifo_threshold), (5, 0.8));
        assert_eq!(p.ifs_threshold, PromotionPolicy::default().ifs_threshold);
        let l: LifecycleSettings =
            section(Some(&json!({"promotion": {"ifg_threshold": 2}})), "l", "f").unwrap();
        assert!(l.promotion.check("f").is_err());
    }
}
