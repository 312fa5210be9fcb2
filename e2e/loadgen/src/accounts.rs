//! Confab accounts for the benchmark: a few hundred users whose tokens are reused across
//! connections (argon2id makes each signup and login deliberately slow).

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio::task::JoinSet;

/// Signups and logins in flight at once (the server hashes on its blocking pool).
const CONCURRENCY: usize = 8;

#[derive(Deserialize)]
struct TokenPair {
    access_token: String,
}

/// Creates `count` users named `<prefix><i>` and logs each in once; returns their tokens.
pub async fn tokens(base: &str, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut tokens = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        if tasks.len() >= CONCURRENCY
            && let Some(done) = tasks.join_next().await
        {
            tokens.push(done??);
        }
        let (client, base, username) = (client.clone(), base.to_owned(), format!("{prefix}{i}"));
        tasks.spawn(async move { account(&client, &base, &username).await });
    }
    while let Some(done) = tasks.join_next().await {
        tokens.push(done??);
    }
    Ok(tokens)
}

async fn account(client: &reqwest::Client, base: &str, username: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "username": username, "password": format!("{username}-bench-password") });
    let signup = client.post(format!("{base}/api/auth/signup")).json(&body).send().await.context("signup")?;
    // 409: the user exists already (a reused server); logging in is enough.
    if !signup.status().is_success() && signup.status() != reqwest::StatusCode::CONFLICT {
        bail!("signup {username}: {}", signup.status());
    }
    let login = client.post(format!("{base}/api/auth/login")).json(&body).send().await.context("login")?;
    if !login.status().is_success() {
        bail!("login {username}: {}", login.status());
    }
    Ok(login.json::<TokenPair>().await?.access_token)
}
