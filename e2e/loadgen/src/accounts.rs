//! Confab accounts for the benchmark: a few hundred users whose tokens are reused across
//! connections (argon2id makes each signup and login deliberately slow).

use std::time::Duration;

use anyhow::anyhow;
use confab_client::shared::Credentials;
use confab_client::{Error, Rest};
use tokio::task::JoinSet;

/// Signups and logins in flight at once (the server hashes on its blocking pool).
const CONCURRENCY: usize = 8;

/// Creates `count` users named `<prefix><i>` and logs each in once; returns their tokens.
pub async fn tokens(base: &str, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    // Set-up only, before any measurement: the client library's REST part costs nothing there.
    let rest = Rest::with_timeout(base, Duration::from_secs(60))?;
    let mut tokens = Vec::with_capacity(count);
    let mut tasks = JoinSet::new();
    for i in 0..count {
        if tasks.len() >= CONCURRENCY
            && let Some(done) = tasks.join_next().await
        {
            tokens.push(done??);
        }
        let (rest, username) = (rest.clone(), format!("{prefix}{i}"));
        tasks.spawn(async move { account(&rest, &username).await });
    }
    while let Some(done) = tasks.join_next().await {
        tokens.push(done??);
    }
    Ok(tokens)
}

async fn account(rest: &Rest, username: &str) -> anyhow::Result<String> {
    let credentials = Credentials { username: username.to_owned(), password: format!("{username}-bench-password") };
    match rest.signup(&credentials).await {
        // 409: the user exists already (a reused server); logging in is enough.
        Ok(_) | Err(Error::Http { status: 409, .. }) => {}
        Err(err) => return Err(anyhow!("signup {username}: {err}")),
    }
    let tokens = rest.login(&credentials).await.map_err(|err| anyhow!("login {username}: {err}"))?;
    Ok(tokens.access_token)
}
