//! `dealscore keys`: create, list and revoke API keys.

use anyhow::Context;
use clap::Subcommand;

use crate::auth::{generate_key, hash_key, Role};
use crate::config::Settings;
use crate::store::api_keys;
use crate::store::scope::Scope;

/// `dealscore keys …`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key; prints only the key on stdout (details on stderr).
    Create {
        /// Unique name (e.g. the person or integration).
        #[arg(long)]
        name: String,
        /// rep, manager, analyst or admin.
        #[arg(long)]
        role: String,
        /// The owner whose deals a rep key sees (as the CRM writes the deals' `owner`).
        #[arg(long, conflicts_with_all = ["owners", "region"])]
        owner: Option<String>,
        /// The owners whose deals a manager key sees, comma-separated.
        #[arg(long, value_delimiter = ',', conflicts_with = "region")]
        owners: Option<Vec<String>>,
        /// The region whose deals a manager key sees.
        #[arg(long)]
        region: Option<String>,
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
    // Listing or revoking keys in a database that does not exist would create an empty one.
    let db = match action {
        KeysAction::Create { .. } => super::open_db(settings).await?,
        KeysAction::List | KeysAction::Revoke { .. } => super::open_existing_db(settings).await?,
    };
    match action {
        KeysAction::Create {
            name,
            role,
            owner,
            owners,
            region,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "role `{role}` is not one of rep, analyst, admin (or manager, between rep and analyst)"
                )
            })?;
            let name = name.trim().to_owned();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                anyhow::bail!("the key name must be 1–100 printable characters");
            }
            let scope = scope_of(role, owner, owners, region)?;
            let key = generate_key();
            api_keys::insert_scoped(&db, &name, role.as_str(), &hash_key(&key), &scope).await?;
            eprintln!(
                "created {} key `{name}` seeing {} — store it now, it is not shown again",
                role.as_str(),
                scope.describe()
            );
            println!("{key}");
        }
        KeysAction::List => {
            for k in api_keys::list(&db).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.name,
                    k.role,
                    listed_scope(&k),
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

/// What a new key of `role` sees, from the `--owner`, `--owners` and `--region` flags: a rep
/// names exactly one owner, a manager a list of owners or a region, and analyst and admin keys
/// take none (they see every deal, so a flag would only mislead whoever reads `keys list`).
fn scope_of(
    role: Role,
    owner: Option<String>,
    owners: Option<Vec<String>>,
    region: Option<String>,
) -> anyhow::Result<Scope> {
    let clean = |what: &str, text: String| -> anyhow::Result<String> {
        let text = text.trim().to_owned();
        if text.is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
            anyhow::bail!("{what} must be 1–200 printable characters");
        }
        Ok(text)
    };
    match (role, owner, owners, region) {
        (Role::Rep, Some(owner), None, None) => Ok(Scope::Owners(vec![clean("--owner", owner)?])),
        (Role::Rep, ..) => anyhow::bail!(
            "a rep key needs `--owner NAME` (the deals' `owner` it sees), and no --owners or --region"
        ),
        (Role::Manager, None, Some(owners), None) => {
            let mut names = owners
                .into_iter()
                .map(|o| clean("each of --owners", o))
                .collect::<anyhow::Result<Vec<_>>>()?;
            names.sort();
            names.dedup();
            Ok(Scope::Owners(names))
        }
        (Role::Manager, None, None, Some(region)) => Ok(Scope::Region(clean("--region", region)?)),
        (Role::Manager, ..) => {
            anyhow::bail!("a manager key needs its team: `--owners a,b` or `--region NAME`")
        }
        (_, None, None, None) => Ok(Scope::All),
        (role, ..) => anyhow::bail!(
            "{} keys see every deal: --owner, --owners and --region are for rep and manager keys",
            role.as_str()
        ),
    }
}

/// The scope column of `keys list`: "no owner" for a key tied to no owner or region (a rep or
/// manager key created before keys had owners is refused until it is replaced).
fn listed_scope(k: &api_keys::ApiKeyRecord) -> String {
    let refused = Role::parse(&k.role).is_some_and(Role::needs_scope);
    match (&k.owners, &k.region) {
        (Some(owners), _) if owners.len() == 1 => format!("owner {}", owners[0]),
        (Some(owners), _) => format!("owners {}", owners.join(",")),
        (None, Some(region)) => format!("region {region}"),
        (None, None) if refused => "no owner (refused: recreate with --owner)".into(),
        (None, None) => "no owner (all deals)".into(),
    }
}
