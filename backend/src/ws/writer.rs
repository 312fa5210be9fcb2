//! A connection's writer task: drains its outbound queue into the socket, batching frames
//! into as few writes as it can without making anyone wait for an answer.
//!
//! One write per batch: every frame already queued is fed to tungstenite's buffer before a
//! single flush, and the writer lets the scheduler run the ready tasks once before that
//! flush, so frames queued a moment apart (a send's response right behind its own
//! broadcast) share one system call.
//!
//! Fan-out is coalesced in time as well. On loopback a write costs several µs of kernel time
//! whatever it carries (the receiver's TCP work and wake-up included), more than everything
//! else a delivery costs, so a connection in a busy room that got one write per message would
//! spend most of its CPU on system calls. The rule: a batch that comes within `window` of the
//! connection's previous write is held until the window has passed, and whatever is queued
//! meanwhile goes out with it. The first frame after a quiet window is written at once, so a
//! connection that receives less than one frame per window (most chats) never waits. While
//! holding, the writer sleeps until the window ends or it is asked to write now
//! ([`Control::flush_requested`]): the answer to one of the connection's own calls asks, so an
//! answer is never held (and takes the held notifications with it), and so does a queue that
//! is half full; frames queued meanwhile wake nobody. A full batch ([`WRITE_BATCH`] frames),
//! and the batch right after one, is written at once: a backlog is never slowed down.
//!
//! Only listeners are held. A connection whose client sent a frame within the window is in
//! a conversation: it is waiting for what its request causes (its message's echo through
//! the room, which may arrive through Redis after the answer went out), so its batches are
//! written at once. Holding pays where it is needed, on the many sockets of a busy room that
//! only listen, and never delays a client that paces itself on what it receives.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;
use confab_shared::rpc::close;
use futures_util::{FutureExt, Sink, SinkExt};
use tokio::time::{Instant, Sleep, sleep_until};

use crate::layer::hub::{Control, Inbox};

/// Most frames written between two flushes.
pub const WRITE_BATCH: usize = 256;

/// What ended a batch that was being held back.
enum Held {
    /// Write it now.
    Flush,
    /// A close was asked for (with this code) while holding.
    Close(u16),
}

/// Runs until the queue closes, a close is requested, or the socket fails. `sink` is the
/// socket's sending half. However it ends, dropping the [`Inbox`] tells the session, so a
/// writer that failed never leaves a socket open that nobody writes to.
pub async fn run<S>(mut sink: S, mut inbox: Inbox, ping_every: Duration, window: Duration)
where
    S: Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Made once, not on every wake-up (each would join and leave the Notify's wait list).
    let control = inbox.control.clone();
    let closed = control.closed();
    let hold = sleep_until(Instant::now());
    tokio::pin!(closed, hold);
    // When the last write went out (`None`: nothing written yet), and whether it was a full
    // batch (then more is queued, and the next batch is not held either).
    let mut last_write: Option<Instant> = None;
    let mut backlog = false;
    loop {
        let code = tokio::select! {
            biased;
            code = &mut closed => code,
            first = inbox.recv() => {
                let Some(first) = first else { return };
                let mut batch = Batch::default();
                if !batch.feed(&mut sink, first).await || !batch.drain(&mut sink, &mut inbox).await {
                    return;
                }
                if !batch.full() {
                    // Let the tasks that are ready run before the write: whatever they queue
                    // for this connection now (the response to a send right behind its own
                    // broadcast, the rest of a burst) goes out in the same system call. The
                    // budget is one pass of the scheduler, not a timer.
                    tokio::task::yield_now().await;
                    if !batch.drain(&mut sink, &mut inbox).await {
                        return;
                    }
                }
                // An answer queued by now has asked for the write; that request is taken
                // here either way, so it cannot cut short a later window.
                let asked = control.flush_requested().now_or_never().is_some();
                let listening = !window.is_zero() && !control.heard_within(window);
                let due = last_write
                    .map(|at| at + window)
                    .filter(|due| listening && !asked && !backlog && !batch.full() && *due > Instant::now());
                let held = match due {
                    Some(due) => {
                        hold.as_mut().reset(due);
                        let held = wait(&control, closed.as_mut(), hold.as_mut()).await;
                        if !batch.drain(&mut sink, &mut inbox).await {
                            return;
                        }
                        held
                    }
                    None => Held::Flush,
                };
                if let Err(err) = sink.flush().await {
                    tracing::debug!(%err, "socket write failed");
                    return;
                }
                control.wrote();
                last_write = Some(Instant::now());
                backlog = batch.full();
                match held {
                    Held::Flush => continue,
                    Held::Close(code) => code,
                }
            }
            _ = ping.tick() => {
                if let Err(err) = sink.send(Message::Ping(Bytes::new())).await {
                    tracing::debug!(%err, "socket write failed");
                    return;
                }
                continue;
            }
        };
        let frame = CloseFrame { code, reason: control.close_reason().unwrap_or(reason_of(code)).into() };
        // When the client started the close, tungstenite has already queued its reply and
        // refuses a second close frame; the flush sends whichever one is pending.
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.flush().await;
        return;
    }
}

/// Holds until `due`, a request to write now, or a close.
async fn wait(control: &Control, closed: Pin<&mut impl Future<Output = u16>>, due: Pin<&mut Sleep>) -> Held {
    tokio::select! {
        biased;
        code = closed => Held::Close(code),
        () = control.flush_requested() => Held::Flush,
        () = due => Held::Flush,
    }
}

/// The frames fed since the last flush. Frames move straight from the queue into
/// tungstenite's buffer: no batch vector, which would cost every idle connection its
/// capacity (a `Utf8Bytes` is 32 bytes).
#[derive(Default)]
struct Batch {
    fed: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.fed >= WRITE_BATCH
    }

    /// Feeds one frame; `false` when the socket failed.
    async fn feed<S>(&mut self, sink: &mut S, text: Utf8Bytes) -> bool
    where
        S: Sink<Message> + Unpin,
        S::Error: std::fmt::Display,
    {
        self.fed += 1;
        match sink.feed(Message::Text(text)).await {
            Ok(()) => true,
            Err(err) => {
                tracing::debug!(%err, "socket write failed");
                false
            }
        }
    }

    /// Feeds what is queued now, up to a full batch; `false` when the socket failed.
    async fn drain<S>(&mut self, sink: &mut S, inbox: &mut Inbox) -> bool
    where
        S: Sink<Message> + Unpin,
        S::Error: std::fmt::Display,
    {
        while !self.full() {
            let Some(text) = inbox.try_recv() else { break };
            if !self.feed(sink, text).await {
                return false;
            }
        }
        true
    }
}

/// The reason phrase sent with a close code.
pub fn reason_of(code: u16) -> &'static str {
    close::ALL.iter().find(|(c, _)| *c == code).map_or("", |(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use confab_shared::rpc::RequestId;

    use super::*;
    use crate::layer::Class;
    use crate::layer::hub::{Hub, Outbox, QueueLimits};

    /// What the writer did to the socket, in order: each write is the frames flushed together.
    #[derive(Clone, Default)]
    struct Socket {
        pending: Arc<Mutex<Vec<String>>>,
        writes: Arc<Mutex<Vec<(Duration, Vec<String>)>>>,
        started: Arc<Mutex<Option<Instant>>>,
    }

    impl Socket {
        fn writes(&self) -> Vec<(Duration, Vec<String>)> {
            self.writes.lock().expect("lock").clone()
        }
    }

    impl Sink<Message> for Socket {
        type Error = std::convert::Infallible;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
            let text = match item {
                Message::Text(text) => text.as_str().to_owned(),
                Message::Close(Some(frame)) => format!("close {}", frame.code),
                other => format!("{other:?}"),
            };
            self.pending.lock().expect("lock").push(text);
            Ok(())
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            let frames = std::mem::take(&mut *self.pending.lock().expect("lock"));
            if !frames.is_empty() {
                let started = self.started.lock().expect("lock").get_or_insert_with(Instant::now).to_owned();
                self.writes.lock().expect("lock").push((started.elapsed(), frames));
            }
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.poll_flush(cx)
        }
    }

    const WINDOW: Duration = Duration::from_millis(16);

    /// A writer on a recording socket, its queue, and the socket (time starts at the first write).
    fn writer() -> (Outbox, Socket, tokio::task::JoinHandle<()>) {
        let hub = Hub::new(1);
        let (outbox, inbox) = hub.register(None, QueueLimits::frames(1024));
        let socket = Socket::default();
        *socket.started.lock().expect("lock") = Some(Instant::now());
        let task = tokio::spawn(run(socket.clone(), inbox, Duration::from_secs(3600), WINDOW));
        (outbox, socket, task)
    }

    fn event(n: usize) -> Utf8Bytes {
        format!(r#"{{"jsonrpc":"2.0","method":"room.message","params":{{"n":{n}}}}}"#).into()
    }

    fn answer(n: i64) -> Utf8Bytes {
        super::super::session::ok_frame(Some(&RequestId::Number(n)), "{}").into()
    }

    fn names(write: &(Duration, Vec<String>)) -> Vec<String> {
        write.1.iter().map(|f| if f.contains(r#""id":"#) { "answer".to_owned() } else { "event".to_owned() }).collect()
    }

    /// Advances virtual time in small steps so the writer runs between them.
    async fn pass(time: Duration) {
        let step = Duration::from_millis(1);
        let mut gone = Duration::ZERO;
        while gone < time {
            tokio::time::advance(step).await;
            tokio::task::yield_now().await;
            gone += step;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_event_after_a_quiet_window_is_written_at_once_and_later_ones_wait_for_the_window() {
        let (outbox, socket, _task) = writer();
        outbox.push(&event(1), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        assert_eq!(socket.writes().len(), 1, "the first event waits for nothing");
        assert!(socket.writes()[0].0 < WINDOW);
        // Three more, 3 ms apart, right after that write: held, then written together when
        // the window since the first write has passed.
        for n in 2..=4 {
            outbox.push(&event(n), Class::Reliable);
            pass(Duration::from_millis(3)).await;
        }
        assert_eq!(socket.writes().len(), 1, "held within the window");
        pass(WINDOW).await;
        let writes = socket.writes();
        assert_eq!(writes.len(), 2, "{:?}", writes);
        assert_eq!(writes[1].1.len(), 3, "the three held events share one write");
        assert!(writes[1].0 >= WINDOW, "not before the window closed: {:?}", writes[1].0);
        // After a quiet window, the next event goes at once again.
        pass(WINDOW * 2).await;
        outbox.push(&event(5), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        assert_eq!(socket.writes().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_is_never_held_and_releases_the_events_held_before_it() {
        let (outbox, socket, _task) = writer();
        outbox.push(&event(1), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        outbox.push(&event(2), Class::Reliable);
        pass(Duration::from_millis(2)).await;
        assert_eq!(socket.writes().len(), 1, "the second event is held");
        outbox.answer(&answer(7));
        pass(Duration::from_millis(1)).await;
        let writes = socket.writes();
        assert_eq!(writes.len(), 2, "the answer went out at once");
        assert_eq!(names(&writes[1]), vec!["event", "answer"], "in queue order");
        assert!(writes[1].0 < WINDOW);
        // An answer right after a write is not held either.
        outbox.answer(&answer(8));
        pass(Duration::from_millis(1)).await;
        assert_eq!(socket.writes().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_filling_up_is_written_without_waiting_and_a_backlog_is_not_held() {
        let (outbox, socket, _task) = writer();
        outbox.push(&event(0), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        // Past half of the queue's 1024: the writer is asked to write at once, and after a
        // full batch the rest follows without waiting for the window either.
        for n in 1..=600 {
            outbox.push(&event(n), Class::Reliable);
        }
        pass(Duration::from_millis(1)).await;
        let writes = socket.writes();
        assert_eq!(writes.iter().map(|w| w.1.len()).collect::<Vec<_>>(), vec![1, WRITE_BATCH, WRITE_BATCH, 600 - 2 * WRITE_BATCH]);
        assert!(writes.iter().all(|w| w.0 < WINDOW), "{:?}", writes.iter().map(|w| w.0).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_while_holding_writes_the_held_events_then_the_close_frame() {
        let (outbox, socket, task) = writer();
        outbox.push(&event(1), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        outbox.push(&event(2), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        outbox.close(close::TRY_AGAIN_LATER);
        pass(Duration::from_millis(1)).await;
        assert!(task.is_finished(), "the writer stopped");
        let frames: Vec<String> = socket.writes().into_iter().flat_map(|w| w.1).collect();
        assert_eq!(frames.len(), 3, "{frames:?}");
        assert_eq!(frames[2], format!("close {}", close::TRY_AGAIN_LATER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_just_sent_a_frame_is_never_held() {
        let hub = Hub::new(1);
        let (outbox, inbox) = hub.register(None, QueueLimits::frames(1024));
        let control = inbox.control.clone();
        let socket = Socket::default();
        let _task = tokio::spawn(run(socket.clone(), inbox, Duration::from_secs(3600), WINDOW));
        outbox.push(&event(1), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        // The client asks for something; what follows (its echo) is not held for the window.
        control.heard(crate::layer::hub::clock_ms());
        outbox.push(&event(2), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        assert_eq!(socket.writes().len(), 2, "written at once");
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_window_every_batch_is_written_at_once() {
        let hub = Hub::new(1);
        let (outbox, inbox) = hub.register(None, QueueLimits::frames(1024));
        let socket = Socket::default();
        let _task = tokio::spawn(run(socket.clone(), inbox, Duration::from_secs(3600), Duration::ZERO));
        for n in 0..3 {
            outbox.push(&event(n), Class::Reliable);
            pass(Duration::from_millis(1)).await;
        }
        assert_eq!(socket.writes().len(), 3);
    }
}
