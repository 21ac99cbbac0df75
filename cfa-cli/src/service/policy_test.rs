//! Golden policy cases for the long-running faces (`POST /v1/policy/test`): the body is
//! a case document (one case, a list, or `{cases: [...]}`, JSON) run against the active
//! or a named built-in bundle and the face's catalog, the report as in `cfa policy test
//! -f json`. Signatures and catalogs must be written inline: a request never makes the
//! server read a file.

use super::decide::Governance;
use super::error::FaceError;
use cfa::policy::cases::{CaseFormat, CaseResult, CaseSource, SuiteReport, parse_cases, run_case};
use cfa::{Catalog, StateSignature};
use serde_json::Value;

/// Runs the cases of `text` against the named (or active) bundle.
pub fn run_text(gov: &Governance, text: &str, bundle: Option<&str>) -> Result<Value, FaceError> {
    let policy = gov.policy(bundle)?;
    let cases = parse_cases(text, CaseFormat::Json, "request")
        .map_err(|e| FaceError::new("invalid_json", format!("invalid policy test cases: {e}")))?;
    if cases.is_empty() {
        return Err(FaceError::new("invalid_json", "the request holds no case"));
    }
    let mut report = SuiteReport::new(&policy.engine);
    let face_catalog = gov.catalog().map(|c| &c.catalog);
    for case in &cases {
        let signature = match &case.signature {
            CaseSource::Inline(v) => StateSignature::from_validated_value(v, false)
                .map_err(|e| format!("invalid inline signature: {e}")),
            CaseSource::Path(p) => Err(format!(
                "this server reads no files: write the signature inline, not '{p}'"
            )),
        };
        let signature = match signature {
            Ok(s) => s,
            Err(message) => {
                report.push(CaseResult::error(case, message));
                continue;
            }
        };
        let inline;
        let catalog = match &case.catalog {
            None => face_catalog,
            Some(CaseSource::Inline(v)) => match Catalog::from_value(v) {
                Ok(c) => {
                    inline = c;
                    Some(&inline)
                }
                Err(e) => {
                    report.push(CaseResult::error(
                        case,
                        format!("invalid inline catalog: {e}"),
                    ));
                    continue;
                }
            },
            Some(CaseSource::Path(p)) => {
                report.push(CaseResult::error(
                    case,
                    format!("this server reads no files: write the catalog inline, not '{p}'"),
                ));
                continue;
            }
        };
        report.push(run_case(&policy.engine, case, &signature, catalog));
    }
    Ok(report.to_json())
}
