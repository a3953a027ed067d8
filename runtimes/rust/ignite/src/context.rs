//! What a handler knows about its invocation, and the per-invocation tools.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use serde::Serialize;
#[cfg(not(target_arch = "wasm32"))]
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// The invocation's context: ids, the app's environment, a scratch store and
/// a streaming response handle.
pub struct Context {
    execution_id: String,
    function_id: String,
    organization_id: String,
    env: Env,
    temp_store: TempStore,
    stream: Stream,
}

impl Context {
    pub(crate) fn new(
        execution_id: String,
        function_id: String,
        organization_id: String,
        stream: Stream,
    ) -> Self {
        let temp_store = TempStore::for_execution(&execution_id);
        Context {
            execution_id,
            function_id,
            organization_id,
            env: Env { _private: () },
            temp_store,
            stream,
        }
    }

    /// This invocation's id (a ULID), as the caller sees it.
    pub fn execution_id(&self) -> &str {
        &self.execution_id
    }

    /// The app's id, `"org/name"`.
    pub fn function_id(&self) -> &str {
        &self.function_id
    }

    /// The owning organization's id.
    pub fn organization_id(&self) -> &str {
        &self.organization_id
    }

    /// The app's environment variables (its settings' `env`).
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Scratch files that live as long as this invocation.
    pub fn temp_store(&self) -> &TempStore {
        &self.temp_store
    }

    /// Sends the response body in pieces while the handler still runs.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }
}

/// Read access to the app's environment variables.
pub struct Env {
    _private: (),
}

impl Env {
    /// The variable `key`, when it is set and valid UTF-8.
    pub fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    /// The variable `key`, or an error naming it when it is missing.
    pub fn require(&self, key: &str) -> Result<String> {
        self.get(key)
            .ok_or_else(|| Error::msg(format!("environment variable {key} is not set")))
    }

    /// Every variable, as (name, value) pairs.
    pub fn vars(&self) -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

/// A private directory for one invocation's scratch files. It is created on
/// first use under the pod's temporary directory and removed, with its
/// contents, when the invocation ends.
pub struct TempStore {
    dir: PathBuf,
    created: OnceLock<()>,
}

impl TempStore {
    fn for_execution(execution_id: &str) -> Self {
        // The execution id comes from a header; keep only characters that
        // cannot escape the temporary directory.
        let safe: String = execution_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let unique = format!("ignite-{}-{}-{}", process_id(), next_store_number(), safe);
        TempStore {
            dir: scratch_root().join(unique),
            created: OnceLock::new(),
        }
    }

    /// The directory, created if needed.
    pub fn path(&self) -> io::Result<&Path> {
        if self.created.get().is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let _ = self.created.set(());
        }
        Ok(&self.dir)
    }

    /// Writes `data` to the scratch file `name`.
    pub fn write(&self, name: &str, data: impl AsRef<[u8]>) -> Result<()> {
        let path = self.file(name)?;
        Ok(std::fs::write(path, data)?)
    }

    /// Reads the scratch file `name`.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let path = self.file(name)?;
        Ok(std::fs::read(path)?)
    }

    fn file(&self, name: &str) -> Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Error::msg(format!("{name:?} is not a plain file name")));
        }
        Ok(self.path()?.join(name))
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        if self.created.get().is_some() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Where scratch directories are made: the pod's temporary directory.
#[cfg(not(target_arch = "wasm32"))]
fn scratch_root() -> PathBuf {
    std::env::temp_dir()
}

/// WASI has no temporary directory of its own: the Wasmtime host mounts an
/// empty directory at `/tmp` for every invocation and removes it afterwards.
#[cfg(target_arch = "wasm32")]
fn scratch_root() -> PathBuf {
    PathBuf::from("/tmp")
}

#[cfg(not(target_arch = "wasm32"))]
fn process_id() -> u32 {
    std::process::id()
}

/// A wasm instance serves one invocation; there is no process id to tell
/// concurrent ones apart (nor a need: each has its own `/tmp`).
#[cfg(target_arch = "wasm32")]
fn process_id() -> u32 {
    0
}

fn next_store_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Where streamed chunks go: the server's response body natively; in a wasm
/// build, a buffer (`None` until the first send) that becomes the response
/// body when the handler returns, since one wasm run answers with one
/// complete response.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type Chunks = mpsc::Sender<Bytes>;
#[cfg(target_arch = "wasm32")]
pub(crate) type Chunks = Arc<Mutex<Option<Vec<u8>>>>;

/// The streaming response handle. The first [`Stream::send`] starts a `200`
/// response whose body is everything sent, in order; it ends when the handler
/// returns, and the handler's return value is then not sent. An error after
/// streaming began can no longer change the status: it is logged and the
/// body is cut short. In a wasm build the chunks are collected and sent
/// together when the handler returns (same body, no incremental delivery).
#[derive(Clone)]
pub struct Stream {
    chunks: Chunks,
    content_type: Arc<Mutex<String>>,
}

impl Stream {
    pub(crate) fn new(chunks: Chunks) -> Self {
        Stream {
            chunks,
            content_type: Arc::new(Mutex::new("application/octet-stream".to_string())),
        }
    }

    /// Sets the streamed response's content type; call it before the first
    /// `send`. Default: `application/octet-stream`.
    pub fn set_content_type(&self, content_type: &str) {
        *self.content_type.lock().unwrap_or_else(|e| e.into_inner()) = content_type.to_string();
    }

    /// Sends one piece of the body; waits while the client is slower than
    /// the handler. Fails when the client went away.
    pub async fn send(&self, data: impl Into<Bytes>) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        return self
            .chunks
            .send(data.into())
            .await
            .map_err(|_| Error::msg("the client closed the response stream"));
        #[cfg(target_arch = "wasm32")]
        {
            let mut buffer = self.chunks.lock().unwrap_or_else(|e| e.into_inner());
            buffer
                .get_or_insert_with(Vec::new)
                .extend_from_slice(&data.into());
            Ok(())
        }
    }

    /// Sends `value` as one line of JSON (newline-delimited JSON).
    pub async fn send_json<T: Serialize>(&self, value: &T) -> Result<()> {
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        self.send(line).await
    }

    /// Shared with the server, which reads it when the first chunk arrives
    /// without keeping a sender alive (that would never end the body).
    pub(crate) fn content_type_handle(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.content_type)
    }
}
