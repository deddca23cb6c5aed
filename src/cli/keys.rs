//! `dealscore keys`: create, list and revoke API keys.

use anyhow::Context;
use clap::Subcommand;

use crate::auth::{generate_key, hash_key, Role};
use crate::config::Settings;
use crate::store::api_keys;

/// `dealscore keys …`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints only the key on stdout (details on stderr).
    Create {
        /// Unique name (e.g. the person or integration).
        #[arg(long)]
        name: String,
        /// rep, analyst or admin.
        #[arg(long)]
        role: String,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke the active key with this name.
    Revoke {
        /// Key name.
        name: String,
    },
}

/// Runs one `dealscore keys` action.
pub async fn run(settings: &Settings, action: KeysAction) -> anyhow::Result<()> {
    let db = super::open_db(settings).await?;
    match action {
        KeysAction::Create { name, role } => {
            let role = Role::parse(&role)
                .with_context(|| format!("role `{role}` is not one of rep, analyst, admin"))?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("the key name must be 1–100 printable characters");
            }
            let key = generate_key();
            api_keys::insert(&db, &name, role.as_str(), &hash_key(&key)).await?;
            eprintln!(
                "created {} key `{name}` — store it now, it is not shown again",
                role.as_str()
            );
            println!("{key}");
        }
        KeysAction::List => {
            for k in api_keys::list(&db).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.name,
                    k.role,
                    k.created_at.to_rfc3339(),
                    k.revoked_at
                        .map(|t| format!("revoked {}", t.to_rfc3339()))
                        .unwrap_or_else(|| "active".into())
                );
            }
        }
        KeysAction::Revoke { name } => {
            if !api_keys::revoke(&db, &name).await? {
                anyhow::bail!("no active key named `{name}`");
            }
            eprintln!("revoked `{name}`");
        }
    }
    Ok(())
}
