//! DKG round 4 (local, no message): accept the result only if nobody complained and everybody confirmed the same
//! transcript, then check our share against the public result.
//!
//! The result check every party performs: the group key `Y = Σ_j φ_j0` and every public share `Y_l = Σ_j
//! f_j(l)·G` (computed from the summed Feldman commitments) are not the identity, and `x_i·G == Y_i`.

use std::collections::{BTreeMap, BTreeSet};

use super::{Complaint, Curve, Error, Fault, KeyShare, PublicKeySet, round3};
use crate::id::SignerId;

/// Finishes the run with every other participant's round-3 broadcast (keyed by sender).
///
/// On any complaint (ours or anybody's) or a differing confirmation, fails with [`Error::Complaints`] naming the
/// accused; the run should be repeated without them.
pub fn finish<C: Curve>(
    state: round3::State<C>,
    broadcasts: &BTreeMap<SignerId, round3::Broadcast<C>>,
) -> Result<KeyShare<C>, Error> {
    state.params.check_senders(state.me, broadcasts)?;
    let mut complaints = gather_complaints(&state, broadcasts);
    if complaints.is_empty() {
        complaints = transcript_mismatches(&state, broadcasts);
    }
    if !complaints.is_empty() {
        return Err(complaints_error(complaints));
    }
    let public = PublicKeySet::from_commitments(
        state.params.threshold,
        &state.params.participants,
        state.group_commitments.clone(),
    )
    .map_err(Error::InvalidResult)?;
    KeyShare::new(state.me, *state.secret, public).map_err(Error::InvalidResult)
}

/// Every complaint of the run: ours, and those in the others' round-3 broadcasts (accusing oneself or a
/// non-participant is itself malformed and blames the accuser).
pub(super) fn gather_complaints<C: Curve>(
    state: &round3::State<C>,
    broadcasts: &BTreeMap<SignerId, round3::Broadcast<C>>,
) -> Vec<Complaint> {
    let mut complaints = state.complaints();
    for (&accuser, b) in broadcasts {
        for (&accused, &fault) in &b.complaints {
            if state.params.participants.contains(&accused) && accused != accuser {
                complaints.push(Complaint {
                    accuser,
                    accused,
                    fault,
                });
            } else {
                // Accusing a non-participant or oneself is itself malformed.
                complaints.push(Complaint {
                    accuser: state.me,
                    accused: accuser,
                    fault: Fault::Malformed,
                });
            }
        }
    }
    complaints
}

/// A complaint against every party that confirmed another transcript than ours.
pub(super) fn transcript_mismatches<C: Curve>(
    state: &round3::State<C>,
    broadcasts: &BTreeMap<SignerId, round3::Broadcast<C>>,
) -> Vec<Complaint> {
    broadcasts
        .iter()
        .filter(|(_, b)| b.confirmation != state.confirmation)
        .map(|(&sender, _)| Complaint {
            accuser: state.me,
            accused: sender,
            fault: Fault::InconsistentTranscript,
        })
        .collect()
}

/// [`Error::Complaints`] naming every accused party.
pub(super) fn complaints_error(mut complaints: Vec<Complaint>) -> Error {
    let culprits: BTreeSet<SignerId> = complaints.iter().map(|c| c.accused).collect();
    complaints.sort();
    complaints.dedup();
    Error::Complaints { culprits, complaints }
}
