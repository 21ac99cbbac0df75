//! The normaliser of a [`PyKernel`](crate::kernel::PyKernel): the rule-based one,
//! remembering its last resolution.
//!
//! A guard decides the same intent text on every call of its function, against its
//! kernel's one catalog; the rule-based normaliser's answer is a pure function of the
//! text, the catalog, the environment, the execution context and the strict-mode
//! settings, and it reads the `intent_id` only to copy it into the signature
//! (docs/python.md#the-governed-flow-kernel). So the last resolution is kept with
//! everything it was made from, and a call with the same inputs gets a copy of it with
//! its own `intent_id`, instead of reading the text and grounding it in the catalog
//! again.
//! The kernel still runs every phase and writes every event of every call: only the
//! normaliser's work is not repeated.

use cfa::resolve::{
    DatasetState, NormalizeError, Normalizer, NormalizerInput, Resolution, RuleBasedNormalizer,
};
use cfa::types::{Catalog, ExecutionContext};
use std::sync::{Arc, Mutex, PoisonError};

/// Intent texts longer than this are resolved every time (the memo holds one text).
const MAX_REMEMBERED_TEXT: usize = 4 * 1024;

/// What one resolution was made from, and the resolution.
struct Remembered {
    /// The address of the catalog it was grounded in. A `RecentResolution` belongs to
    /// one kernel, which always passes its own `config.catalog`, fixed for the kernel's
    /// life (and the memo's): the address names that catalog.
    catalog: usize,
    raw_intent: String,
    environment: Vec<DatasetState>,
    execution_context: ExecutionContext,
    strict: bool,
    min_confidence: u64,
    resolution: Arc<Resolution>,
}

impl Remembered {
    fn matches(&self, input: &NormalizerInput<'_>) -> bool {
        self.catalog == catalog_address(input.catalog)
            && self.raw_intent == input.raw_intent
            && self.strict == input.strict
            && self.min_confidence == input.min_confidence.to_bits()
            && self.execution_context == input.execution_context
            && self.environment.as_slice() == input.environment
    }
}

fn catalog_address(catalog: &Catalog) -> usize {
    std::ptr::from_ref(catalog) as usize
}

/// The rule-based normaliser with its last resolution remembered (see the module).
pub struct RecentResolution {
    inner: RuleBasedNormalizer,
    last: Mutex<Option<Remembered>>,
}

impl RecentResolution {
    /// `inner`, remembering nothing yet.
    pub fn new(inner: RuleBasedNormalizer) -> Self {
        Self {
            inner,
            last: Mutex::new(None),
        }
    }

    /// The remembered resolution when `input` is what it was made from.
    fn recall(&self, input: &NormalizerInput<'_>) -> Option<Arc<Resolution>> {
        // Only ever assigned whole: a poisoned lock still holds a consistent value.
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .filter(|r| r.matches(input))
            .map(|r| Arc::clone(&r.resolution))
    }
}

impl Normalizer for RecentResolution {
    fn normalize(&self, input: &NormalizerInput<'_>) -> Result<Resolution, NormalizeError> {
        if let Some(known) = self.recall(input) {
            let mut resolution = Resolution::clone(&known);
            // the only part of the answer the intent id is read for
            input
                .intent_id
                .clone_into(&mut resolution.signature.intent_id);
            return Ok(resolution);
        }
        let resolution = self.inner.resolve(input);
        if input.raw_intent.len() <= MAX_REMEMBERED_TEXT {
            let remembered = Remembered {
                catalog: catalog_address(input.catalog),
                raw_intent: input.raw_intent.to_owned(),
                environment: input.environment.to_vec(),
                execution_context: input.execution_context.clone(),
                strict: input.strict,
                min_confidence: input.min_confidence.to_bits(),
                resolution: Arc::new(resolution.clone()),
            };
            let old = self
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace(remembered);
            // dropped outside the lock
            drop(old);
        }
        Ok(resolution)
    }
}
