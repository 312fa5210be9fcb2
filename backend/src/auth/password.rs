//! Password hashing with argon2id (OWASP parameters: 19 MiB, t = 2, p = 1), off the async
//! runtime, in bounded memory, with a bounded queue.
//!
//! Each argon2 run fills a 19 MiB work area. Runs happen on a few dedicated threads, and each
//! thread allocates its work area once and reuses it for every hash
//! (`hash_password_into_with_memory`): a burst of logins never allocates, so the allocator
//! has nothing to keep afterwards. (Allocating per run, glibc raised its mmap threshold after
//! the first free and kept ~20 MiB per thread arena: 400-450 MB of RSS after 5 000 logins.)
//!
//! Admission is bounded: at most `threads + queue` runs are admitted at once; beyond that
//! [`HashError::Busy`] answers immediately (503 with `Retry-After`) instead of letting
//! requests pile up behind each other. Nothing on the socket path hashes: sockets
//! authenticate with a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, oneshot};

/// The largest `m` (KiB) of a stored hash this server verifies (and `confab user import`
/// accepts): a hash from elsewhere with a huge cost must not make a thread allocate it.
pub const MAX_M_COST_KIB: u32 = 64 * 1024;
/// What a refused caller is told to wait: one queue's worth of hashes takes well under that.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The work area of one hashing thread, grown to the largest cost it has met.
type Memory = Vec<Block>;
type Work = Box<dyn FnOnce(&mut Memory) + Send>;

/// Why a hashing call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full: try again after `RETRY_AFTER_SECS`.
    #[error("password hashing is at capacity")]
    Busy,
    /// The hashing threads are gone or the computation failed.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The hashing threads and their admission control; one per server, in `AppState`.
pub struct Hasher {
    /// Jobs for the threads; admission is bounded by `admitted`, so this never grows past it.
    queue: Mutex<Sender<Work>>,
    /// `threads + queue` permits: one per admitted run, released when the run ends.
    admitted: Arc<Semaphore>,
    /// The hash of a random password, verified against for unknown usernames.
    decoy: OnceCell<String>,
    /// Argon2 computations started (`confab_password_hashes_total`): how a test, or an
    /// operator, sees that throttled attempts never reached a hashing thread.
    runs: Arc<AtomicU64>,
}

/// An admitted slot on the hashing threads; the run it was taken for releases it.
pub struct Reservation {
    /// Held, never read: dropping it frees the slot.
    _permit: OwnedSemaphorePermit,
}

impl Hasher {
    /// Starts `threads` hashing threads (at least one) admitting `queue` waiting runs.
    pub fn start(threads: usize, queue: usize) -> Arc<Self> {
        let threads = threads.max(1);
        let (sender, work) = std::sync::mpsc::channel::<Work>();
        let work = Arc::new(Mutex::new(work));
        for i in 0..threads {
            let work = work.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || hash_worker(&work));
            if let Err(err) = spawned {
                tracing::error!(%err, "could not start a password hashing thread");
            }
        }
        Arc::new(Self {
            queue: Mutex::new(sender),
            admitted: Arc::new(Semaphore::new(threads + queue)),
            decoy: OnceCell::new(),
            runs: Arc::default(),
        })
    }

    /// The default size for this machine: one thread per core, at most four (each keeps a
    /// 19 MiB work area for good).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(2, usize::from).min(4)
    }

    /// Takes a slot without running anything, or `None` when all are taken. The runs below
    /// take theirs this way; tests hold slots to fill the queue deterministically.
    pub fn try_reserve(&self) -> Option<Reservation> {
        self.admitted.clone().try_acquire_owned().ok().map(|permit| Reservation { _permit: permit })
    }

    /// Argon2 computations started so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs one argon2 computation on the hashing threads, or refuses at once when full.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&mut Memory) -> T + Send + 'static) -> Result<T, HashError> {
        let slot = self.try_reserve().ok_or(HashError::Busy)?;
        let (answer, answered) = oneshot::channel();
        let runs = self.runs.clone();
        let job: Work = Box::new(move |memory| {
            runs.fetch_add(1, Ordering::Relaxed);
            let value = work(memory);
            // The slot is free before the caller hears back, so the next call can take it.
            drop(slot);
            let _ = answer.send(value);
        });
        self.queue
            .lock()
            .map_err(|_| anyhow::anyhow!("password hashing queue poisoned"))?
            .send(job)
            .map_err(|_| anyhow::anyhow!("no password hashing thread is running"))?;
        answered.await.map_err(|_| HashError::Failed(anyhow::anyhow!("a password hashing run failed")))
    }

    /// Hashes a password (PHC string, argon2id with the OWASP parameters).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        Ok(self.run(move |memory| hash_with(memory, password.as_bytes())).await??)
    }

    /// Checks a password against a stored hash; a malformed or unsupported hash is a mismatch.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move |memory| verify_with(memory, password.as_bytes(), &stored)).await
    }

    /// The hash of a random password (made once), verified against when the user does not
    /// exist, so that an unknown username takes as long as a wrong password.
    pub async fn decoy_hash(&self) -> Result<String, HashError> {
        self.decoy.get_or_try_init(|| self.hash(uuid::Uuid::new_v4().to_string())).await.cloned()
    }
}

fn hash_worker(work: &Mutex<Receiver<Work>>) {
    let mut memory = Memory::new();
    loop {
        let next = match work.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = next else { return };
        // A panic fails that one call (its answer channel drops), not the thread.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

/// The first `blocks` of the thread's work area, growing it when a cost needs more.
fn area(memory: &mut Memory, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    &mut memory[..blocks]
}

/// Hashes with the default (OWASP) parameters into `memory`. Also usable off the hashing
/// threads (the CLI's import hashes on its own threads, each with its own area).
pub fn hash_with(memory: &mut Memory, password: &[u8]) -> anyhow::Result<String> {
    let params = Params::DEFAULT;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2
        .hash_password_into_with_memory(password, salt_raw, &mut out, area(memory, params.block_count()))
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Recomputes the stored hash's argon2 run into `memory` and compares in constant time.
fn verify_with(memory: &mut Memory, password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else { return false };
    let Ok((argon2, params)) = supported(&parsed) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    if argon2.hash_password_into_with_memory(password, salt, &mut out, area(memory, params.block_count())).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// The argon2 instance a stored hash names, if this server accepts it (argon2 with a salt
/// and an output, and a memory cost within [`MAX_M_COST_KIB`]); the reason otherwise.
pub fn supported<'a>(parsed: &PasswordHash<'a>) -> Result<(Argon2<'static>, Params), String> {
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|_| format!("{} is not an argon2 hash", parsed.algorithm))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|_| format!("argon2 version {v} is unknown"))?,
        None => Version::default(),
    };
    let params = Params::try_from(parsed).map_err(|e| format!("bad argon2 parameters: {e}"))?;
    if params.m_cost() > MAX_M_COST_KIB {
        return Err(format!("memory cost {} KiB is over the {MAX_M_COST_KIB} KiB this server verifies", params.m_cost()));
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("the hash has no salt or no output".to_owned());
    }
    Ok((Argon2::new(algorithm, version, params.clone()), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = Hasher::start(1, 4);
        let h = hasher.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(hasher.verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!hasher.verify("wrong horse".into(), h).await.unwrap());
        assert!(!hasher.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let hasher = Hasher::start(1, 4);
        // A cheaper cost than ours, as an imported hash might have.
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 3, 1, None).unwrap())
            .hash_password(b"imported pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(hasher.verify("imported pw".into(), theirs.clone()).await.unwrap());
        assert!(!hasher.verify("imported PW".into(), theirs).await.unwrap());
        let ours = hasher.hash("ours".into()).await.unwrap();
        assert!(Argon2::default().verify_password(b"ours", &PasswordHash::new(&ours).unwrap()).is_ok());
    }

    #[tokio::test]
    async fn a_hash_with_an_oversized_memory_cost_is_refused_not_computed() {
        let hasher = Hasher::start(1, 4);
        let huge = format!("$argon2id$v=19$m={},t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", MAX_M_COST_KIB + 1);
        let parsed = PasswordHash::new(&huge).unwrap();
        assert!(supported(&parsed).unwrap_err().contains("memory cost"));
        assert!(!hasher.verify("x".into(), huge).await.unwrap());
    }

    #[tokio::test]
    async fn runs_beyond_threads_plus_queue_are_refused_and_admitted_again_once_a_slot_frees() {
        let hasher = Hasher::start(1, 1);
        let held = [hasher.try_reserve().unwrap(), hasher.try_reserve().unwrap()];
        assert!(hasher.try_reserve().is_none());
        assert!(matches!(hasher.hash("pw".into()).await, Err(HashError::Busy)));
        assert_eq!(hasher.runs(), 0, "a refused run computes nothing");
        drop(held);
        assert!(hasher.hash("pw".into()).await.is_ok());
        assert_eq!(hasher.runs(), 1);
        assert!(hasher.try_reserve().is_some(), "a finished run gives its slot back");
    }
}
