//! Where documents live: a local directory now, S3 later. Keys are relative paths such as
//! `documents/{org}/{request}.pdf`; callers never see the backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

/// Key → (bytes, last modified).
type MemoryBlobs = BTreeMap<String, (Vec<u8>, DateTime<Utc>)>;

#[derive(Clone, Debug)]
pub enum Blobs {
    Local(PathBuf),
    Memory(Arc<Mutex<MemoryBlobs>>),
}

#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub key: String,
    pub modified: DateTime<Utc>,
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place (so
/// `path` never holds part of a file) and syncs the directory (so the name survives a crash
/// as well as the contents: the row that points to it commits after this returns).
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    // Directories created here live by their names in their parents: those are synced too.
    let created: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for parent in created.iter().filter_map(|d| d.parent()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}

fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!("invalid blob key '{key}'")))
    }
}

impl Blobs {
    /// `file:///path` (or a bare path) for a local directory; `memory:` for tests.
    pub fn from_url(url: &str) -> Result<Blobs> {
        if url == "memory:" {
            return Ok(Blobs::memory());
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Blobs::Local(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(StoreError::Config(format!(
                "SIGNEUR_STORAGE_URL scheme '{}' is not supported by this build (use file://)",
                url.split("://").next().unwrap_or_default()
            )));
        }
        Ok(Blobs::Local(PathBuf::from(url)))
    }

    pub fn memory() -> Blobs {
        Blobs::Memory(Arc::default())
    }

    /// Stores the bytes durably (written to a temporary file, synced, renamed, directory
    /// synced).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        check_key(key)?;
        match self {
            Blobs::Local(root) => {
                let path = root.join(key);
                // One trip to the blocking pool for the whole sequence rather than one per
                // step (tokio's file API copies the bytes into its own buffer all the same).
                let bytes = bytes.to_vec();
                tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok(())
            }
            Blobs::Memory(m) => {
                lock(m).insert(key.to_string(), (bytes.to_vec(), Utc::now()));
                Ok(())
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        match self {
            Blobs::Local(root) => match tokio::fs::read(root.join(key)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            Blobs::Memory(m) => Ok(lock(m).get(key).map(|(b, _)| b.clone())),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        match self {
            Blobs::Local(root) => match tokio::fs::remove_file(root.join(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e.into()),
            },
            Blobs::Memory(m) => {
                lock(m).remove(key);
                Ok(())
            }
        }
    }

    /// Every stored blob with its last modification time.
    pub async fn list(&self) -> Result<Vec<BlobInfo>> {
        match self {
            Blobs::Local(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || list_dir(&root))
                    .await
                    .map_err(|e| StoreError::Blob(std::io::Error::other(e)))?
            }
            Blobs::Memory(m) => Ok(lock(m)
                .iter()
                .map(|(k, (_, t))| BlobInfo {
                    key: k.clone(),
                    modified: *t,
                })
                .collect()),
        }
    }

    /// Up to `limit` blobs whose keys come after `after`, in key order: one page of a
    /// listing that can be walked without holding the whole store in memory (what an object
    /// store's paged listing gives; the local directory is walked in the same order, skipping
    /// the subtrees before `after`).
    pub async fn list_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<BlobInfo>> {
        match self {
            Blobs::Local(root) => {
                let root = root.clone();
                let after = after.map(str::to_string);
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    walk_page(&root, &root, after.as_deref(), limit, &mut out)?;
                    Ok(out)
                })
                .await
                .map_err(|e| StoreError::Blob(std::io::Error::other(e)))?
            }
            Blobs::Memory(m) => {
                use std::ops::Bound;
                let lower = match after {
                    Some(a) => Bound::Excluded(a.to_string()),
                    None => Bound::Unbounded,
                };
                Ok(lock(m)
                    .range((lower, Bound::Unbounded))
                    .take(limit)
                    .map(|(k, (_, t))| BlobInfo {
                        key: k.clone(),
                        modified: *t,
                    })
                    .collect())
            }
        }
    }

    /// Whether the store can be written (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        match self {
            Blobs::Local(root) => {
                tokio::fs::create_dir_all(root).await?;
                let probe = root.join(".readyz");
                tokio::fs::write(&probe, b"ok").await?;
                tokio::fs::remove_file(&probe).await?;
                Ok(())
            }
            Blobs::Memory(_) => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn list_dir(root: &Path) -> Result<Vec<BlobInfo>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let meta = entry.metadata()?;
            let path = entry.path();
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let key = rel.to_string_lossy().replace('\\', "/");
                if key.starts_with('.') || key.contains(".tmp-") {
                    continue;
                }
                let modified: DateTime<Utc> = meta
                    .modified()
                    .map(DateTime::from)
                    .unwrap_or_else(|_| Utc::now());
                out.push(BlobInfo { key, modified });
            }
        }
    }
    Ok(out)
}

/// Depth-first in key order: a directory `d` sorts as `d/` (every key below it starts so),
/// which puts `a-b` before `a/x` as the keys' own order does.
fn walk_page(
    root: &Path,
    dir: &Path,
    after: Option<&str>,
    limit: usize,
    out: &mut Vec<BlobInfo>,
) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut sorted = Vec::new();
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let mut key = rel.to_string_lossy().replace('\\', "/");
        if meta.is_dir() {
            key.push('/');
        }
        sorted.push((key, path, meta));
    }
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, path, meta) in sorted {
        if out.len() >= limit {
            break;
        }
        if meta.is_dir() {
            // Every key below starts with `key`: skip the subtree when all of them sort
            // before `after`.
            if after.is_some_and(|a| a > key.as_str() && !a.starts_with(key.as_str())) {
                continue;
            }
            walk_page(root, &path, after, limit, out)?;
        } else {
            if after.is_some_and(|a| key.as_str() <= a) {
                continue;
            }
            if key.starts_with('.') || key.contains(".tmp-") {
                continue;
            }
            let modified: DateTime<Utc> = meta
                .modified()
                .map(DateTime::from)
                .unwrap_or_else(|_| Utc::now());
            out.push(BlobInfo { key, modified });
        }
    }
    Ok(())
}
