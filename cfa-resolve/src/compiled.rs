//! Keyword packs compiled into phrases and pooled, ready for matching.

use crate::pack::KeywordPack;
use crate::words::{Phrase, Words};
use cfa_types::TargetLayer;

/// Labels with their phrases, in priority order.
type Labelled = Vec<(String, Vec<Phrase>)>;

/// One or more packs, compiled and pooled.
#[derive(Debug, Clone, Default)]
pub struct CompiledPacks {
    /// (layer, phrases) in the order gold, silver, bronze.
    pub layers: Vec<(TargetLayer, Vec<Phrase>)>,
    pub intents: Labelled,
    pub domains: Labelled,
    pub anonymize: Vec<Phrase>,
    pub time_scope: Vec<Phrase>,
    pub no_merge: Vec<Phrase>,
    pub budget: Vec<Phrase>,
    pub cost_unit: Vec<Phrase>,
}

fn compile_all(out: &mut Vec<Phrase>, keywords: &[String]) {
    for k in keywords {
        if let Some(p) = Phrase::compile(k)
            && !out.contains(&p)
        {
            out.push(p);
        }
    }
}

fn pool(out: &mut Labelled, label: &str, keywords: &[String]) {
    let idx = match out.iter().position(|(l, _)| l == label) {
        Some(i) => i,
        None => {
            out.push((label.to_owned(), Vec::new()));
            out.len() - 1
        }
    };
    if let Some((_, phrases)) = out.get_mut(idx) {
        compile_all(phrases, keywords);
    }
}

impl CompiledPacks {
    /// Compiles and pools `packs` in order.
    pub fn new(packs: &[KeywordPack]) -> Self {
        let mut c = CompiledPacks {
            layers: vec![
                (TargetLayer::Gold, Vec::new()),
                (TargetLayer::Silver, Vec::new()),
                (TargetLayer::Bronze, Vec::new()),
            ],
            ..CompiledPacks::default()
        };
        for p in packs {
            for (layer, phrases) in &mut c.layers {
                let kws = match layer {
                    TargetLayer::Gold => &p.layers.gold,
                    TargetLayer::Silver => &p.layers.silver,
                    TargetLayer::Bronze => &p.layers.bronze,
                };
                compile_all(phrases, kws);
            }
            for (label, kws) in &p.intents {
                pool(&mut c.intents, label, kws);
            }
            for (label, kws) in &p.domains {
                pool(&mut c.domains, label, kws);
            }
            compile_all(&mut c.anonymize, &p.constraints.anonymize);
            compile_all(&mut c.time_scope, &p.constraints.time_scope);
            compile_all(&mut c.no_merge, &p.constraints.no_merge);
            compile_all(&mut c.budget, &p.constraints.budget);
            compile_all(&mut c.cost_unit, &p.constraints.cost_unit);
        }
        c
    }

    /// The first layer (gold, silver, bronze) with a matching keyword.
    pub fn layer(&self, words: &Words) -> Option<TargetLayer> {
        self.layers
            .iter()
            .find(|(_, phrases)| words.any(phrases))
            .map(|(l, _)| *l)
    }

    /// The first label with a matching keyword.
    pub fn first_label<'a>(labelled: &'a Labelled, words: &Words) -> Option<&'a str> {
        labelled
            .iter()
            .find(|(_, phrases)| words.any(phrases))
            .map(|(l, _)| l.as_str())
    }
}
