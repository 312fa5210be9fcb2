//! Private messages: the delivery receipt, who is notified, offline recipients, history,
//! nonces and read cursors.

use confab_shared::{DirectMessage, TokenPair};
use confab_shared::rpc::notify::ReadCursor;
use confab_shared::rpc::{DmHistoryParams, DmReadParams, DmSendParams, EchoParams};

use crate::helpers::{TestApp, WsClient, assert_code, assert_invalid_param, dm, spawn_app, sync_rooms, unique};

fn dm_history(with: &str, before: Option<i64>, limit: Option<u32>) -> DmHistoryParams {
    DmHistoryParams { with: with.to_owned(), before, limit }
}

fn ids(dms: &[DirectMessage]) -> Vec<i64> {
    dms.iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn a_direct_message_reaches_every_tab_of_the_recipient_and_the_senders_other_tabs() {
    let app = spawn_app().await;
    let ann = app.signup_and_login(&unique("ann")).await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let (mut ann1, mut ann2) = (app.ws(&ann.access_token).await, app.ws(&ann.access_token).await);
    let (mut bob1, mut bob2) = (app.ws(&bob.access_token).await, app.ws(&bob.access_token).await);
    let (_, mut carl) = app.user_online("carl").await;

    let receipt = ann1.ok(dm(&bob.user.username, "  psst  ")).await;

    assert_eq!(receipt.from, ann.user.username);
    assert_eq!(receipt.to, bob.user.username);
    assert_eq!(receipt.text, "psst");
    assert!(receipt.id > 0);
    assert_eq!(bob1.next::<DirectMessage>("dm.message").await, receipt);
    assert_eq!(bob2.next::<DirectMessage>("dm.message").await, receipt);
    assert_eq!(ann2.next::<DirectMessage>("dm.message").await, receipt, "the sender's other tab");
    ann1.assert_no("dm.message").await;
    carl.assert_no("dm.message").await;

    let reply = bob2.ok(dm(&ann.user.username, "what?")).await;
    assert_eq!(ann1.next::<DirectMessage>("dm.message").await, reply);
    assert_eq!(ann2.next::<DirectMessage>("dm.message").await, reply);
    assert_eq!(bob1.next::<DirectMessage>("dm.message").await, reply);
}

#[tokio::test]
async fn a_direct_message_to_an_offline_user_waits_in_history_and_sync() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let bob = app.signup_and_login(&unique("bob")).await;

    let first = ann_ws.ok(dm(&bob.user.username, "are you there?")).await;
    let second = ann_ws.ok(dm(&bob.user.username.to_uppercase(), "ping")).await;
    assert_eq!(second.to, bob.user.username, "recipients are found case-insensitively");

    let mut bob_ws = app.ws(&bob.access_token).await;
    let page = bob_ws.ok(dm_history(&ann.user.username, None, None)).await;
    assert_eq!(page, vec![first.clone(), second.clone()]);
    let caught_up = bob_ws.ok(sync_rooms(&[], Some(0))).await;
    assert_eq!(caught_up.dms, vec![first.clone(), second.clone()]);
    assert!(caught_up.messages.is_empty() && caught_up.complete);
    let after_first = bob_ws.ok(sync_rooms(&[], Some(first.id))).await;
    assert_eq!(after_first.dms, vec![second]);
    bob_ws.assert_no("dm.message").await;
}

#[tokio::test]
async fn dm_history_pages_back_through_both_directions_of_a_conversation() {
    let app = spawn_app().await;
    let (ann, mut ann_ws) = app.user_online("ann").await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let (_, mut carl_ws) = app.user_online("carl").await;
    let mut sent = Vec::new();
    for i in 0..12 {
        let message = if i % 2 == 0 {
            ann_ws.ok(dm(&bob.user.username, &format!("a{i}"))).await
        } else {
            bob_ws.ok(dm(&ann.user.username, &format!("b{i}"))).await
        };
        sent.push(message);
        // Someone else's conversation must not leak into this one.
        carl_ws.ok(dm(&ann.user.username, "unrelated")).await;
    }

    let latest = ann_ws.ok(dm_history(&bob.user.username, None, Some(5))).await;
    let older = ann_ws.ok(dm_history(&bob.user.username, Some(latest[0].id), Some(5))).await;
    let oldest = ann_ws.ok(dm_history(&bob.user.username, Some(older[0].id), Some(5))).await;

    assert_eq!(latest, sent[7..]);
    assert_eq!(older, sent[2..7]);
    assert_eq!(oldest, sent[..2]);
    assert_eq!(ids(&bob_ws.ok(dm_history(&ann.user.username, None, None)).await), ids(&sent), "the same from bob's side");
    assert_invalid_param(&ann_ws.fail(dm_history(&bob.user.username, None, Some(0))).await, "limit");
    assert_invalid_param(&ann_ws.fail(dm_history(&bob.user.username, None, Some(101))).await, "limit");
    assert_code(&ann_ws.fail(dm_history(&unique("nobody"), None, None)).await, -32004);
    assert_invalid_param(&ann_ws.fail(dm_history("no way!", None, None)).await, "with");
}

#[tokio::test]
async fn dm_send_validates_the_recipient_and_the_text() {
    let app = spawn_app().await;
    let (ann, mut ws) = app.user_online("ann").await;
    let bob = app.signup_and_login(&unique("bob")).await;

    assert_invalid_param(&ws.fail(dm(&ann.user.username, "note to self")).await, "to");
    assert_code(&ws.fail(dm(&unique("nobody"), "hello?")).await, -32004);
    assert_invalid_param(&ws.fail(dm("x", "hello?")).await, "to");
    assert_invalid_param(&ws.fail(dm(&bob.user.username, " \n ")).await, "text");
    assert_invalid_param(&ws.fail(dm(&bob.user.username, &"y".repeat(4001))).await, "text");
    ws.ok(dm(&bob.user.username, &"y".repeat(4000))).await;
}

#[tokio::test]
async fn a_repeated_dm_nonce_returns_the_first_receipt_without_a_second_delivery() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (bob, mut bob_ws) = app.user_online("bob").await;
    let to = bob.user.username.clone();
    let with_nonce = |text: &str| DmSendParams { to: to.clone(), text: text.to_owned(), nonce: Some("retry-7".into()) };

    let first = ann.ok(with_nonce("hello")).await;
    let repeat = ann.ok(with_nonce("  hello ")).await;
    let after = ann.ok(dm(&to, "after")).await;

    assert_eq!(repeat, first);
    assert_eq!(bob_ws.next::<DirectMessage>("dm.message").await, first);
    assert_eq!(bob_ws.next::<DirectMessage>("dm.message").await, after);
    let page = ann.ok(dm_history(&to, None, None)).await;
    assert_eq!(page, vec![first, after]);
}

#[tokio::test]
async fn a_dm_nonce_reused_for_another_recipient_or_text_is_a_conflict_and_delivers_nothing() {
    let app = spawn_app().await;
    let (_, mut ann) = app.user_online("ann").await;
    let (bob, _bob_ws) = app.user_online("bob").await;
    let (carol, mut carol_ws) = app.user_online("carol").await;
    let send = |to: &str, text: &str| DmSendParams { to: to.to_owned(), text: text.to_owned(), nonce: Some("N1".into()) };
    let (bob, carol) = (bob.user.username, carol.user.username);
    let first = ann.ok(send(&bob, "for bob")).await;

    for reused in [send(&carol, "for carol"), send(&carol, "for bob"), send(&bob, "changed")] {
        let err = ann.fail(reused).await;
        assert_code(&err, -32009);
        assert_eq!(err.data.as_ref().and_then(|d| d.get("field")), Some(&serde_json::json!("nonce")), "{err:?}");
        assert_eq!(err.message, "nonce already used for a different message");
    }

    carol_ws.assert_no("dm.message").await;
    assert_eq!(ann.ok(dm_history(&carol, None, None)).await, Vec::<DirectMessage>::new(), "nothing was stored for carol");
    assert_eq!(ann.ok(dm_history(&bob, None, None)).await, vec![first.clone()]);
    assert_eq!(ann.ok(send(&bob, "for bob")).await, first, "the retry still gets the first");
}

/// Ann online, and Bob with two sockets, the second known to be ready (so it hears what
/// the first does).
async fn ann_and_bob_in_two_tabs(app: &TestApp) -> (TokenPair, WsClient, TokenPair, WsClient, WsClient) {
    let (ann, ann_ws) = app.user_online("ann").await;
    let bob = app.signup_and_login(&unique("bob")).await;
    let tab1 = app.ws(&bob.access_token).await;
    let mut tab2 = app.ws(&bob.access_token).await;
    tab2.ok(EchoParams { text: "ready".into() }).await;
    (ann, ann_ws, bob, tab1, tab2)
}

#[tokio::test]
async fn dm_read_moves_the_cursor_no_further_than_the_newest_message() {
    let app = spawn_app().await;
    let (ann, mut ann_ws, bob, mut tab1, mut tab2) = ann_and_bob_in_two_tabs(&app).await;
    let with = ann.user.username.clone();
    let first = ann_ws.ok(dm(&bob.user.username, "one")).await;

    tab1.ok(DmReadParams { with: with.clone(), id: i64::MAX }).await;
    assert_eq!(tab2.next::<ReadCursor>("read.moved").await, ReadCursor::Dm { with: with.clone(), id: first.id });

    // A later message is unread: reading it moves the cursor again.
    let second = ann_ws.ok(dm(&bob.user.username, "two")).await;
    tab1.ok(DmReadParams { with: with.clone(), id: second.id }).await;
    assert_eq!(tab2.next::<ReadCursor>("read.moved").await, ReadCursor::Dm { with, id: second.id });
}

#[tokio::test]
async fn dm_read_moves_the_cursor_forward_and_tells_the_readers_other_tabs() {
    let app = spawn_app().await;
    let (ann, mut ann_ws, bob, mut tab1, mut tab2) = ann_and_bob_in_two_tabs(&app).await;
    let first = ann_ws.ok(dm(&bob.user.username, "one")).await;
    let second = ann_ws.ok(dm(&bob.user.username, "two")).await;

    tab1.ok(DmReadParams { with: ann.user.username.clone(), id: second.id }).await;

    let moved: ReadCursor = tab2.next("read.moved").await;
    assert_eq!(moved, ReadCursor::Dm { with: ann.user.username.clone(), id: second.id });
    tab1.assert_no("read.moved").await;
    ann_ws.assert_no("read.moved").await;
    // Backwards is accepted and ignored.
    tab1.ok(DmReadParams { with: ann.user.username.clone(), id: first.id }).await;
    tab2.assert_no("read.moved").await;
    assert_code(&tab1.fail(DmReadParams { with: unique("nobody"), id: 1 }).await, -32004);
}
