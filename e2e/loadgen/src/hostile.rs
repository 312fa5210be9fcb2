//! The hostile clients of the soak ([`crate::soak`]): each one loops over one attack for the
//! whole attack phase and counts what the server did about it (a close code, an HTTP status,
//! a JSON-RPC error code). Refusals are the expected outcome, never a loss.
//!
//! Hostile client `h` does behaviour `h % 6`:
//! 0. **DM flood**: direct messages of 4 000 control characters (~24 KB once JSON-escaped)
//!    at 30/s with a burst past the rate limit every 5 s, alternately to well-behaved
//!    victims and to the non-reading hostile users (so those fill their queue).
//! 1. **Non-reader**: a socket with a 4 KiB receive buffer joins every room and asks, twice
//!    a second, for a batch of 20 large answers (`room.history` of 100, `sync` of every room
//!    from 0) and never reads; reconnects after it is closed.
//! 2. **Reaction flood**: reactions on the rooms' latest messages, as fast as the rate limit
//!    lets through and beyond: ever new emoji, and odd ones (control, invisible, too long).
//! 3. **`sync` amplification**: one frame naming 4 999 rooms, one naming 5 001, one larger
//!    than the frame limit (reconnects after the 1009).
//! 4. **Socket caps**: anonymous sockets from one address, past 256 in all; and 40 sockets
//!    of one user, past 32.
//! 5. **Login guessing and sign-up flood**: 30 concurrent wrong-password logins, then a
//!    burst of sign-ups of new names and of a taken one, from one address.
//!
//! Hostile clients connect from 127.0.66.x (127.0.67.x for the per-user cap); well-behaved
//! ones from 127.0.0.1–8, so the per-address cap never touches them.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::people;
use crate::soak::{Conn, Event, Phase, Stage, replies, request};

const BEHAVIOURS: [&str; 6] = ["1 DM flood", "2 non-reader", "3 reaction flood", "4 sync amplification", "5 socket caps", "6 logins and sign-ups"];

fn source(behaviour: usize, h: usize) -> IpAddr {
    if behaviour == 4 && h % 12 >= 6 {
        // The per-user cap: an address per attacker, so the per-address cap plays no part.
        IpAddr::V4(Ipv4Addr::new(127, 0, 67, 1 + (h % 250) as u8))
    } else {
        IpAddr::V4(Ipv4Addr::new(127, 0, 66, 1 + behaviour as u8))
    }
}

/// Runs hostile client `h` until the phase stops.
pub async fn run(h: usize, user: String, token: String, ctx: Arc<Phase>, victims: Vec<String>, hostiles: Vec<(String, String)>) {
    let behaviour = h % BEHAVIOURS.len();
    let name = BEHAVIOURS[behaviour];
    let src = source(behaviour, h);
    while ctx.stage() == Stage::Go {
        let outcome = match behaviour {
            0 => {
                let non_readers: Vec<String> = hostiles.iter().enumerate().filter(|(i, _)| i % BEHAVIOURS.len() == 1).map(|(_, u)| u.0.clone()).collect();
                dm_flood(&ctx, name, src, &token, &victims, &non_readers).await
            }
            1 => non_reader(&ctx, name, src, &token).await,
            2 => reactions(&ctx, name, src, &token, h).await,
            3 => sync_amplification(&ctx, name, src, &token).await,
            4 if h % 12 < 6 => per_address(&ctx, name, src).await,
            4 => per_user(&ctx, name, src, &token).await,
            _ => logins(&ctx, name, src, &user, &victims, h).await,
        };
        if let Err(outcome) = outcome {
            ctx.count(name, outcome);
        }
        pause(&ctx, Duration::from_millis(500)).await;
    }
}

/// Sleeps `d`, or less when the phase stops.
async fn pause(ctx: &Phase, d: Duration) {
    let mut stage = ctx.stage.clone();
    let _ = tokio::time::timeout(d, stage.wait_for(|s| *s != Stage::Go)).await;
}

fn code_of(reply: &crate::soak::Reply) -> String {
    match &reply.error {
        Some(e) => e.code.to_string(),
        None => "ok".to_owned(),
    }
}

/// Reads until the first answer (counted under `name`), at most `limit`; answers pings.
/// `Ok(true)`: answered.
async fn first_answer(ctx: &Phase, conn: &mut Conn, name: &'static str, limit: Duration) -> Result<bool, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::select! {
            ev = conn.next() => ev,
            () = tokio::time::sleep_until(deadline) => return Ok(false),
        };
        match event {
            Event::Text(t) => {
                if let Some(r) = replies(&t).into_iter().find(|r| r.id.is_some()) {
                    ctx.count(name, format!("answer {}", code_of(&r)));
                    return Ok(true);
                }
            }
            Event::Ping(p) => conn.pong(&p).await.map_err(|_| "closed 1006".to_owned())?,
            Event::Closed(code) => return Err(format!("closed {code}")),
        }
    }
}

/// 0: direct messages of 4 000 control characters.
async fn dm_flood(ctx: &Phase, name: &'static str, src: IpAddr, token: &str, victims: &[String], non_readers: &[String]) -> Result<(), String> {
    let mut conn = Conn::open(ctx, src, Some(token), None).await?;
    // U+0001–U+0008 and U+000E–U+001F: control characters that are not whitespace (so
    // nothing is trimmed), six bytes each once JSON-escaped.
    let controls: Vec<char> = (1u32..=8).chain(14..=31).filter_map(char::from_u32).collect();
    let text: String = (0..4000).map(|i| controls[i % controls.len()]).collect();
    let mut id = 0u64;
    let mut to_of = std::collections::HashMap::new();
    let mut last_burst = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(33));
    while ctx.stage() == Stage::Go {
        tokio::select! {
            _ = tick.tick() => {
                // Every 5 s a burst of 120 at once: past the 100 the rate limit lets through.
                let n = if last_burst.elapsed() >= Duration::from_secs(5) { 120 } else { 1 };
                if n > 1 {
                    last_burst = Instant::now();
                }
                for _ in 0..n {
                    id += 1;
                    let to = if id % 2 == 0 || non_readers.is_empty() { &victims[(id / 2) as usize % victims.len()] } else { &non_readers[(id / 2) as usize % non_readers.len()] };
                    to_of.insert(id, to.clone());
                    conn.send(&request(id, "dm.send", json!({"to": to, "text": text}))).await.map_err(|_| "closed 1006".to_owned())?;
                }
            }
            ev = conn.next() => match ev {
                Event::Text(t) => dm_answers(ctx, name, &t, &mut to_of, victims),
                Event::Ping(p) => conn.pong(&p).await.map_err(|_| "closed 1006".to_owned())?,
                Event::Closed(code) => return Err(format!("closed {code}")),
            },
        }
    }
    // The answers still on their way: their messages are stored, so victims must have them.
    while !to_of.is_empty() {
        match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Event::Text(t)) => dm_answers(ctx, name, &t, &mut to_of, victims),
            Ok(Event::Ping(p)) => {
                let _ = conn.pong(&p).await;
            }
            Ok(Event::Closed(code)) => return Err(format!("closed {code}")),
            Err(_) => {
                ctx.count(name, "answers missing at the end");
                break;
            }
        }
    }
    Ok(())
}

/// Counts the answers to `dm.send` and records the stored ids of those to victims: the
/// messages each victim must have received live or by `sync`.
fn dm_answers(ctx: &Phase, name: &'static str, text: &[u8], to_of: &mut std::collections::HashMap<u64, String>, victims: &[String]) {
    for r in replies(text) {
        let Some(rid) = r.id else { continue };
        ctx.count(name, format!("answer {}", code_of(&r)));
        let to = to_of.remove(&rid);
        let dm = r.result.as_ref().and_then(|m| m.get("id")).and_then(Value::as_i64);
        if let (Some(to), Some(dm)) = (to, dm)
            && victims.contains(&to)
        {
            ctx.shared().acked_dm.entry(to).or_default().push(dm);
        }
    }
}

/// 1: a socket that asks for large answers and never reads.
async fn non_reader(ctx: &Phase, name: &'static str, src: IpAddr, token: &str) -> Result<(), String> {
    let mut conn = Conn::open(ctx, src, Some(token), Some(4096)).await?;
    ctx.count(name, "connected");
    let rooms = &ctx.rooms;
    for (k, chunk) in rooms.chunks(20).enumerate() {
        let batch: Vec<Value> = chunk.iter().enumerate().map(|(j, r)| json!({"jsonrpc": "2.0", "id": 1000 + k * 20 + j, "method": "room.join", "params": {"room": r, "history": 0}})).collect();
        conn.send(Value::Array(batch).to_string().as_bytes()).await.map_err(|_| "closed 1006".to_owned())?;
    }
    let every_room: serde_json::Map<String, Value> = rooms.iter().map(|r| (r.clone(), json!(0))).collect();
    let mut n = 0usize;
    let started = Instant::now();
    while ctx.stage() == Stage::Go {
        n += 1;
        let batch: Vec<Value> = (0..20)
            .map(|j| {
                let id = 10_000 + n * 20 + j;
                if j % 2 == 0 {
                    json!({"jsonrpc": "2.0", "id": id, "method": "room.history", "params": {"room": rooms[(n + j) % rooms.len()], "limit": 100}})
                } else {
                    json!({"jsonrpc": "2.0", "id": id, "method": "sync", "params": {"rooms": every_room}})
                }
            })
            .collect();
        let frame = Value::Array(batch).to_string();
        match tokio::time::timeout(Duration::from_secs(1), conn.send(frame.as_bytes())).await {
            Ok(Ok(())) => ctx.count(name, "batch written"),
            // The server stopped reading it (back-pressure): TCP holds the writer.
            Err(_) => ctx.count(name, "write blocked 1 s (server stopped reading)"),
            Ok(Err(_)) => {
                let code = conn.close_code(Duration::from_secs(5)).await;
                ctx.count(name, format!("evicted after {:.0} s", started.elapsed().as_secs_f64().ceil()));
                return Err(code.map_or("closed (no close frame read)".to_owned(), |c| format!("closed {c}")));
            }
        }
        // Never reads: a close shows up as a failed write.
        pause(ctx, Duration::from_millis(500)).await;
    }
    // At the end it reads what the server still holds for it, to learn how it ended.
    match conn.close_code(Duration::from_secs(3)).await {
        Some(1006) => Err("reset at the end after reading what was queued (closed by the server while unread)".to_owned()),
        Some(code) => Err(format!("closed {code} (read at the end)")),
        None => {
            ctx.count(name, "still open at the end");
            Ok(())
        }
    }
}

/// 2: reactions past every cap.
async fn reactions(ctx: &Phase, name: &'static str, src: IpAddr, token: &str, h: usize) -> Result<(), String> {
    let mut conn = Conn::open(ctx, src, Some(token), None).await?;
    let rooms: Vec<&String> = ctx.rooms.iter().skip(h % 7).step_by(7).take(10).collect();
    let batch: Vec<Value> = rooms.iter().enumerate().map(|(j, r)| json!({"jsonrpc": "2.0", "id": 1 + j, "method": "room.join", "params": {"room": r, "history": 5}})).collect();
    conn.send(Value::Array(batch).to_string().as_bytes()).await.map_err(|_| "closed 1006".to_owned())?;
    let odd = ["\u{7}", "\u{200b}", "a b", "xxxxxxxxxxxxxxxxx", "\u{202e}x", "\u{feff}", "\n"];
    let mut recent: Vec<i64> = Vec::new();
    let remember = |r: &crate::soak::Reply, recent: &mut Vec<i64>| {
        let mut ids = Vec::new();
        if r.method.as_deref() == Some("room.message") {
            ids.extend(r.params.as_ref().and_then(|p| p.get("id")).and_then(Value::as_i64));
        }
        if let Some(history) = r.result.as_ref().and_then(|x| x.get("history")).and_then(Value::as_array) {
            ids.extend(history.iter().filter_map(|m| m.get("id")?.as_i64()));
        }
        recent.extend(ids);
        let excess = recent.len().saturating_sub(20);
        recent.drain(..excess);
    };
    let mut id = 100u64;
    let mut tick = tokio::time::interval(Duration::from_millis(15));
    // One message at a time, for 2 s: enough reactions to pass its caps.
    let (mut target, mut since) = (None, Instant::now());
    while ctx.stage() == Stage::Go {
        tokio::select! {
            _ = tick.tick() => {
                if target.is_none() || since.elapsed() > Duration::from_secs(2) {
                    target = recent.last().copied();
                    since = Instant::now();
                }
                let Some(target) = target else { continue };
                id += 1;
                let emoji = if id % 5 == 0 {
                    odd[(id / 5) as usize % odd.len()].to_owned()
                } else {
                    // Ever new emoji: U+1F300 onwards, past the 20 distinct a message may hold.
                    char::from_u32(0x1F300 + (id % 700) as u32).map_or_else(|| "x".to_owned(), String::from)
                };
                conn.send(&request(id, "message.react", json!({"id": target, "emoji": emoji, "on": id % 11 != 0}))).await.map_err(|_| "closed 1006".to_owned())?;
            }
            ev = conn.next() => match ev {
                Event::Text(t) => {
                    for r in replies(&t) {
                        if r.id.is_some_and(|i| i >= 100) {
                            ctx.count(name, format!("answer {}", code_of(&r)));
                        }
                        remember(&r, &mut recent);
                    }
                }
                Event::Ping(p) => conn.pong(&p).await.map_err(|_| "closed 1006".to_owned())?,
                Event::Closed(code) => return Err(format!("closed {code}")),
            },
        }
    }
    Ok(())
}

/// 3: `sync` naming thousands of rooms, past the count limit, past the frame limit.
async fn sync_amplification(ctx: &Phase, name: &'static str, src: IpAddr, token: &str) -> Result<(), String> {
    let mut conn = Conn::open(ctx, src, Some(token), None).await?;
    let frame = |id: u64, rooms: usize, len: usize| {
        let mut map = serde_json::Map::new();
        for r in &ctx.rooms {
            map.insert(r.clone(), json!(0));
        }
        for k in 0..rooms.saturating_sub(ctx.rooms.len()) {
            map.insert(format!("{:0>len$}", k.to_string(), len = len), json!(0));
        }
        request(id, "sync", json!({"rooms": map}))
    };
    let (fits, too_many, too_big) = (frame(1, 4_999, 6), frame(2, 5_001, 6), frame(3, 9_000, 12));
    let mut turn = 0u64;
    while ctx.stage() == Stage::Go {
        turn += 1;
        let (text, label) = match turn % 3 {
            1 => (&fits, "4 999 rooms"),
            2 => (&too_many, "5 001 rooms"),
            _ => (&too_big, "a frame past 64 KiB"),
        };
        conn.send(text).await.map_err(|_| "closed 1006".to_owned())?;
        let t = Instant::now();
        match first_answer(ctx, &mut conn, name, Duration::from_secs(5)).await {
            // In a few buckets: the order of magnitude is what matters.
            Ok(true) => {
                let ms = t.elapsed().as_millis();
                let bucket = [50, 200, 1000].into_iter().find(|&b| ms <= b).map_or_else(|| "over 1 s".to_owned(), |b| format!("≤ {b} ms"));
                ctx.count(name, format!("{label} answered {bucket}"));
            }
            Ok(false) => ctx.count(name, format!("{label}: no answer within 5 s")),
            Err(closed) => {
                ctx.count(name, format!("{label}: {closed}"));
                return Ok(());
            }
        }
        pause(ctx, Duration::from_millis(200)).await;
    }
    Ok(())
}

/// 4a: anonymous sockets from one address, past the per-address cap.
async fn per_address(ctx: &Phase, name: &'static str, src: IpAddr) -> Result<(), String> {
    let mut held = Vec::new();
    let mut refused = 0;
    // Up to 300 from one address, past the cap of 256 even alone; 20 refusals show it.
    for _ in 0..300 {
        match Conn::open(ctx, src, None, None).await {
            Ok(c) => {
                ctx.count(name, "per address: opened");
                held.push(c);
            }
            Err(why) => {
                ctx.count(name, format!("per address: {why}"));
                refused += 1;
            }
        }
        if ctx.stage() != Stage::Go || refused >= 20 {
            break;
        }
    }
    pause(ctx, Duration::from_secs(2)).await;
    drop(held);
    Ok(())
}

/// 4b: one user's sockets past the per-user cap.
async fn per_user(ctx: &Phase, name: &'static str, src: IpAddr, token: &str) -> Result<(), String> {
    let mut held = Vec::new();
    for _ in 0..40 {
        match Conn::open(ctx, src, Some(token), None).await {
            Ok(c) => {
                ctx.count(name, "per user: opened");
                held.push(c);
            }
            Err(refused) => ctx.count(name, format!("per user: {refused}")),
        }
    }
    pause(ctx, Duration::from_secs(2)).await;
    drop(held);
    // The server learns of the closes a moment later; until then the cap still counts them.
    pause(ctx, Duration::from_millis(500)).await;
    Ok(())
}

fn http_from(src: IpAddr) -> Result<reqwest::Client, String> {
    reqwest::Client::builder().local_address(src).timeout(Duration::from_secs(30)).build().map_err(|e| format!("http client: {e}"))
}

/// 5: concurrent wrong-password logins, then a sign-up flood.
async fn logins(ctx: &Phase, name: &'static str, src: IpAddr, user: &str, victims: &[String], h: usize) -> Result<(), String> {
    let http = http_from(src)?;
    let base = format!("http://{}", ctx.addr);
    let target = if h % 2 == 0 { user.to_owned() } else { victims[h % victims.len()].clone() };
    let guesses = (0..30).map(|k| {
        let (http, url, body) = (http.clone(), format!("{base}/api/auth/login"), json!({"username": target, "password": format!("guess-{k}")}));
        async move { http.post(url).json(&body).send().await.map(|r| r.status().as_u16()) }
    });
    for status in futures_join(guesses).await {
        ctx.count(name, format!("wrong login: {}", status.map_or_else(|e| format!("error {e}"), |s| s.to_string())));
    }
    let stamp = crate::clock::now_ns();
    for k in 0..10 {
        let fresh = format!("sf{h}x{stamp}x{k}");
        let username = if k % 3 == 0 { user.to_owned() } else { fresh.chars().take(32).collect() };
        let status = http.post(format!("{base}/api/auth/signup")).json(&json!({"username": username, "password": people::PASSWORD})).send().await.map(|r| r.status().as_u16());
        let label = if k % 3 == 0 { "sign-up of a taken name" } else { "sign-up" };
        ctx.count(name, format!("{label}: {}", status.map_or_else(|e| format!("error {e}"), |s| s.to_string())));
    }
    Ok(())
}

/// Runs futures concurrently on this thread and collects their outputs in order.
async fn futures_join<F: std::future::Future + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: 'static,
{
    let handles: Vec<_> = futures.map(tokio::task::spawn_local).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

/// A real user logs in (correct password, an address of its own) during the attack;
/// `ok in …` or why not. A 503 (hashing queue full) is retried after its `Retry-After`.
pub async fn real_login(addr: SocketAddr, user: &str) -> String {
    let Ok(http) = http_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))) else { return "no HTTP client".to_owned() };
    let t = Instant::now();
    let mut busy = 0;
    while t.elapsed() < Duration::from_secs(30) {
        let response = http.post(format!("http://{addr}/api/auth/login")).json(&json!({"username": user, "password": people::PASSWORD})).send().await;
        match response.map(|r| r.status().as_u16()) {
            Ok(200) => return format!("ok in {:.2} s ({busy} answers 503 first)", t.elapsed().as_secs_f64()),
            Ok(503) => {
                busy += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok(status) => return format!("refused with {status}"),
            Err(err) => return format!("failed: {err}"),
        }
    }
    format!("not within 30 s ({busy} answers 503)")
}

/// The Markdown legend of the behaviours, for the report.
pub fn legend() -> String {
    let mut md = String::from("\nBehaviours (hostile client h does behaviour h mod 6): ");
    let _ = write!(
        md,
        "1: direct messages of 4 000 control characters (~24 KB escaped) at 30/s with a 120-call burst every 5 s, to well-behaved victims (one user in 20) and to the non-readers; \
         2: a socket with a 4 KiB receive buffer joins every room and writes a batch of 20 `room.history`/`sync` calls every 0.5 s, never reading; \
         3: reactions every 15 ms on the rooms' latest messages, ever new emoji and odd ones (control, invisible, whitespace, 17 characters); \
         4: `sync` of 4 999 rooms, of 5 001 rooms, and a frame past 64 KiB, in turn; \
         5: up to 300 anonymous sockets per attacker from one address (until 20 are refused), held 2 s, and 40 sockets of one user (past 32); \
         6: 30 concurrent wrong-password logins, then 10 sign-ups (a third of them of a taken name), from one address. \
         Answer codes: -32029 rate limited, -32009 conflict (reaction caps), -32602 invalid params; close 1009 frame too big, 1013 evicted.\n"
    );
    md
}
