//! Token signing (as `aws-sdk-dsql` does it) and verification.
//!
//! A DSQL token is `GET https://<host>/?Action=<action>` presigned with SigV4
//! for service `dsql`, without the scheme.
//!
//! - [`sign`]: [`sign_token`], public so that tests can build any token,
//!   including ones DSQL refuses;
//! - [`verify`]: the [`Verifier`] recomputes the signature from the token's
//!   own claims and the configured secret, compares it in constant time, and
//!   refuses with DSQL's hints.
//!
//! Neither the token nor a signature is ever logged, returned in an error, or
//! shown by `Debug`.

mod sign;
#[cfg(test)]
mod tests;
mod verify;

pub use self::sign::{SignError, TokenRequest, sign_token};
pub(crate) use self::verify::{Verified, Verifier};

const SERVICE: &str = "dsql";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
