//! Ed25519 keys, C2SP signed notes and C2SP tlog checkpoints.
//!
//! - verifier key: `<name>+<hex key id>+<base64(0x01 ‖ 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ 32-byte seed)>`
//! - key id: the first 4 bytes of `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)`
//! - signed note: `<text ending in \n>` `\n` then one line per signature:
//!   `— <name> <base64(key id ‖ 64-byte signature)>\n` (U+2014 em dash)
//! - checkpoint text: `<origin>\n<decimal size>\n<base64 root>\n`

use crate::error::NoteError;
use crate::merkle::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const ALG_ED25519: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// The 4-byte key id of an Ed25519 note key.
pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, ALG_ED25519]);
    h.update(public);
    let d: [u8; 32] = h.finalize().into();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(what: &str, name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::new(
            what,
            format!("key name {name:?} must be non-empty, without spaces or '+'"),
        ));
    }
    Ok(())
}

/// Splits `<name>+<hex id>+<base64(0x01 ‖ 32 bytes)>` into its parts.
fn parse_key_parts(what: &str, text: &str) -> Result<(String, [u8; 4], [u8; 32]), NoteError> {
    let text = text.trim();
    // Names and hex ids never contain '+'; base64 may, so split from the left.
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(hexid), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::new(
            what,
            "expected <name>+<hex key id>+<base64 key>",
        ));
    };
    check_name(what, name)?;
    let raw = B64
        .decode(b64)
        .map_err(|e| NoteError::new(what, format!("bad base64 key: {e}")))?;
    let (alg, key) = raw
        .split_first()
        .ok_or_else(|| NoteError::new(what, "empty key"))?;
    if *alg != ALG_ED25519 {
        return Err(NoteError::new(
            what,
            format!("unsupported key type 0x{alg:02x} (want Ed25519 0x01)"),
        ));
    }
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| NoteError::new(what, "an Ed25519 key has 32 bytes"))?;
    let id_bytes =
        hex::decode(hexid).map_err(|e| NoteError::new(what, format!("bad key id: {e}")))?;
    let id: [u8; 4] = id_bytes
        .as_slice()
        .try_into()
        .map_err(|_| NoteError::new(what, "a key id has 4 bytes (8 hex digits)"))?;
    Ok((name.to_owned(), id, key))
}

/// An Ed25519 signing key with its note name.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SignerKey {
    /// A key from a 32-byte seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name("signer key", name)?;
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A fresh key from the OS random source (not on any decision path).
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| NoteError::new("signer key", format!("no OS randomness: {e}")))?;
        Self::from_seed(name, seed)
    }

    /// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::new("signer key", "must start with PRIVATE+KEY+"))?;
        let (name, id, seed) = parse_key_parts("signer key", rest)?;
        let k = Self::from_seed(&name, seed)?;
        if k.verifier().id != id {
            return Err(NoteError::new(
                "signer key",
                "key id does not match the key",
            ));
        }
        Ok(k)
    }

    /// The private key text (keep it secret: file mode 0600).
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(&self.key.to_bytes());
        let v = self.verifier();
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(v.id),
            B64.encode(raw)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey {
            name: self.name.clone(),
            id: key_id(&self.name, key.as_bytes()),
            key,
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Signs arbitrary bytes (plain Ed25519, deterministic): for envelopes beside the
    /// notes, such as a DSSE envelope over an evidence statement.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An Ed25519 verifier key with its note name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `<name>+<hex id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, public) = parse_key_parts("verifier key", text)?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|e| NoteError::new("verifier key", format!("invalid Ed25519 key: {e}")))?;
        if key_id(&name, &public) != id {
            return Err(NoteError::new(
                "verifier key",
                "key id does not match the key",
            ));
        }
        Ok(Self { name, id, key })
    }

    /// The vkey text.
    pub fn to_text(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(raw))
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>+<hex key id>`: how envelopes name the key (the vkey text without the key).
    pub fn key_label(&self) -> String {
        format!("{}+{}", self.name, hex::encode(self.id))
    }

    /// Checks a plain Ed25519 signature of `message` (see [`SignerKey::sign_bytes`]).
    pub fn verify_bytes(&self, message: &[u8], signature: &[u8]) -> Result<(), NoteError> {
        let sig: [u8; 64] = signature
            .try_into()
            .map_err(|_| NoteError::new("signature", "an Ed25519 signature has 64 bytes"))?;
        self.key
            .verify_strict(message, &Signature::from_bytes(&sig))
            .map_err(|_| {
                NoteError::new(
                    "signature",
                    format!("signature by {} does not verify", self.key_label()),
                )
            })
    }
}

/// Signs `text` (non-empty, ending in `\n`) as a C2SP signed note.
pub fn sign_note(text: &str, key: &SignerKey) -> Result<String, NoteError> {
    if text.is_empty() || !text.ends_with('\n') || text.contains("\n\n") {
        return Err(NoteError::new(
            "note",
            "text must be non-empty, end in a newline and contain no blank line",
        ));
    }
    let sig = key.key.sign(text.as_bytes());
    let mut raw = key.verifier().id.to_vec();
    raw.extend_from_slice(&sig.to_bytes());
    Ok(format!("{text}\n{DASH}{} {}\n", key.name, B64.encode(raw)))
}

/// Verifies a signed note against `key` and returns its text.
pub fn open_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::new("signed note", "no blank line before the signatures"))?;
    let text = note.get(..=split).unwrap_or_default();
    let sigs = note.get(split + 2..).unwrap_or_default();
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::new("signed note", "no signature lines"));
    }
    for line in sigs.lines() {
        let rest = line.strip_prefix(DASH).ok_or_else(|| {
            NoteError::new("signed note", format!("malformed signature line {line:?}"))
        })?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| {
            NoteError::new("signed note", format!("malformed signature line {line:?}"))
        })?;
        let raw = B64
            .decode(b64)
            .map_err(|e| NoteError::new("signed note", format!("bad base64 signature: {e}")))?;
        if name != key.name || raw.get(..4) != Some(&key.id[..]) {
            continue;
        }
        let sig: [u8; 64] = raw
            .get(4..)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| NoteError::new("signed note", "an Ed25519 signature has 64 bytes"))?;
        return key
            .key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
            .map(|()| text)
            .map_err(|_| {
                NoteError::new(
                    "signed note",
                    format!(
                        "signature by {} does not verify (the note was altered)",
                        key.name
                    ),
                )
            });
    }
    Err(NoteError::new(
        "signed note",
        format!("no signature by key {}+{}", key.name, hex::encode(key.id)),
    ))
}

/// Signed notes (and proofs) have LF line endings and never contain a CR. A file whose
/// line endings were converted to CRLF (an editor, `git` autocrlf) is read back as the
/// LF text that was signed, so its signature still verifies; a CR anywhere else is an
/// error that says so.
pub fn lf_line_endings<'a>(
    what: &str,
    text: &'a str,
) -> Result<std::borrow::Cow<'a, str>, NoteError> {
    if !text.contains('\r') {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let lf = text.replace("\r\n", "\n");
    if lf.contains('\r') {
        return Err(NoteError::new(
            what,
            "contains a carriage return (\\r) that does not end a line; signed notes use \
             LF line endings",
        ));
    }
    Ok(std::borrow::Cow::Owned(lf))
}

/// A C2SP tlog checkpoint: a log's size and Merkle root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its identity).
    pub origin: String,
    /// Number of events covered.
    pub size: u64,
    /// RFC 6962 root over their hashes.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint note text (extension lines are ignored).
    pub fn parse_text(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        let size = lines.next().unwrap_or_default();
        let root = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::new("checkpoint", "empty origin line"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::new(
                "checkpoint",
                format!("bad tree size {size:?}"),
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|e| NoteError::new("checkpoint", format!("bad tree size: {e}")))?;
        let raw = B64
            .decode(root)
            .map_err(|e| NoteError::new("checkpoint", format!("bad root hash: {e}")))?;
        let root: Hash = raw
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::new("checkpoint", "a root hash has 32 bytes"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Signs the checkpoint as a C2SP signed note.
    pub fn sign(&self, key: &SignerKey) -> Result<String, NoteError> {
        sign_note(&self.to_text(), key)
    }

    /// Verifies a signed checkpoint note and parses it.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Self, NoteError> {
        let note = lf_line_endings("checkpoint", note)?;
        Self::parse_text(open_note(&note, key)?)
    }

    /// Parses a signed checkpoint note WITHOUT checking its signature.
    pub fn parse_unverified(note: &str) -> Result<Self, NoteError> {
        let note = lf_line_endings("checkpoint", note)?;
        let note = note.as_ref();
        let split = note.rfind("\n\n").map_or(note.len(), |i| i + 1);
        Self::parse_text(note.get(..split).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_notes_verify() {
        let k = SignerKey::from_seed("example.com/log", [7u8; 32]).unwrap();
        let k2 = SignerKey::parse(&k.to_text()).unwrap();
        assert_eq!(k2.verifier(), k.verifier());
        let v = VerifierKey::parse(&k.verifier().to_text()).unwrap();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 5,
            root: [9u8; 32],
        };
        let note = cp.sign(&k).unwrap();
        assert!(note.contains("\n\n\u{2014} example.com/log "));
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), cp);
        let tampered = note.replacen("\n5\n", "\n6\n", 1);
        assert!(Checkpoint::open(&tampered, &v).is_err());
        let other = SignerKey::from_seed("example.com/log", [8u8; 32]).unwrap();
        assert!(Checkpoint::open(&note, &other.verifier()).is_err());
    }

    #[test]
    fn plain_signatures_verify_only_unaltered_and_with_the_right_key() {
        let k = SignerKey::from_seed("example.com/log", [7u8; 32]).unwrap();
        let sig = k.sign_bytes(b"DSSEv1 4 type 4 body");
        assert_eq!(sig, k.sign_bytes(b"DSSEv1 4 type 4 body"), "deterministic");
        let v = k.verifier();
        assert!(v.verify_bytes(b"DSSEv1 4 type 4 body", &sig).is_ok());
        assert!(v.verify_bytes(b"DSSEv1 4 type 4 bodY", &sig).is_err());
        assert!(v.verify_bytes(b"DSSEv1 4 type 4 body", &sig[..63]).is_err());
        let other = SignerKey::from_seed("example.com/log", [8u8; 32]).unwrap();
        assert!(
            other
                .verifier()
                .verify_bytes(b"DSSEv1 4 type 4 body", &sig)
                .is_err()
        );
        assert!(v.key_label().starts_with("example.com/log+"));
        assert!(v.to_text().starts_with(&v.key_label()));
    }

    #[test]
    fn keys_whose_base64_contains_plus_parse() {
        for seed in 0..64u8 {
            let k = SignerKey::from_seed("a.example/log", [seed; 32]).unwrap();
            assert_eq!(
                VerifierKey::parse(&k.verifier().to_text()).unwrap(),
                k.verifier()
            );
            assert_eq!(
                SignerKey::parse(&k.to_text()).unwrap().verifier(),
                k.verifier()
            );
        }
    }

    #[test]
    fn known_key_id_vector() {
        // golang.org/x/mod/sumdb/note test key "PeterNeumann".
        let v = VerifierKey::parse(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap();
        assert_eq!(v.name(), "PeterNeumann");
        let note = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert!(open_note(note, &v).is_ok());
    }
}
