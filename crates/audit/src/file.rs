//! [`FileSink`]: JSON lines appended to a file that the writer rotates
//! itself, between records, so that no record is split or lost across
//! files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Fsync;
use crate::writer::Sink;

/// A file sink.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: BufWriter<File>,
    size: u64,
    opened: Instant,
    rotate_bytes: u64,
    rotate_every: Option<Duration>,
    keep: usize,
    fsync: Fsync,
    unsynced: Option<Instant>,
    asked: Arc<Asked>,
    /// What of `asked` it has done.
    done: (u64, u64),
}

/// What the operator asks of every file sink: each request is a count
/// that goes up, and each sink does what it has not done yet.
#[derive(Debug, Default)]
pub struct Asked {
    /// Open the file again under its name (after an outside logrotate
    /// moved it; SIGUSR1, `PROXY AUDIT REOPEN`).
    pub reopen: AtomicU64,
    /// Rotate now (`PROXY AUDIT ROTATE`).
    pub rotate: AtomicU64,
}

impl FileSink {
    /// Opens (or makes) `path` for appending, cutting a partial last line
    /// a crash left. Returns the sink and the sequence number of the last
    /// record the file held, if any.
    ///
    /// # Errors
    /// The file cannot be made, read or opened.
    pub fn open(
        path: &Path,
        rotate_bytes: u64,
        rotate_secs: u64,
        keep: usize,
        fsync: Fsync,
        asked: Arc<Asked>,
    ) -> io::Result<(FileSink, Option<u64>)> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let last_seq = cut_partial_line(path)?;
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok((
            FileSink {
                path: path.to_path_buf(),
                file: BufWriter::with_capacity(64 * 1024, file),
                size,
                opened: Instant::now(),
                rotate_bytes,
                rotate_every: (rotate_secs > 0).then(|| Duration::from_secs(rotate_secs)),
                keep,
                fsync,
                unsynced: None,
                done: (
                    asked.reopen.load(Ordering::Acquire),
                    asked.rotate.load(Ordering::Acquire),
                ),
                asked,
            },
            last_seq,
        ))
    }

    /// Closes the file under its name with the time appended, opens a new
    /// one, and removes the oldest rotated files past `keep`.
    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let stamp = humantime::format_rfc3339_micros(SystemTime::now())
            .to_string()
            .replace([':', '-'], "");
        // Two rotations within a microsecond: the second gets a number,
        // which sorts after the first.
        let base = format!("{}.{stamp}", self.path.display());
        let mut rotated = PathBuf::from(&base);
        let mut n = 0;
        while rotated.exists() {
            n += 1;
            rotated = PathBuf::from(format!("{base}.{n}"));
        }
        fs::rename(&self.path, &rotated)?;
        self.file = BufWriter::with_capacity(64 * 1024, open_append(&self.path)?);
        self.size = 0;
        self.opened = Instant::now();
        if self.keep > 0 {
            let mut old = rotated_files(&self.path)?;
            old.sort();
            let excess = old.len().saturating_sub(self.keep);
            for file in &old[..excess] {
                fs::remove_file(file)?;
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.unsynced.take().is_some() && self.fsync != Fsync::Never {
            self.file.get_ref().sync_data()?;
        }
        Ok(())
    }
}

impl Sink for FileSink {
    fn write(&mut self, lines: &[Vec<u8>]) -> io::Result<()> {
        for line in lines {
            let len = line.len() as u64;
            if self.rotate_bytes > 0 && self.size > 0 && self.size + len > self.rotate_bytes {
                self.rotate()?;
            }
            self.file.write_all(line)?;
            self.size += len;
        }
        self.file.flush()?;
        if !lines.is_empty() {
            self.unsynced.get_or_insert_with(Instant::now);
        }
        if self.fsync == Fsync::Always {
            self.sync()?;
        }
        Ok(())
    }

    fn tick(&mut self) -> io::Result<()> {
        let asked = (
            self.asked.reopen.load(Ordering::Acquire),
            self.asked.rotate.load(Ordering::Acquire),
        );
        if asked.1 != self.done.1 {
            self.done.1 = asked.1;
            self.rotate()?;
        }
        if asked.0 != self.done.0 {
            self.done.0 = asked.0;
            // An outside logrotate moved the file: the next records go to
            // a new one under the configured name.
            self.sync()?;
            self.file = BufWriter::with_capacity(64 * 1024, open_append(&self.path)?);
            self.size = self.file.get_ref().metadata()?.len();
            self.opened = Instant::now();
        }
        if self
            .unsynced
            .is_some_and(|since| since.elapsed() >= Duration::from_secs(1))
        {
            self.sync()?;
        }
        if self
            .rotate_every
            .is_some_and(|every| self.size > 0 && self.opened.elapsed() >= every)
        {
            self.rotate()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.sync()
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The rotated files of `path` (`path.<time>`).
fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.",
        path.file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default()
    );
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            found.push(entry.path());
        }
    }
    Ok(found)
}

/// Cuts what follows the last newline of `path` (a record a crash left
/// half written) and returns the `seq` of its last whole record.
fn cut_partial_line(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let len = file.metadata()?.len();
    let tail_len = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail)?;
    let whole = tail.iter().rposition(|&b| b == b'\n').map_or(0, |at| at + 1);
    if whole < tail.len() {
        file.set_len(len - tail_len + whole as u64)?;
    }
    let last_seq = tail[..whole]
        .split(|&b| b == b'\n')
        .rev()
        .filter(|line| !line.is_empty())
        .find_map(|line| {
            serde_json::from_slice::<serde_json::Value>(line)
                .ok()?
                .get("seq")?
                .as_u64()
        });
    Ok(last_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audit-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir.join("audit.jsonl")
    }

    #[test]
    fn rotation_keeps_whole_lines_and_the_newest_files() {
        let path = scratch("rotate");
        let asked = Arc::new(Asked::default());
        let (mut sink, last) = FileSink::open(&path, 100, 0, 2, Fsync::Never, asked.clone()).unwrap();
        assert_eq!(last, None);
        for seq in 1..=20u64 {
            let line = format!("{{\"seq\":{seq},\"event\":\"command\"}}\n");
            sink.write(&[line.into_bytes()]).unwrap();
            // Rotated names differ by their microseconds.
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut files = rotated_files(&path).unwrap();
        assert_eq!(files.len(), 2);
        files.sort();
        files.push(path.clone());
        let mut seqs = Vec::new();
        for file in files {
            let text = fs::read_to_string(file).unwrap();
            assert!(text.ends_with('\n') && text.len() <= 100);
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                seqs.push(value["seq"].as_u64().unwrap());
            }
        }
        // The newest records, each once, in order.
        let first = seqs[0];
        assert_eq!(seqs, (first..=20).collect::<Vec<_>>());
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_file_older_than_rotate_secs_is_rotated_at_the_next_tick() {
        let path = scratch("age");
        let asked = Arc::new(Asked::default());
        let (mut sink, _) = FileSink::open(&path, 0, 1, 0, Fsync::Never, asked.clone()).unwrap();
        sink.write(&[b"{\"seq\":1}\n".to_vec()]).unwrap();
        sink.tick().unwrap();
        assert!(rotated_files(&path).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(1100));
        sink.tick().unwrap();
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated.len(), 1);
        // Asked to rotate: at the next tick, once.
        sink.write(&[b"{\"seq\":2}\n".to_vec()]).unwrap();
        asked.rotate.fetch_add(1, Ordering::AcqRel);
        sink.tick().unwrap();
        sink.tick().unwrap();
        assert_eq!(rotated_files(&path).unwrap().len(), 2);
        assert_eq!(fs::read_to_string(&rotated[0]).unwrap(), "{\"seq\":1}\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_half_written_last_record_is_cut_and_the_last_whole_one_found() {
        let path = scratch("crash");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ev").unwrap();
        let asked = Arc::new(Asked::default());
        let (_sink, last) = FileSink::open(&path, 0, 0, 0, Fsync::Always, asked).unwrap();
        assert_eq!(last, Some(2));
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"seq\":1}\n{\"seq\":2}\n");
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }
}
