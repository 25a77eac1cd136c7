//! The module's one error type and its mapping to `CK_RV` (PKCS#11 v3.0 §5.1).
//!
//! Every fallible function of the safe core returns [`Error`]; the C ABI turns it into a return value with
//! [`Error::rv`]. The mapping is a single exhaustive `match`, so a new variant cannot be forgotten.

use cryptoki_sys::*;

use crate::backend::BackendError;

/// Why a PKCS#11 call failed. Variants name who is at fault: the caller (misuse), the token state, the
/// object store, the key backend (cluster), or this module itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A function other than `C_Initialize`/`C_GetFunctionList` was called before `C_Initialize`.
    #[error("the library is not initialized")]
    NotInitialized,
    /// `C_Initialize` was called twice in one process.
    #[error("the library is already initialized")]
    AlreadyInitialized,
    /// A NULL pointer or an inconsistent argument combination.
    #[error("bad arguments: {0}")]
    ArgumentsBad(&'static str),
    /// The configuration could not be read or is invalid; the message says why.
    #[error("configuration error: {0}")]
    Config(String),
    /// No slot with that id.
    #[error("no such slot")]
    SlotIdInvalid,
    /// The token in the slot has not been initialized with `C_InitToken`.
    #[error("the token is not initialized")]
    TokenNotInitialized,
    /// `C_WaitForSlotEvent` with `CKF_DONT_BLOCK`: no slot event (the module's tokens are never inserted or
    /// removed).
    #[error("no slot event")]
    NoEvent,
    /// No open session with that handle.
    #[error("no such session")]
    SessionHandleInvalid,
    /// `CKF_SERIAL_SESSION` was not set in `C_OpenSession`.
    #[error("sessions must be serial")]
    SessionParallelNotSupported,
    /// `C_InitToken` while sessions are open on the token.
    #[error("sessions are open on the token")]
    SessionExists,
    /// A write was attempted in a read-only session.
    #[error("the session is read-only")]
    SessionReadOnly,
    /// SO login while read-only sessions exist.
    #[error("a read-only session exists")]
    SessionReadOnlyExists,
    /// Read-only session opened while the SO is logged in.
    #[error("the security officer is logged in")]
    SessionReadWriteSoExists,
    /// No object with that handle is visible to the session.
    #[error("no such object")]
    ObjectHandleInvalid,
    /// The key handle does not name a usable key.
    #[error("no such key")]
    KeyHandleInvalid,
    /// The key type does not fit the mechanism.
    #[error("key type inconsistent with the mechanism")]
    KeyTypeInconsistent,
    /// The key's attributes do not allow this use (for instance `CKA_SIGN` false).
    #[error("the key does not permit this function")]
    KeyFunctionNotPermitted,
    /// Requested key size outside the mechanism's range.
    #[error("key size out of range")]
    KeySizeRange,
    /// Unknown or unsupported mechanism.
    #[error("mechanism not supported")]
    MechanismInvalid,
    /// Mechanism parameters missing or malformed.
    #[error("mechanism parameter invalid: {0}")]
    MechanismParamInvalid(&'static str),
    /// Named curve not supported.
    #[error("curve not supported")]
    CurveNotSupported,
    /// An operation of that kind is already active in the session.
    #[error("an operation is already active")]
    OperationActive,
    /// No operation of that kind is active in the session.
    #[error("no operation is active")]
    OperationNotInitialized,
    /// The output buffer is too small; `needed` bytes (or items) are required.
    #[error("buffer too small, {needed} needed")]
    BufferTooSmall {
        /// The size the caller must provide.
        needed: usize,
    },
    /// The function needs a logged-in user.
    #[error("user not logged in")]
    UserNotLoggedIn,
    /// `C_Login` for the user type already logged in.
    #[error("user already logged in")]
    UserAlreadyLoggedIn,
    /// `C_Login` while the other user type is logged in.
    #[error("another user type is already logged in")]
    UserAnotherAlreadyLoggedIn,
    /// Unknown user type in `C_Login`.
    #[error("invalid user type")]
    UserTypeInvalid,
    /// User login before `C_InitPIN`.
    #[error("user PIN not initialized")]
    UserPinNotInitialized,
    /// Wrong PIN.
    #[error("incorrect PIN")]
    PinIncorrect,
    /// Too many wrong PINs: this PIN is locked (the SO unlocks the user PIN with `C_InitPIN`).
    #[error("PIN locked after too many wrong PINs")]
    PinLocked,
    /// PIN length outside the token's range.
    #[error("PIN length out of range")]
    PinLenRange,
    /// Attribute type unknown for the object.
    #[error("attribute type invalid")]
    AttributeTypeInvalid,
    /// Attribute value malformed.
    #[error("attribute value invalid: {0}")]
    AttributeValueInvalid(&'static str),
    /// Attribute cannot be changed.
    #[error("attribute read-only")]
    AttributeReadOnly,
    /// Attribute value may not be revealed.
    #[error("attribute sensitive")]
    AttributeSensitive,
    /// The object's `CKA_MODIFIABLE`/`CKA_COPYABLE`/`CKA_DESTROYABLE` forbids the action.
    #[error("action prohibited")]
    ActionProhibited,
    /// Required attributes are missing.
    #[error("template incomplete: {0}")]
    TemplateIncomplete(&'static str),
    /// Attributes contradict each other or the mechanism.
    #[error("template inconsistent: {0}")]
    TemplateInconsistent(&'static str),
    /// Input data has the wrong length.
    #[error("data length out of range")]
    DataLenRange,
    /// Input data is malformed for the mechanism.
    #[error("data invalid")]
    DataInvalid,
    /// The signature does not verify.
    #[error("signature invalid")]
    SignatureInvalid,
    /// The signature has the wrong length.
    #[error("signature length out of range")]
    SignatureLenRange,
    /// The module does not implement the function.
    #[error("function not supported")]
    FunctionNotSupported,
    /// Legacy parallel-function calls (`C_GetFunctionStatus`, `C_CancelFunction`).
    #[error("function not parallel")]
    FunctionNotParallel,
    /// `C_UnwrapKey`: the unwrapping key handle names no key the session can see.
    #[error("unwrapping key handle invalid")]
    UnwrappingKeyHandleInvalid,
    /// `C_UnwrapKey`: the unwrapping key is not an AES key.
    #[error("unwrapping key is not an AES key")]
    UnwrappingKeyTypeInconsistent,
    /// `C_UnwrapKey`: the wrapped data fails its integrity check or is not a PKCS#8 RSA, P-256 or Ed25519 key.
    #[error("wrapped key invalid: {0}")]
    WrappedKeyInvalid(&'static str),
    /// `C_UnwrapKey`: the wrapped data has a length the mechanism cannot have produced.
    #[error("wrapped key length out of range")]
    WrappedKeyLenRange,
    /// `C_SeedRandom`: the OS CSPRNG takes no seed from callers.
    #[error("random seeding not supported")]
    RandomSeedNotSupported,
    /// The object store (SQLite) failed.
    #[error("object store: {0}")]
    Store(#[from] rusqlite::Error),
    /// The key backend (the cluster) failed or refused.
    #[error("key backend: {0}")]
    Backend(#[from] BackendError),
    /// `C_DestroyObject` removed the object, but these nodes did not answer the deletion of their key shares:
    /// the shares are recorded as pending deletions in the store and deleted when the nodes answer again.
    #[error("object destroyed, but the key shares on {} are pending deletion (nodes unreachable)", nodes.join(", "))]
    SharesPendingDeletion {
        /// Names of the nodes still holding a share.
        nodes: Vec<String>,
    },
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
    /// A bug in this module (an invariant did not hold), or a caught panic.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The PKCS#11 return value for this error.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::ArgumentsBad(_) => CKR_ARGUMENTS_BAD,
            Error::Config(_) => CKR_GENERAL_ERROR,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TokenNotInitialized => CKR_TOKEN_NOT_RECOGNIZED,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::SessionExists => CKR_SESSION_EXISTS,
            Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
            Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
            Error::NoEvent => CKR_NO_EVENT,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid(_) => CKR_MECHANISM_PARAM_INVALID,
            Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::BufferTooSmall { .. } => CKR_BUFFER_TOO_SMALL,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
            Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            Error::PinIncorrect => CKR_PIN_INCORRECT,
            Error::PinLocked => CKR_PIN_LOCKED,
            Error::PinLenRange => CKR_PIN_LEN_RANGE,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeValueInvalid(_) => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::ActionProhibited => CKR_ACTION_PROHIBITED,
            Error::TemplateIncomplete(_) => CKR_TEMPLATE_INCOMPLETE,
            Error::TemplateInconsistent(_) => CKR_TEMPLATE_INCONSISTENT,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
            Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
            Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            Error::UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            Error::WrappedKeyInvalid(_) => CKR_WRAPPED_KEY_INVALID,
            Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            Error::Store(_) => CKR_DEVICE_ERROR,
            Error::Backend(e) => e.rv(),
            Error::SharesPendingDeletion { .. } => CKR_DEVICE_ERROR,
            Error::Random => CKR_DEVICE_ERROR,
            Error::Internal(_) => CKR_GENERAL_ERROR,
        }
    }
}

/// Result of the safe core.
pub type Result<T, E = Error> = core::result::Result<T, E>;
