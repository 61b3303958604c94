//! Fanout: one bounded single-producer single-consumer queue per shard, carrying
//! [`Outbound`] (one `Arc` pointer per entry) from the tailer core to a shard core.
//!
//! - Producer side ([`FanoutSender`]) runs on the tailer thread: [`FanoutSender::try_push`]
//!   never blocks and answers [`PushOutcome::Pushed`] or [`PushOutcome::Full`].
//! - Consumer side ([`FanoutReceiver`]) runs on one shard's glommio executor: it drains in
//!   batches and, when the queue is empty, parks on a socketpair with an io_uring read, so a
//!   sleeping shard costs no CPU and is woken by one 1-byte write from the tailer.
//!
//! Invariants:
//! - Per event the tailer pays one queue push per shard (an atomic slot claim) and, only when
//!   that shard announced it is parked, one `write(2)`: O(shards), never O(clients), no locks.
//! - The queue is bounded (`capacity` entries); a full queue is the caller's to count.
//! - A wake-up is never lost: the consumer publishes `parked` then re-checks the queue before
//!   it sleeps, and the producer publishes the item then checks `parked` (both `SeqCst`).
//!
//! Must never: block the tailer, allocate per event, or touch another shard's queue.
//! Why std's bounded channel plus a socketpair: docs/decisions/spsc-wakeup.md.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::outbound::Outbound;

/// Result of [`FanoutSender::try_push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The entry is in the shard's queue.
    Pushed,
    /// The shard's queue is full (or the shard is gone); the entry was not queued.
    Full,
}

/// Result of `ShardInbox::try_pop`.
#[derive(Debug)]
enum PopOutcome {
    /// The next entry, in push order.
    Ready(Outbound),
    /// Nothing queued right now.
    Empty,
    /// The tailer dropped its sender and everything was drained.
    Closed,
}

/// State both ends share: the consumer's "I am parked" flag and how far it has drained.
#[derive(Debug, Default)]
struct Shared {
    /// Set by the consumer just before it sleeps; cleared by whoever wakes it.
    parked: AtomicBool,
    /// Entries the consumer has taken out of the queue (written by the consumer only, once
    /// per drain call), so the producer can see how many still wait.
    taken: AtomicU64,
}

/// Tailer end of one shard's queue.
#[derive(Debug)]
pub struct FanoutSender {
    tx: SyncSender<Outbound>,
    shared: Arc<Shared>,
    wake_tx: OwnedFd,
    /// Entries pushed so far (the producer's count; `pushed - taken` still wait).
    pushed: Cell<u64>,
}

/// Shard end of one shard's queue, before it is attached to the shard's executor (`Send`,
/// so it can move into the executor's thread).
#[derive(Debug)]
pub struct FanoutReceiver {
    rx: Receiver<Outbound>,
    shared: Arc<Shared>,
    wake_rx: StdUnixStream,
}

/// Shard end of one shard's queue, attached to the glommio executor that drains it.
#[derive(Debug)]
pub struct ShardInbox {
    rx: Receiver<Outbound>,
    shared: Arc<Shared>,
    waiter: glommio::net::UnixStream,
    /// One entry taken while checking for emptiness before parking; popped first.
    peeked: Option<Outbound>,
}

/// A handle that wakes the shard from any thread without pushing (shutdown, tests).
#[derive(Debug, Clone)]
pub struct FanoutWaker {
    shared: Arc<Shared>,
    wake_tx: Arc<OwnedFd>,
}

/// Makes one shard's queue holding at most `capacity` entries (at least 1).
pub fn channel(capacity: usize) -> io::Result<(FanoutSender, FanoutReceiver, FanoutWaker)> {
    let (tx, rx) = sync_channel(capacity.max(1));
    let (wake_tx, wake_rx) = StdUnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    let shared = Arc::new(Shared::default());
    let waker_fd = OwnedFd::from(wake_tx.try_clone()?);
    Ok((
        FanoutSender {
            tx,
            shared: shared.clone(),
            wake_tx: OwnedFd::from(wake_tx),
            pushed: Cell::new(0),
        },
        FanoutReceiver {
            rx,
            shared: shared.clone(),
            wake_rx,
        },
        FanoutWaker {
            shared,
            wake_tx: Arc::new(waker_fd),
        },
    ))
}

/// Writes one byte to wake a parked consumer. Non-blocking: if the socket buffer is full the
/// consumer has plenty of unread wake-ups already, so `EAGAIN` is ignored.
fn poke(fd: &OwnedFd) {
    crate::sys::write_byte(fd.as_raw_fd());
}

fn wake_if_parked(shared: &Shared, fd: &OwnedFd) {
    // Pairs with the consumer's store of `parked` followed by its re-check of the queue.
    fence(Ordering::SeqCst);
    if shared.parked.load(Ordering::SeqCst) && shared.parked.swap(false, Ordering::SeqCst) {
        poke(fd);
    }
}

impl FanoutSender {
    /// Queues `item` for the shard without blocking; wakes the shard if it is parked.
    pub fn try_push(&self, item: Outbound) -> PushOutcome {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.pushed.set(self.pushed.get() + 1);
                wake_if_parked(&self.shared, &self.wake_tx);
                PushOutcome::Pushed
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => PushOutcome::Full,
        }
    }

    /// Entries pushed that the shard has not taken yet (as of its last drain call): what a
    /// frame pushed now waits behind.
    pub fn pending(&self) -> u64 {
        self.pushed
            .get()
            .saturating_sub(self.shared.taken.load(Ordering::Acquire))
    }
}

impl FanoutWaker {
    /// Wakes the shard if it is parked (it then re-checks its queue and its shutdown flag).
    pub fn wake(&self) {
        self.shared.parked.store(false, Ordering::SeqCst);
        poke(&self.wake_tx);
    }
}

impl FanoutReceiver {
    /// Binds the wake-up socket to the current glommio executor. Call on the shard's core.
    pub fn attach(self) -> ShardInbox {
        let fd = self.wake_rx.into_raw_fd();
        // SAFETY: `fd` was just released by `into_raw_fd`, so ownership moves to the
        // glommio stream exactly once; nothing else closes it.
        let waiter = unsafe { glommio::net::UnixStream::from_raw_fd(fd) };
        ShardInbox {
            rx: self.rx,
            shared: self.shared,
            waiter,
            peeked: None,
        }
    }
}

impl ShardInbox {
    /// Polls the queue for up to `spin`; true once an entry is waiting in `peeked` (or the
    /// sender is gone, which `try_pop` then reports).
    fn spin_for_item(&mut self, spin: Duration) -> bool {
        if spin.is_zero() {
            return false;
        }
        let start = Instant::now();
        loop {
            // Reading the clock costs more than a poll: look at it every 64 polls.
            for _ in 0..64 {
                match self.rx.try_recv() {
                    Ok(item) => {
                        self.peeked = Some(item);
                        return true;
                    }
                    Err(TryRecvError::Disconnected) => return true,
                    Err(TryRecvError::Empty) => std::hint::spin_loop(),
                }
            }
            if start.elapsed() >= spin {
                return false;
            }
        }
    }

    /// Takes the next entry without waiting.
    fn try_pop(&mut self) -> PopOutcome {
        if let Some(item) = self.peeked.take() {
            return PopOutcome::Ready(item);
        }
        match self.rx.try_recv() {
            Ok(item) => PopOutcome::Ready(item),
            Err(TryRecvError::Empty) => PopOutcome::Empty,
            Err(TryRecvError::Disconnected) => PopOutcome::Closed,
        }
    }

    /// Moves up to `max` entries into `out`, in push order; returns how many.
    pub fn drain_into(&mut self, out: &mut Vec<Outbound>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.try_pop() {
                PopOutcome::Ready(item) => {
                    out.push(item);
                    n += 1;
                }
                PopOutcome::Empty | PopOutcome::Closed => break,
            }
        }
        if n > 0 {
            // Single writer: this shard. One store per drain call, not per entry.
            let taken = self.shared.taken.load(Ordering::Relaxed) + n as u64;
            self.shared.taken.store(taken, Ordering::Release);
        }
        n
    }

    /// Sleeps until the tailer pushes (or a [`FanoutWaker`] fires). Returns at once if
    /// something is already queued. First polls the queue for up to `spin` (blocking this
    /// executor meanwhile): a tailer that produces steadily then never finds the shard parked,
    /// so neither side pays a park (io_uring sleep, glommio's membarrier IPIs) and a wake
    /// (`write(2)`) every few events. Must run on the glommio executor that owns this receiver.
    pub async fn park(&mut self, spin: Duration) -> io::Result<()> {
        use futures_lite::AsyncReadExt;
        if self.peeked.is_some() || self.spin_for_item(spin) {
            return Ok(());
        }
        self.shared.parked.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // Re-check after publishing `parked`: a push that raced with us either is visible
        // now or will see `parked == true` and write a wake-up byte.
        if self.peeked.is_some() {
            self.shared.parked.store(false, Ordering::SeqCst);
            return Ok(());
        }
        match self.rx.try_recv() {
            Ok(item) => {
                self.peeked = Some(item);
                self.shared.parked.store(false, Ordering::SeqCst);
                return Ok(());
            }
            Err(TryRecvError::Disconnected) => {
                self.shared.parked.store(false, Ordering::SeqCst);
                return Ok(());
            }
            Err(TryRecvError::Empty) => {}
        }
        let mut buf = [0u8; 64];
        let n = self.waiter.read(&mut buf).await?;
        self.shared.parked.store(false, Ordering::SeqCst);
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outbound::{MetaFrame, MetaKind};

    fn meta(seqno: u64) -> Outbound {
        Outbound::Meta(Arc::new(MetaFrame {
            old: None,
            server_seqno: seqno,
            kind: MetaKind::Gap,
            stage: None,
            frame: Box::from(&b"{}"[..]),
        }))
    }

    #[test]
    fn full_queue_reports_full_keeps_order_and_the_sender_sees_what_waits() {
        let (tx, rx, _w) = channel(2).unwrap();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .make()
            .unwrap();
        ex.run(async move {
            let mut rx = rx.attach();
            assert_eq!(tx.pending(), 0);
            assert_eq!(tx.try_push(meta(1)), PushOutcome::Pushed);
            assert_eq!(tx.try_push(meta(2)), PushOutcome::Pushed);
            assert_eq!(tx.try_push(meta(3)), PushOutcome::Full);
            assert_eq!(tx.pending(), 2, "a refused push is not counted");
            let mut out = Vec::new();
            assert_eq!(rx.drain_into(&mut out, 1), 1);
            assert_eq!(tx.pending(), 1);
            assert_eq!(rx.drain_into(&mut out, 10), 1);
            assert_eq!(tx.pending(), 0);
            let seqnos: Vec<u64> = out.iter().map(Outbound::server_seqno).collect();
            assert_eq!(seqnos, vec![1, 2]);
            assert!(matches!(rx.try_pop(), PopOutcome::Empty));
            drop(tx);
            assert!(matches!(rx.try_pop(), PopOutcome::Closed));
        });
    }

    #[test]
    fn parked_shard_is_woken_by_a_push_from_another_thread() {
        let (tx, rx, _w) = channel(1024).unwrap();
        let consumer = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(256 << 10)
            .spawn(move || async move {
                let mut rx = rx.attach();
                let mut got = Vec::new();
                while got.len() < 1000 {
                    rx.park(Duration::ZERO).await.unwrap();
                    let mut batch = Vec::new();
                    rx.drain_into(&mut batch, 64);
                    got.extend(batch.iter().map(Outbound::server_seqno));
                }
                got
            })
            .unwrap();
        let producer = std::thread::spawn(move || {
            let mut seqno = 1;
            while seqno <= 1000 {
                if tx.try_push(meta(seqno)) == PushOutcome::Pushed {
                    seqno += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            tx
        });
        let got = consumer.join().unwrap();
        let _tx = producer.join().unwrap();
        assert_eq!(got, (1..=1000).collect::<Vec<u64>>());
    }
}
