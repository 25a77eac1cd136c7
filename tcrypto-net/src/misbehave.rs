//! Test-only Byzantine behaviour of a signer node (feature `test-support`, never in a release build).
//!
//! A `tcrypto-node serve` started with `TCRYPTO_NODE_MISBEHAVE` set rewrites its own answers before they leave, so
//! that multi-process tests run real daemons, over the real transport, that lie in the ways a compromised node
//! would. The variable holds a comma-separated list of modes:
//!
//! - `corrupt-shares`: every signature share (RSA, ECDSA, FROST) is altered in its last octet, so it still decodes
//!   in most cases but is wrong (for RSA shares with a proof, the proof no longer holds);
//! - `replay`: every signature share is answered with the share body this node sent for the previous signature
//!   request (an old answer under the new request id);
//! - `late:MS`: every answer is held back for `MS` milliseconds (past the coordinator's request timeout, the
//!   answer arrives for a request the coordinator has given up on);
//! - `forge-keys`: key listings report every EC key with another public key set of the same group key
//!   (threshold 1, every public share equal to the group key);
//! - `steal-signer`: key listings report every key under the next party's signer id, which this node does not
//!   hold, instead of its own; with `forge-keys` too, every key is listed twice, forged under its own id and true
//!   under the stolen one.
//!
//! The node's real state is untouched: it still refuses what it would refuse, spends what it would spend and audits
//! the request as it arrived.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tcrypto::SignerId;
use tcrypto::dkg::{self, Ed25519, P256};

use crate::wire::{Algorithm, KeyInfo, Response, ResponseBody};

/// The environment variable that turns misbehaviour on.
pub const ENV: &str = "TCRYPTO_NODE_MISBEHAVE";

/// What a misbehaving node does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Modes {
    /// Alter every signature share.
    pub corrupt_shares: bool,
    /// Answer every signature request with the previous share.
    pub replay: bool,
    /// Hold every answer back this long.
    pub late: Option<Duration>,
    /// Report forged public key sets.
    pub forge_keys: bool,
    /// Report keys under another party's signer id.
    pub steal_signer: bool,
}

impl Modes {
    /// Parses the comma-separated list of [`ENV`].
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut modes = Self::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "corrupt-shares" => modes.corrupt_shares = true,
                "replay" => modes.replay = true,
                "forge-keys" => modes.forge_keys = true,
                "steal-signer" => modes.steal_signer = true,
                _ => match word.strip_prefix("late:").map(str::parse::<u64>) {
                    Some(Ok(ms)) => modes.late = Some(Duration::from_millis(ms)),
                    _ => return Err(format!("{ENV}: unknown misbehaviour {word:?}")),
                },
            }
        }
        Ok(modes)
    }
}

struct Active {
    modes: Modes,
    last_share: Mutex<Option<ResponseBody>>,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();

/// Reads [`ENV`] and, when it is set, makes this process misbehave; returns the modes turned on.
pub fn install_from_env() -> Result<Option<Modes>, String> {
    let Ok(text) = std::env::var(ENV) else {
        return Ok(None);
    };
    let modes = Modes::parse(&text)?;
    let _ = ACTIVE.set(Active {
        modes: modes.clone(),
        last_share: Mutex::new(None),
    });
    Ok(Some(modes))
}

/// Rewrites an answer frame as the installed modes say (unchanged when none are installed).
pub(crate) fn apply(frame: Vec<u8>) -> Vec<u8> {
    let Some(active) = ACTIVE.get() else {
        return frame;
    };
    if let Some(delay) = active.modes.late {
        std::thread::sleep(delay);
    }
    let Ok(mut resp) = Response::decode(&frame) else {
        return frame;
    };
    match &mut resp.body {
        ResponseBody::Share { share, .. } => {
            if active.modes.replay {
                let mut last = active.last_share.lock().unwrap_or_else(|e| e.into_inner());
                let current = resp.body.clone();
                if let Some(previous) = last.replace(current) {
                    resp.body = previous;
                }
            } else if active.modes.corrupt_shares
                && let Some(b) = share.last_mut()
            {
                *b ^= 0x01;
            }
        }
        ResponseBody::Keys(infos) if active.modes.forge_keys || active.modes.steal_signer => {
            let mut lies = Vec::with_capacity(infos.len() * 2);
            for info in infos.iter() {
                if active.modes.forge_keys
                    && let Some(public) = other_public_set(info)
                {
                    lies.push(KeyInfo {
                        threshold: 1,
                        public,
                        ..info.clone()
                    });
                }
                if active.modes.steal_signer
                    && let Some(other) = SignerId::new(info.signer.get() % info.parties.max(1) + 1)
                {
                    lies.push(KeyInfo {
                        signer: other,
                        ..info.clone()
                    });
                }
            }
            *infos = lies;
        }
        _ => return frame,
    }
    resp.encode()
}

/// Another public key set of the same group key: threshold 1, every party's public share equal to the group key.
fn other_public_set(info: &KeyInfo) -> Option<Vec<u8>> {
    match info.algorithm {
        Algorithm::EcdsaP256 => {
            let set = dkg::PublicKeySet::<P256>::decode(&info.public).ok()?;
            let ids = set.public_shares().keys().copied().collect();
            Some(
                dkg::PublicKeySet::<P256>::new(1, &ids, vec![set.public_key()])
                    .ok()?
                    .encode(),
            )
        }
        Algorithm::Ed25519 => {
            let set = tcrypto::ed25519::PublicKeySet::decode(&info.public).ok()?;
            let inner = set.as_dkg();
            let ids = inner.public_shares().keys().copied().collect();
            let forged = dkg::PublicKeySet::<Ed25519>::new(1, &ids, vec![inner.public_key()]).ok()?;
            Some(tcrypto::ed25519::PublicKeySet::from_dkg(forged).ok()?.encode())
        }
        Algorithm::Rsa => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_unknown_modes_are_refused() {
        let m = Modes::parse("corrupt-shares, late:250,forge-keys").unwrap();
        assert!(m.corrupt_shares && m.forge_keys && !m.replay && !m.steal_signer);
        assert_eq!(m.late, Some(Duration::from_millis(250)));
        assert!(Modes::parse("replay").unwrap().replay);
        assert!(Modes::parse("late:soon").is_err());
        assert!(Modes::parse("steal-keys").is_err());
    }
}
