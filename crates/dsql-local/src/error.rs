//! Errors of configuration and start-up.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A setting was rejected by [`LocalConfigBuilder::build`](crate::LocalConfigBuilder::build).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint host or region is invalid.
    #[error("invalid endpoint: {0}")]
    Endpoint(#[from] dsql_auth::EndpointError),
    /// The upstream URL cannot be used.
    #[error("invalid upstream URL: {reason}")]
    Upstream {
        /// What is wrong (never the password).
        reason: String,
    },
    /// The public test key ([`DEFAULT_ACCESS_KEY_ID`](crate::DEFAULT_ACCESS_KEY_ID)),
    /// or unknown access keys, would be accepted on an address that is not
    /// loopback: anyone who reaches the port could sign tokens.
    #[error(
        "refusing to listen on {listen} with the public test key (or unknown access keys) \
         accepted: anyone who reaches that address could sign tokens. Configure your own key \
         (LocalConfigBuilder::access_key and without_default_key; dsqlctl local --access-key-id \
         with DSQL_LOCAL_SECRET_ACCESS_KEY), listen on a loopback address, or accept the risk \
         explicitly (LocalConfigBuilder::allow_public_key_off_loopback; dsqlctl local \
         --allow-public-key-off-loopback)"
    )]
    PublicKeyOffLoopback {
        /// The listen address.
        listen: SocketAddr,
    },
    /// A setting has a value it cannot take.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn upstream(reason: impl Into<String>) -> Self {
        Self::Upstream {
            reason: reason.into(),
        }
    }
}

/// `dsql-local` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The certificates could not be generated or loaded.
    #[error("could not create the TLS certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls rejected the TLS configuration.
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The CA could not be read or written.
    #[error("could not access the CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The listener could not be bound.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The network delay line's timer thread could not be started
    /// ([`network_round_trip`](crate::LocalConfigBuilder::network_round_trip)).
    #[error("could not start the network delay line: {0}")]
    DelayLine(#[source] io::Error),
}
