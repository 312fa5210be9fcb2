//! The `confab` command: `serve` (default), `migrate`, `user create`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::startup::Application;
use crate::storage::{Db, StorageError, users};

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
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account; the password is read from stdin (or prompted for on a terminal).
    Create {
        username: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
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
            std::fs::create_dir_all(&cli.config.data_dir)?;
            let db = Db::connect(&cli.config.database_url()).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::User { command: UserCommand::Create { username, admin } } => create_user(&cli.config, &username, admin).await,
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
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Password for {username}: "))?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    confab_shared::validate::password(&password).map_err(|m| anyhow::anyhow!("password {m}"))?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = Db::connect(&config.database_url()).await?;
    db.migrate().await?;
    let hash = crate::auth::password::hash(password).await?;
    match users::create(&db, username, &hash, admin).await {
        Ok(user) => {
            println!("created {} (id {}){}", user.username, user.id, if admin { ", admin" } else { "" });
            Ok(())
        }
        Err(StorageError::Duplicate) => anyhow::bail!("username {username} is taken"),
        Err(err) => Err(err.into()),
    }
}
