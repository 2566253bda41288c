//! A child process of the benchmark (`serve-local`, `serve-regions`) and
//! the line protocol both speak: `key=value` lines, then `ready`; after
//! that, one command line in, one answer line out, until stdin closes.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use crate::BoxError;

/// A running child, past its `ready`.
pub(crate) struct Child {
    /// What the errors call it ("dsql-local", "regions").
    name: &'static str,
    process: tokio::process::Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Child {
    /// Starts `command` with piped stdin and stdout (killed if dropped);
    /// the child and the `key=value` lines it printed before `ready`, in
    /// order (a key may come more than once).
    pub(crate) async fn spawn(
        mut command: Command,
        name: &'static str,
    ) -> Result<(Self, Vec<(String, String)>), BoxError> {
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = process
            .stdout
            .take()
            .ok_or_else(|| format!("no stdout from the {name} child"))?;
        let mut stdout = BufReader::new(stdout).lines();
        let mut pairs = Vec::new();
        while let Some(line) = stdout.next_line().await? {
            if line == "ready" {
                break;
            }
            if let Some((key, value)) = line.split_once('=') {
                pairs.push((key.to_owned(), value.to_owned()));
            }
        }
        let child = Self {
            name,
            stdin: process.stdin.take(),
            process,
            stdout,
        };
        Ok((child, pairs))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.id().unwrap_or(0)
    }

    /// Sends one command line; the child's answer once it has taken
    /// effect (an `error …` answer is an error).
    pub(crate) async fn command(&mut self, command: &str) -> Result<String, BoxError> {
        let name = self.name;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("the {name} child is stopped"))?;
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        stdin.flush().await?;
        let answer = self
            .stdout
            .next_line()
            .await?
            .ok_or_else(|| format!("the {name} child exited"))?;
        if answer.starts_with("error") {
            return Err(answer.into());
        }
        Ok(answer)
    }

    /// Closes its stdin, which ends it, and waits for it.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin.take());
        let _ = self.process.wait().await;
    }
}

/// The access key a child's endpoints accept, as it printed it
/// (`access_key_id=`, `secret_access_key=`). No `Debug`: it holds a secret.
pub(crate) struct ChildKey {
    access_key_id: String,
    secret_access_key: String,
}

impl ChildKey {
    /// The key among `pairs`, if both halves are there.
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Option<Self> {
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        Some(Self {
            access_key_id: value("access_key_id")?,
            secret_access_key: value("secret_access_key")?,
        })
    }

    pub(crate) fn credentials(&self) -> dsql_auth::aws::Credentials {
        dsql_auth::aws::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "dsql-local",
        )
    }
}
