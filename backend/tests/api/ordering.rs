//! Ordering under concurrency: within a room every connection sees `room.message` in id
//! order, and ids agree with history and `sync`, however many senders race.

use std::collections::BTreeSet;

use confab_shared::Message;
use confab_shared::rpc::SyncResult;

use crate::helpers::{WsClient, join, send, spawn_app_with, sync_rooms, unique, within};

const SENDERS: usize = 5;
const PER_SENDER: usize = 40;

/// Reads `room.message` until `n` arrived in each of the two rooms; returns the ids per room
/// in arrival order.
async fn collect(ws: &mut WsClient, rooms: &[String; 2], n: usize) -> [Vec<i64>; 2] {
    let mut ids: [Vec<i64>; 2] = Default::default();
    while ids[0].len() < n || ids[1].len() < n {
        let message: Message = ws.next("room.message").await;
        let r = rooms.iter().position(|room| *room == message.room).expect("a message of a joined room");
        ids[r].push(message.id);
    }
    ids
}

fn strictly_increasing(ids: &[i64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_keep_per_room_id_order_for_every_connection() {
    let app = spawn_app_with(|c| { c.rate_per_sec = 10_000; c.write_bytes_per_sec = u32::MAX }).await;
    let rooms = [unique("race-a"), unique("race-b")];
    let mut observer = app.ws_anonymous().await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let (_, mut ws) = app.user_online(&format!("s{i}")).await;
        for room in &rooms {
            ws.ok(join(room)).await;
        }
        senders.push(ws);
    }
    for room in &rooms {
        observer.ok(join(room)).await;
    }

    // Every sender pipelines all its messages at once, alternating rooms, concurrently.
    let mut tasks = Vec::new();
    for mut ws in senders {
        let rooms = rooms.clone();
        tasks.push(tokio::spawn(async move {
            let mut requests = Vec::with_capacity(PER_SENDER);
            for i in 0..PER_SENDER {
                let room = &rooms[i % 2];
                requests.push((room.clone(), ws.request(send(room, &format!("n{i}"))).await));
            }
            let mut mine: Vec<Message> = Vec::with_capacity(PER_SENDER);
            for (_, id) in requests {
                mine.push(ws.outcome::<Message>(id).await.expect("the send succeeds"));
            }
            let seen = collect(&mut ws, &rooms, SENDERS * PER_SENDER / 2).await;
            (mine, seen)
        }));
    }
    let per_room = SENDERS * PER_SENDER / 2;
    let observed = collect(&mut observer, &rooms, per_room).await;

    let mut all: [BTreeSet<i64>; 2] = Default::default();
    for task in tasks {
        let (mine, seen) = within("a sender", task).await.expect("the sender task");
        for (r, room) in rooms.iter().enumerate() {
            let own: Vec<i64> = mine.iter().filter(|m| &m.room == room).map(|m| m.id).collect();
            assert!(strictly_increasing(&own), "a sender's messages take ids in send order: {own:?}");
            all[r].extend(own);
            assert!(strictly_increasing(&seen[r]), "a sender saw {room} out of order: {:?}", seen[r]);
            assert_eq!(seen[r], observed[r], "every connection sees the same sequence");
        }
    }
    for (r, room) in rooms.iter().enumerate() {
        assert!(strictly_increasing(&observed[r]), "the observer saw {room} out of order: {:?}", observed[r]);
        assert_eq!(observed[r].iter().copied().collect::<BTreeSet<_>>(), all[r], "the broadcast ids are the sent ones");
        let synced: SyncResult = observer.ok(sync_rooms(&[(room, 0)], None)).await;
        assert!(synced.complete);
        assert_eq!(synced.messages.iter().map(|m| m.id).collect::<Vec<_>>(), observed[r], "sync agrees with live order");
    }
}
