//! Password hashing with argon2id, off the async runtime.
//!
//! Each argon2 run fills a 19 MiB work area. Runs happen on a few dedicated threads, one per
//! core: a burst of logins queues there instead of spreading over the runtime's blocking
//! pool, where every thread would keep its own work areas in the allocator long after
//! (measured with 100 logins, 20 at a time: 444 MB of RSS before, 230 MB this way, where it
//! plateaus whatever the number of logins).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::Argon2;
use tokio::sync::{OnceCell, oneshot};

type Work = Box<dyn FnOnce() + Send>;

/// The queue of the hashing threads, started on first use.
static HASHERS: LazyLock<Mutex<Sender<Work>>> = LazyLock::new(|| {
    let (queue, work) = std::sync::mpsc::channel::<Work>();
    let work = Arc::new(Mutex::new(work));
    for i in 0..std::thread::available_parallelism().map_or(2, usize::from) {
        let work = work.clone();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || hash_worker(&work));
        if let Err(err) = spawned {
            tracing::error!(%err, "could not start a password hashing thread");
        }
    }
    Mutex::new(queue)
});

fn hash_worker(work: &Mutex<Receiver<Work>>) {
    loop {
        let next = match work.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        // A panic fails that one call (its answer channel drops), not the thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Runs one argon2 computation on the hashing threads.
async fn argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (answer, answered) = oneshot::channel();
    let job: Work = Box::new(move || {
        let _ = answer.send(work());
    });
    HASHERS
        .lock()
        .map_err(|_| anyhow::anyhow!("password hashing queue poisoned"))?
        .send(job)
        .map_err(|_| anyhow::anyhow!("no password hashing thread is running"))?;
    Ok(answered.await?)
}

/// Hashes a password (PHC string, argon2id with the crate's default cost).
pub async fn hash(password: String) -> anyhow::Result<String> {
    argon2(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Checks a password against a stored hash; a malformed hash counts as a mismatch.
pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
    argon2(move || {
        PasswordHash::new(&stored).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
}

/// The hash of a random password (made once), verified against when the user does not
/// exist, so that an unknown username takes as long as a wrong password.
pub async fn decoy_hash() -> anyhow::Result<String> {
    static DECOY: OnceCell<String> = OnceCell::const_new();
    DECOY.get_or_try_init(|| hash(uuid::Uuid::new_v4().to_string())).await.cloned()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!super::verify("wrong horse".into(), h).await.unwrap());
        assert!(!super::verify("x".into(), "not a hash".into()).await.unwrap());
    }
}
