//! The writer of one sink: a thread of its own that takes the sink's
//! records from the queue in batches and writes them, retrying a batch
//! the sink could not take (the records wait; the queue's policy decides
//! what happens to new ones meanwhile).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::queue::Queue;

/// Where a writer puts records.
pub trait Sink: Send + 'static {
    /// Writes `lines` (each a whole record with its newline), all or an
    /// error; on error the same lines are offered again.
    ///
    /// # Errors
    /// The sink cannot take them now.
    fn write(&mut self, lines: &[Vec<u8>]) -> io::Result<()>;

    /// Called at least every [`TICK`]: time-driven work (fsync, rotation,
    /// reopening).
    ///
    /// # Errors
    /// The work failed; the writer logs it and goes on.
    fn tick(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The queue is closed and empty: make everything durable.
    ///
    /// # Errors
    /// It could not.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The sink in words, for logs.
    fn describe(&self) -> String;
}

/// The longest a writer waits for records before it takes what there is
/// and ticks: the most a record waits in the queue when few come.
pub const TICK: Duration = Duration::from_millis(20);

/// The longest a writer waits before it retries a sink that failed.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Starts the writer of lane `lane` on a thread of its own.
///
/// # Errors
/// The thread cannot be started.
pub fn spawn(
    queue: Arc<Queue>,
    lane: usize,
    mut sink: Box<dyn Sink>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("audit-sink-{lane}"))
        .spawn(move || {
            while let Some(lines) = queue.take(lane, TICK) {
                let mut backoff = Duration::from_millis(50);
                loop {
                    match sink.write(&lines) {
                        Ok(()) => {
                            queue.wrote(lane, lines.len(), true);
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(sink = %sink.describe(), %error, "audit sink cannot be written; retrying");
                            queue.wrote(lane, 0, false);
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
                if let Err(error) = sink.tick() {
                    tracing::warn!(sink = %sink.describe(), %error, "audit sink upkeep failed");
                }
            }
            if let Err(error) = sink.finish() {
                tracing::warn!(sink = %sink.describe(), %error, "audit sink could not be made durable");
            }
        })
}
