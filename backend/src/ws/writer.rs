//! A connection's writer task: drains its outbound queue into the socket, batching frames
//! into as few writes as it can without making anyone wait for an answer.
//!
//! One write per batch: every frame already queued is fed to tungstenite's buffer before a
//! single flush, and the writer lets the scheduler run the ready tasks once before that
//! flush, so frames queued a moment apart (a send's response right behind its own
//! broadcast) share one system call.
//!
//! Fan-out is coalesced in time as well. On loopback a write costs about 3 µs of kernel time
//! whatever it carries, more than everything else a delivery costs, so a connection in a busy
//! room that got one write per message would spend most of its CPU on the system call. The
//! rule: a batch of notifications only (no response to this connection's own calls) that
//! comes within `window` of the previous write is held until the window has passed, and
//! whatever arrives meanwhile goes out with it. The first frame after a quiet window is
//! written at once, so a connection that receives less than one frame per window (most
//! chats, and every request/response exchange) never waits; a response is never held, and
//! one arriving while a batch is held releases it; a batch that reaches [`WRITE_BATCH`]
//! frames is written at once (a backlog is never slowed down).

use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;
use confab_shared::rpc::close;
use futures_util::{Sink, SinkExt};
use tokio::time::{Instant, Sleep, sleep_until};

use crate::layer::hub::Inbox;

/// Most frames written between two flushes.
pub const WRITE_BATCH: usize = 256;

/// Whether a frame answers one of the connection's own calls: a JSON-RPC response, or a
/// batch of them. The server writes every response with its `id` right after `jsonrpc`
/// (`session::ok_frame` and serde's field order both do, which the tests pin), and a
/// notification has no `id`; a batch is an array.
pub fn is_response(frame: &str) -> bool {
    const RESPONSE: &str = r#"{"jsonrpc":"2.0","id":"#;
    frame.starts_with('[') || frame.starts_with(RESPONSE)
}

/// What ended a batch that was being held back.
enum Held {
    /// Write it now.
    Flush,
    /// The queue was closed: write it, then stop.
    Ended,
    /// A close was asked for (with this code) while holding.
    Close(u16),
}

/// Runs until the queue closes, a close is requested, or the socket fails. `sink` is the
/// socket's sending half.
pub async fn run<S: Sink<Message> + Unpin>(mut sink: S, mut inbox: Inbox, ping_every: Duration, window: Duration) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Made once, not on every wake-up (each would join and leave the Notify's wait list).
    let control = inbox.control.clone();
    let closed = control.closed();
    let hold = sleep_until(Instant::now());
    tokio::pin!(closed, hold);
    // When the last write went out (`None`: nothing written yet).
    let mut last_write: Option<Instant> = None;
    loop {
        let code = tokio::select! {
            biased;
            code = &mut closed => code,
            first = inbox.rx.recv() => {
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
                let held = match last_write.map(|at| at + window) {
                    Some(due) if batch.may_wait() && due > Instant::now() => {
                        hold.as_mut().reset(due);
                        batch.hold(&mut sink, &mut inbox, closed.as_mut(), hold.as_mut()).await
                    }
                    _ => Held::Flush,
                };
                if sink.flush().await.is_err() {
                    return;
                }
                last_write = Some(Instant::now());
                match held {
                    Held::Flush => continue,
                    Held::Ended => return,
                    Held::Close(code) => code,
                }
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let frame = CloseFrame { code, reason: reason_of(code).into() };
        // When the client started the close, tungstenite has already queued its reply and
        // refuses a second close frame; the flush sends whichever one is pending.
        let _ = sink.send(Message::Close(Some(frame))).await;
        let _ = sink.flush().await;
        return;
    }
}

/// The frames fed since the last flush. Frames move straight from the queue into
/// tungstenite's buffer: no batch vector, which would cost every idle connection its
/// capacity (a `Utf8Bytes` is 32 bytes).
#[derive(Default)]
struct Batch {
    fed: usize,
    /// Whether a response to the connection's own calls is among them.
    answers: bool,
}

impl Batch {
    fn full(&self) -> bool {
        self.fed >= WRITE_BATCH
    }

    /// Whether the batch may be held for the rest of the window.
    fn may_wait(&self) -> bool {
        !self.answers && !self.full()
    }

    /// Feeds one frame; `false` when the socket failed.
    async fn feed<S: Sink<Message> + Unpin>(&mut self, sink: &mut S, text: Utf8Bytes) -> bool {
        self.answers |= is_response(text.as_str());
        self.fed += 1;
        sink.feed(Message::Text(text)).await.is_ok()
    }

    /// Feeds what is queued now, up to a full batch; `false` when the socket failed.
    async fn drain<S: Sink<Message> + Unpin>(&mut self, sink: &mut S, inbox: &mut Inbox) -> bool {
        while !self.full() {
            let Ok(text) = inbox.rx.try_recv() else { break };
            if !self.feed(sink, text).await {
                return false;
            }
        }
        true
    }

    /// Feeds what arrives until `due`, a response, a full batch, the queue's end or a close.
    async fn hold<S: Sink<Message> + Unpin>(
        &mut self,
        sink: &mut S,
        inbox: &mut Inbox,
        mut closed: Pin<&mut impl Future<Output = u16>>,
        mut due: Pin<&mut Sleep>,
    ) -> Held {
        while self.may_wait() {
            tokio::select! {
                biased;
                code = closed.as_mut() => return Held::Close(code),
                () = due.as_mut() => return Held::Flush,
                next = inbox.rx.recv() => match next {
                    Some(text) => {
                        if !self.feed(sink, text).await {
                            return Held::Ended;
                        }
                    }
                    None => return Held::Ended,
                },
            }
        }
        Held::Flush
    }
}

fn reason_of(code: u16) -> &'static str {
    close::ALL.iter().find(|(c, _)| *c == code).map_or("", |(_, reason)| reason)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll};

    use confab_shared::rpc::{ErrorObject, Notification, RequestId, Response};

    use super::*;
    use crate::layer::Class;
    use crate::layer::hub::{Hub, Outbox};

    #[test]
    fn responses_are_told_from_notifications_by_their_first_bytes() {
        let ok = serde_json::to_string(&Response::ok(Some(RequestId::Number(1)), serde_json::json!({"a": 1}))).expect("json");
        let err = serde_json::to_string(&Response::err(None, ErrorObject::rate_limited(5))).expect("json");
        let batch = serde_json::to_string(&vec![Response::ok(Some(RequestId::String("x".into())), serde_json::Value::Null)]).expect("json");
        let prebuilt = super::super::session::ok_frame(Some(&RequestId::Number(9)), "{}");
        for response in [&ok, &err, &batch, &prebuilt] {
            assert!(is_response(response), "{response}");
        }
        let notification = Notification::SessionExpiring(confab_shared::rpc::notify::SessionExpiring {
            expires_at: confab_shared::Timestamp::from_millis(0),
        })
        .to_frame();
        assert!(!is_response(&notification), "{notification}");
    }

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
        let (outbox, inbox) = hub.register(None, 1024);
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
        write.1.iter().map(|f| if is_response(f) { "answer".to_owned() } else { "event".to_owned() }).collect()
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
        outbox.push(&answer(7), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        let writes = socket.writes();
        assert_eq!(writes.len(), 2, "the answer went out at once");
        assert_eq!(names(&writes[1]), vec!["event", "answer"], "in queue order");
        assert!(writes[1].0 < WINDOW);
        // An answer right after a write is not held either.
        outbox.push(&answer(8), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        assert_eq!(socket.writes().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_is_written_without_waiting() {
        let (outbox, socket, _task) = writer();
        outbox.push(&event(0), Class::Reliable);
        pass(Duration::from_millis(1)).await;
        for n in 1..=WRITE_BATCH {
            outbox.push(&event(n), Class::Reliable);
        }
        pass(Duration::from_millis(1)).await;
        let writes = socket.writes();
        assert_eq!(writes.len(), 2, "a backlog is not slowed down");
        assert_eq!(writes[1].1.len(), WRITE_BATCH);
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
    async fn with_no_window_every_batch_is_written_at_once() {
        let hub = Hub::new(1);
        let (outbox, inbox) = hub.register(None, 1024);
        let socket = Socket::default();
        let _task = tokio::spawn(run(socket.clone(), inbox, Duration::from_secs(3600), Duration::ZERO));
        for n in 0..3 {
            outbox.push(&event(n), Class::Reliable);
            pass(Duration::from_millis(1)).await;
        }
        assert_eq!(socket.writes().len(), 3);
    }
}
