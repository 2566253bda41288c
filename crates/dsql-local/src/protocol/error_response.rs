//! `ErrorResponse`: the errors `dsql-local` sends, and reading the fields of
//! the upstream's.

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{cstr, put_cstr, put_message};
use crate::catalog::{DsqlError, Severity};

/// An `ErrorResponse` to build: fields S, V, C, M and optionally D and H.
#[derive(Clone, Debug)]
pub(crate) struct ErrorResponse<'a> {
    pub(crate) severity: Severity,
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) detail: Option<&'a str>,
    pub(crate) hint: Option<&'a str>,
}

impl<'a> ErrorResponse<'a> {
    /// The catalog entry `error`, without detail or hint.
    pub(crate) fn from_catalog(error: &'a DsqlError) -> Self {
        Self {
            severity: error.severity,
            code: error.code,
            message: error.message,
            detail: None,
            hint: None,
        }
    }

    pub(crate) fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_message(out, b'E', |out| {
            let severity = self.severity.as_str().as_bytes();
            for (field, value) in [
                (b'S', Some(severity)),
                (b'V', Some(severity)),
                (b'C', Some(self.code.as_bytes())),
                (b'M', Some(self.message.as_bytes())),
                (b'D', self.detail.map(str::as_bytes)),
                (b'H', self.hint.map(str::as_bytes)),
            ] {
                if let Some(value) = value {
                    out.push(field);
                    put_cstr(out, value);
                }
            }
            out.push(0);
        });
    }

    /// Sends the error on its own and flushes.
    pub(crate) async fn send<W: AsyncWrite + Unpin>(&self, w: &mut W) -> io::Result<()> {
        let mut out = Vec::with_capacity(256);
        self.encode(&mut out);
        w.write_all(&out).await?;
        w.flush().await
    }
}

/// The value of field `field` of an `ErrorResponse` or `NoticeResponse` body.
pub(crate) fn error_field(body: &[u8], field: u8) -> Option<&[u8]> {
    let mut rest = body;
    while let Some((&kind, after)) = rest.split_first() {
        if kind == 0 {
            return None;
        }
        let (value, next) = cstr(after)?;
        if kind == field {
            return Some(value);
        }
        rest = next;
    }
    None
}
