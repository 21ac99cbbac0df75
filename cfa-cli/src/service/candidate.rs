//! The bundle a face request tests or backtests (`cfa_policy_test`,
//! `cfa_policy_backtest`, `POST /v1/policy/backtest`): a built-in name, a file under the
//! face's allowed roots (MCP only: `cfa serve` has no roots, so it accepts names only),
//! or the bundle's text written in the request. Nothing here decides; it only loads.

use super::decide::Governance;
use super::error::FaceError;
use crate::load::{self, BundleSpec, LoadedPolicy};
use crate::roots::Roots;
use std::sync::Arc;

/// What errors call a bundle sent as text (`bundle_text:LINE:COLUMN: …`).
pub const TEXT_NAME: &str = "bundle_text";

/// The bundle `bundle` names (or whose text `text` is); neither: the active bundle.
/// A path is read only when `roots` is given and it resolves to a file under them.
pub fn load(
    gov: &Governance,
    roots: Option<&Roots>,
    bundle: Option<&str>,
    text: Option<&str>,
) -> Result<Arc<LoadedPolicy>, FaceError> {
    let bundle = bundle.map(str::trim).filter(|b| !b.is_empty());
    match (bundle, text) {
        (Some(_), Some(_)) => Err(FaceError::new(
            "invalid_arguments",
            "give the bundle by name or path, or its text, not both",
        )),
        (None, Some(text)) => load::policy_text(text, TEXT_NAME)
            .map(Arc::new)
            .map_err(|e| FaceError::new("invalid_policy_bundle", e.to_string())),
        (None, None) => gov.policy(None),
        (Some(name), None) => match (load::classify(name), roots) {
            (Ok(BundleSpec::File(_)), Some(roots)) => {
                let path = roots.resolve(name, "unknown_policy_bundle", "policy bundle")?;
                load::policy_file(&path).map(Arc::new).map_err(|e| {
                    FaceError::new(
                        "invalid_policy_bundle",
                        format!("cannot load policy bundle '{name}': {e}"),
                    )
                })
            }
            (Err(message), Some(_)) => Err(FaceError::new("unknown_policy_bundle", message)),
            // Built-in names (cached); without roots, anything else is refused there.
            _ => gov.policy(Some(name)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::decide::BundleAccess;

    fn gov() -> Governance {
        Governance::load(
            None,
            None,
            None,
            cfa::Durability::Never,
            BundleAccess::NamesOnly,
        )
        .unwrap()
    }

    #[test]
    fn names_paths_under_roots_and_text() {
        let g = gov();
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let text = include_str!("../../../examples/policy-tests/lakehouse-core.yaml");
        std::fs::write(dir.path().join("b.yaml"), text).unwrap();
        std::fs::write(outside.path().join("b.yaml"), text).unwrap();
        let roots = Roots::new(&[dir.path().to_path_buf()], 1 << 20).unwrap();
        assert_eq!(
            load(&g, Some(&roots), Some("prod-v1"), None)
                .unwrap()
                .engine
                .version(),
            load(&g, None, Some("prod-v1"), None)
                .unwrap()
                .engine
                .version()
        );
        // A file under the roots is read; outside, or without roots, it is refused.
        let inside = load(&g, Some(&roots), Some("b.yaml"), None);
        let outside_path = outside.path().join("b.yaml").display().to_string();
        let refused = load(&g, Some(&roots), Some(&outside_path), None).unwrap_err();
        assert_eq!(refused.code, "unknown_policy_bundle");
        assert!(refused.message.contains("allowed roots"), "{refused:?}");
        let no_roots = load(&g, None, Some("b.yaml"), None).unwrap_err();
        assert!(no_roots.message.contains("built-in bundle names only"));
        let from_text = load(&g, None, None, Some(text));
        let (inside, from_text) = (inside.unwrap(), from_text.unwrap());
        assert_eq!(inside.hash, from_text.hash);
        assert_eq!(inside.engine.version(), from_text.engine.version());
        assert_eq!(from_text.source, TEXT_NAME);
        let bad = load(&g, None, None, Some("rules: [\n")).unwrap_err();
        assert_eq!(bad.code, "invalid_policy_bundle");
        assert!(bad.message.starts_with("bundle_text:"), "{bad:?}");
        let both = load(&g, None, Some("prod-v1"), Some(text)).unwrap_err();
        assert_eq!(both.code, "invalid_arguments");
        assert_eq!(
            load(&g, None, None, None).unwrap().source,
            g.active().source
        );
    }
}
