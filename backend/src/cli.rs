//! The `confab` command: `serve` (default), `migrate`, `user create`, `user import`,
//! `token create`, `publish`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgGroup, Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use confab_shared::{PublishRequest, PublishTarget};

use crate::config::Config;
use crate::startup::Application;
use crate::storage::{Db, StorageError, users};

/// `docs/configuration.md`, generated from the definitions below (a drift test keeps it).
#[cfg(test)]
mod reference;

#[derive(Parser, Debug)]
#[command(name = "confab", version, about = "Real-time chat and presence server")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API, the WebSocket and the SPA (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Deliver a `notice` to the open connections of a room, a user or everyone, on every
    /// instance (needs an admin). Through the server's HTTP API, or straight into Redis
    /// when REDIS_URL is set and no --url is given.
    Publish(PublishArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["room", "user", "all"])))]
pub struct PublishArgs {
    /// Every connection joined to this room.
    #[arg(long)]
    pub room: Option<String>,
    /// Every connection of this user.
    #[arg(long)]
    pub user: Option<String>,
    /// Every connection.
    #[arg(long)]
    pub all: bool,
    /// The payload: JSON when it parses as JSON, otherwise sent as a JSON string.
    pub payload: String,
    /// The server whose API to publish through [default: http://127.0.0.1:8000].
    #[arg(long, env = "CONFAB_URL")]
    pub url: Option<String>,
    /// An admin's access token.
    #[arg(long, env = "CONFAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log in as this admin instead (password from --password, CONFAB_PASSWORD, stdin or a prompt).
    #[arg(long, conflicts_with = "token")]
    pub username: Option<String>,
    /// The password for --username.
    #[arg(long, env = "CONFAB_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin (or prompted for on a terminal).
    Create {
        /// The account's name (the rules of sign-up apply to it and to the password).
        username: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Create many accounts from a JSON-lines or CSV file (passwords or existing argon2
    /// hashes), checked line by line first, then inserted in one transaction.
    Import(crate::import::ImportArgs),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token for a user and print it (it is shown only this once).
    Create {
        /// The user the token acts as.
        username: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, write, publish (publish only for admins).
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// Days until the token expires; without it, it never does.
        #[arg(long)]
        expires_days: Option<u32>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.config.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("confab: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => {
            crate::files::create_data_dir(&cli.config.data_dir)?;
            let db = Db::connect(&cli.config.database_url()).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User { command: UserCommand::Create { username, admin } } => create_user(&cli.config, &username, admin).await,
        Command::User { command: UserCommand::Import(args) } => {
            let report = crate::import::run(&cli.config, &args).await?;
            println!("{} listed: {} created, {} skipped (already there)", report.listed, report.created, report.skipped);
            if let Some(out) = &args.sessions {
                println!("{} sessions opened, tokens written to {}", report.sessions, out.display());
            }
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { username, name, scope, expires_days } } => {
            create_token(&cli.config, &username, name, &scope, expires_days).await
        }
        Command::Publish(args) => publish(&cli.config, args).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "confab listening");
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("confab stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: closing sockets with 1001");
}

async fn create_user(config: &Config, username: &str, admin: bool) -> anyhow::Result<()> {
    let username = confab_shared::validate::username(username).map_err(|m| anyhow::anyhow!("username {m}"))?;
    let password = read_password(username)?;
    confab_shared::validate::password(&password).map_err(|m| anyhow::anyhow!("password {m}"))?;
    crate::files::create_data_dir(&config.data_dir)?;
    let db = Db::connect(&config.database_url()).await?;
    db.migrate().await?;
    let hash = crate::auth::password::Hasher::start(1, 1).hash(password).await?;
    match users::create(&db, username, &hash, admin).await {
        Ok(user) => {
            println!("created {} (id {}){}", user.username, user.id, if admin { ", admin" } else { "" });
            Ok(())
        }
        Err(StorageError::Duplicate) => anyhow::bail!("username {username} is taken"),
        Err(err) => Err(err.into()),
    }
}

async fn create_token(config: &Config, username: &str, name: String, scopes: &[String], expires_in_days: Option<u32>) -> anyhow::Result<()> {
    let scopes = scopes
        .iter()
        .map(|s| confab_shared::Scope::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scope {s:?}: use read, write or publish")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    crate::files::create_data_dir(&config.data_dir)?;
    let db = Db::connect(&config.database_url()).await?;
    db.migrate().await?;
    let body = confab_shared::CreateApiToken { name, scopes, expires_in_days };
    let created = crate::features::tokens::create_for(&db, username, &body).await?;
    eprintln!("created API token {} ({}) for {username}; it is shown only once:", created.id, created.name);
    println!("{}", created.token);
    Ok(())
}

/// The server `confab publish` talks to when none is given.
const DEFAULT_URL: &str = "http://127.0.0.1:8000";

async fn publish(config: &Config, args: PublishArgs) -> anyhow::Result<()> {
    // Not JSON? Then it is text, sent as a JSON string.
    let payload = serde_json::from_str(&args.payload).unwrap_or_else(|_| serde_json::Value::String(args.payload.clone()));
    let target = match (&args.room, &args.user) {
        (Some(room), _) => PublishTarget::Room(room.clone()),
        (None, Some(user)) => PublishTarget::User(user.clone()),
        (None, None) => PublishTarget::All(true),
    };
    let request = PublishRequest { target, payload };
    match (&config.redis_url, &args.url) {
        (Some(redis_url), None) => publish_to_redis(config, redis_url, request).await,
        _ => publish_over_http(&args, request).await,
    }
}

/// `POST /api/publish` on the server, with a token or after logging in (the REST part of
/// the `confab-client` crate, as any program would).
async fn publish_over_http(args: &PublishArgs, request: PublishRequest) -> anyhow::Result<()> {
    let base = args.url.as_deref().unwrap_or(DEFAULT_URL);
    let rest = confab_client::Rest::new(base)?;
    let (token, logged_in) = match (&args.token, &args.username) {
        (Some(token), _) => (token.clone(), false),
        (None, Some(username)) => {
            let password = match &args.password {
                Some(password) => password.clone(),
                None => read_password(username)?,
            };
            let credentials = confab_shared::Credentials { username: username.clone(), password };
            let tokens = rest.login(&credentials).await.map_err(|err| refused("login", base, err))?;
            (tokens.access_token, true)
        }
        (None, None) => anyhow::bail!("publishing needs an admin: pass --token (or CONFAB_TOKEN) or --username"),
    };
    let sent = rest.publish(&token, &request).await;
    if logged_in {
        // The session was only for this call; end it either way (best effort).
        let _ = rest.logout(&token).await;
    }
    let accepted = sent.map_err(|err| refused("publish", base, err))?;
    match accepted.delivered_locally {
        0 => println!("no one received it: no open connection matched on the instance that took the request"),
        1 => println!("delivered to 1 connection"),
        n => println!("delivered to {n} connections"),
    }
    Ok(())
}

/// A refused request as the server explained it (its problem's `detail` and the status), or
/// why the server could not be reached.
fn refused(what: &str, base: &str, err: confab_client::Error) -> anyhow::Error {
    use confab_client::Error;
    match err {
        Error::Http { status, problem } | Error::AuthFailed { status, problem } => match problem {
            Some(problem) => anyhow::anyhow!("{what} refused: {} ({status})", problem.detail),
            None => anyhow::anyhow!("{what} refused: HTTP {status}"),
        },
        other => anyhow::anyhow!("reaching {base}: {other}"),
    }
}

/// Straight into the Redis layer every instance listens to, naming the target with the
/// shared database. Instances do not answer back, so the count is of instances.
async fn publish_to_redis(config: &Config, redis_url: &str, request: PublishRequest) -> anyhow::Result<()> {
    let frame = crate::features::publish::notice_frame(request.payload).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = Db::connect(&config.database_url()).await.context("connecting to the database")?;
    let group = crate::features::publish::resolve_target(&db, &request.target).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mode = crate::redis_link::detect(redis_url, config.redis_mode).await?;
    let mut conn = crate::redis_link::RedisConn::connect(redis_url, mode).await?;
    let delivery = crate::layer::Delivery::frame(frame, crate::layer::Class::Reliable);
    let instances = crate::layer::redis::publish_once(&mut conn, &group, &delivery).await.context("publishing to redis")?;
    match instances {
        0 => println!("no one received it: no instance has an open connection in {group}"),
        1 => println!("delivered to the connections in {group} on 1 instance"),
        n => println!("delivered to the connections in {group} on {n} instances"),
    }
    Ok(())
}

/// A password from stdin, or prompted for on a terminal.
fn read_password(username: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        return Ok(rpassword::prompt_password(format!("Password for {username}: "))?);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
