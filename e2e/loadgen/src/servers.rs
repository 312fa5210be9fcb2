//! The processes a benchmark run talks to: Confab instances, the peers, Redis, and a fresh
//! PostgreSQL database. Each is a child of the load generator, pinned with `taskset` to the
//! server CPUs, logging to a file, and killed when its handle drops.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Where things are and how to pin them.
#[derive(Clone, Debug)]
pub struct Env {
    pub confab_bin: PathBuf,
    pub peers_dir: PathBuf,
    pub venv: PathBuf,
    /// Folder for logs and temporary data dirs of this run.
    pub work_dir: PathBuf,
    /// `taskset -c` list for servers; `None`: not pinned.
    pub server_cpus: Option<String>,
    pub pg_url: Option<String>,
}

/// A running child process; killed (SIGKILL) and reaped on drop.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(env: &Env, name: &str, program: &Path, args: &[String], envs: &[(&str, String)], cwd: Option<&Path>) -> anyhow::Result<Self> {
        let log = env.work_dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let mut cmd = match &env.server_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().with_context(|| format!("start {name} ({})", program.display()))?;
        // taskset execs the program, so the pid is the server's own.
        Ok(Self { name: name.to_owned(), pid: child.id(), child })
    }

    /// Stops the process as a deployment would (SIGTERM: Confab closes its sockets with 1001
    /// and exits), SIGKILL after `grace`; returns once it is gone.
    pub fn terminate(&mut self, grace: Duration) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Fails if the process has exited (with the tail of its log).
    fn check_alive(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(env.work_dir.join(format!("{}.log", self.name))).unwrap_or_default();
            let tail: String = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            bail!("{} exited ({status}):\n{tail}", self.name);
        }
        Ok(())
    }
}

/// A free loopback port (bound, read, released: the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn wait_listening(proc: &mut Proc, env: &Env, addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        proc.check_alive(env)?;
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not listen on {addr} within {limit:?}", proc.name);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private redis-server (no persistence).
pub async fn redis(env: &Env, name: &str) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let dir = env.work_dir.join(name);
    std::fs::create_dir_all(&dir)?;
    let args = ["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "10000"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(["--dir".to_owned(), dir.display().to_string()])
        .collect::<Vec<_>>();
    let mut proc = Proc::spawn(env, name, Path::new("redis-server"), &args, &[], None)?;
    wait_listening(&mut proc, env, loopback(port), Duration::from_secs(10)).await?;
    Ok((proc, format!("redis://127.0.0.1:{port}")))
}

/// How a Confab instance is backed.
#[derive(Clone, Debug, Default)]
pub struct ConfabBacking {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
}

/// The JWT secret of every benchmark instance: instances of one run share it, so a token
/// works on either, and `confab user import --sessions` signs with it.
pub const BENCH_JWT_SECRET: &str = "confab-bench-secret-0123456789abcdef0123456789abcdef";

/// A Confab instance with a fresh data dir; ready once `/api/health` answers 200.
pub async fn confab(env: &Env, name: &str, backing: &ConfabBacking) -> anyhow::Result<(Proc, SocketAddr)> {
    let data = env.work_dir.join(format!("{name}-data"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let port = free_port()?;
    confab_at(env, name, backing, port, &data, &[]).await
}

/// The environment of a benchmark instance with data in `data` (also what
/// `confab user import` runs with, so it writes the same database with the same secret).
pub fn confab_env(backing: &ConfabBacking, port: u16, data: &Path) -> Vec<(&'static str, String)> {
    let mut envs = vec![
        ("CONFAB_BIND", format!("127.0.0.1:{port}")),
        ("CONFAB_DATA_DIR", data.display().to_string()),
        ("CONFAB_JWT_SECRET", BENCH_JWT_SECRET.to_owned()),
        // The benchmark is the load: no per-connection call limit, no login throttle, no expiry mid-run.
        ("CONFAB_RATE_PER_SEC", "1000000000".to_owned()),
        ("CONFAB_LOGIN_ATTEMPTS", "1000000".to_owned()),
        ("CONFAB_ACCESS_TTL_SECS", "7200".to_owned()),
        ("CONFAB_STATIC_DIR", data.join("no-spa").display().to_string()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    if let Some(url) = &backing.database_url {
        envs.push(("DATABASE_URL", url.clone()));
    }
    if let Some(url) = &backing.redis_url {
        envs.push(("REDIS_URL", url.clone()));
    }
    envs
}

/// A Confab instance on `port` with the data dir `data` as it is (a restart keeps both),
/// with `extra` environment on top of [`confab_env`].
pub async fn confab_at(env: &Env, name: &str, backing: &ConfabBacking, port: u16, data: &Path, extra: &[(&'static str, String)]) -> anyhow::Result<(Proc, SocketAddr)> {
    if !env.confab_bin.exists() {
        bail!("{} not found (cargo build --release --bin confab)", env.confab_bin.display());
    }
    let mut envs = confab_env(backing, port, data);
    envs.extend(extra.iter().cloned());
    let mut proc = Proc::spawn(env, name, &env.confab_bin, &[], &envs, None)?;
    let addr = loopback(port);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        proc.check_alive(env)?;
        if let Ok(resp) = client.get(format!("http://{addr}/api/health")).send().await
            && resp.status().is_success()
        {
            return Ok((proc, addr));
        }
        if Instant::now() > deadline {
            bail!("{name} not healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Django Channels peer under daphne, with its channel layer on `redis_url`.
pub async fn django(env: &Env, name: &str, redis_url: &str) -> anyhow::Result<(Proc, SocketAddr)> {
    let daphne = env.venv.join("bin/daphne");
    if !daphne.exists() {
        bail!("{} not found (bash e2e/bench/setup-peers.sh)", daphne.display());
    }
    let port = free_port()?;
    let dir = env.peers_dir.join("django");
    let args = ["-v", "0", "-b", "127.0.0.1", "-p", &port.to_string(), "benchsite.asgi:application"].map(str::to_owned);
    let envs = [("REDIS_URL", redis_url.to_owned()), ("DJANGO_SETTINGS_MODULE", "benchsite.settings".to_owned()), ("PYTHONPATH", dir.display().to_string())];
    let mut proc = Proc::spawn(env, name, &daphne, &args, &envs, Some(&dir))?;
    let addr = loopback(port);
    wait_listening(&mut proc, env, addr, Duration::from_secs(30)).await?;
    Ok((proc, addr))
}

/// The Socket.IO peer under node; with `redis_url`, instances share rooms via the Redis adapter.
pub async fn socketio(env: &Env, name: &str, redis_url: Option<&str>) -> anyhow::Result<(Proc, SocketAddr)> {
    let dir = env.peers_dir.join("socketio");
    if !dir.join("node_modules/socket.io").exists() {
        bail!("{}/node_modules missing (bash e2e/bench/setup-peers.sh)", dir.display());
    }
    let port = free_port()?;
    let mut envs = vec![("PORT", port.to_string())];
    if let Some(url) = redis_url {
        envs.push(("REDIS_URL", url.to_owned()));
    }
    let mut proc = Proc::spawn(env, name, Path::new("node"), &["server.js".to_owned()], &envs, Some(&dir))?;
    let addr = loopback(port);
    wait_listening(&mut proc, env, addr, Duration::from_secs(30)).await?;
    Ok((proc, addr))
}

/// A fresh PostgreSQL database, dropped on drop.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub fn create(admin_url: &str, name: &str) -> anyhow::Result<Self> {
        psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
        Ok(Self { admin_url: admin_url.to_owned(), name: name.to_owned(), url: format!("{base}/{name}") })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql").arg(url).arg("-v").arg("ON_ERROR_STOP=1").arg("-qc").arg(sql).output().context("psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Whether PostgreSQL answers at `url`.
pub fn pg_available(url: &str) -> bool {
    psql(url, "SELECT 1").is_ok()
}
