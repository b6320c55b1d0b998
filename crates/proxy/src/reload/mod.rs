//! Live reload: SIGHUP and `PROXY CONFIG RELOAD [DRYRUN]` read the
//! configuration again ([`Reloader`], installed by whoever knows where it
//! comes from: the binary reads its file, environment and flags) and apply
//! the difference at once.
//!
//! The whole new configuration is validated first (the reloader does it);
//! a bad one changes nothing and the reply says why. Then each setting
//! that differs is either applied live, or reported as needing a restart
//! and left as it runs:
//!
//! - live: `users` (a user removed, or whose passwords, tenant or
//!   password-only flag changed, has its clients disconnected, as Valkey's
//!   `ACL DELUSER` does; changed rules apply to its clients' next command),
//!   the tenants' limits (`max_clients`, `max_ops_per_sec`,
//!   `max_bytes_per_sec`, `max_inflight`, `max_queue_ms`, when nothing
//!   else of the tenants changed), `read_policy`, `retry_budget_ms`,
//!   `max_redirects`, the slow log, the client limits (`max_clients`,
//!   `max_pipeline`, the buffers; the idle timeout and the largest bulk
//!   for new clients), the audit log's filters (when its sinks and queue
//!   stay), and `log` (through the reloader);
//! - after a restart: everything else (addresses, threads, backends and
//!   their credentials, tenants added, removed or changed otherwise,
//!   listeners, the audit log's sinks and queue, pool and topology
//!   timings). Users of a
//!   tenant the running proxy does not know wait for that restart too.
//!
//! The running configuration is then the one started with, with the live
//! changes of every reload since: `PROXY CONFIG GET` shows it (secrets
//! masked) with its hash.

mod diff;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use router::{ReadPolicy, RouterConfig};
use sha2::{Digest, Sha256};

use crate::config::{ProxyConfig, ReadPolicySetting};
use crate::context::Shared;
use crate::users::{UserConfig, Users};
use diff::{
    audit_filter_changes, changes, copy_live, disconnected, tenant_limit_changes, user_changes, Effect,
};

/// Where a reload gets the configuration from.
pub trait Reloader: Send + Sync {
    /// The configuration as it is now written, validated.
    ///
    /// # Errors
    /// Why it cannot be used (unreadable, unparsable, invalid).
    fn load(&self) -> Result<ProxyConfig, String>;

    /// Called with the configuration in force after a reload applied
    /// something: for what only the reloader can change (the log filter).
    fn applied(&self, _config: &ProxyConfig) {}
}

/// What a reload found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per difference: `~ key: old -> new` (applied), `+`/`-`/`~
    /// users: name`, or `! key: old -> new (restart required, not
    /// applied)`. Secrets are never shown.
    pub lines: Vec<String>,
    /// The hash of the configuration in force afterwards.
    pub hash: String,
}

/// Reads the configuration again through the installed [`Reloader`] and
/// applies it (or, with `dry_run`, only says what it would do).
///
/// # Errors
/// No reloader is installed, or the new configuration is not usable:
/// nothing changed.
pub fn reload(shared: &Shared, dry_run: bool) -> Result<Report, String> {
    let reloader = shared
        .reloader
        .get()
        .ok_or("this proxy has no configuration file to reload")?;
    let outcome = reloader.load().and_then(|new| apply(shared, new, dry_run));
    let result = match (&outcome, dry_run) {
        (Err(_), _) => "error",
        (Ok(_), true) => "dryrun",
        (Ok(_), false) => "ok",
    };
    metrics::counter!("valkey_proxy_config_reloads_total", "result" => result).increment(1);
    if let Some(audit) = &shared.audit {
        let (changes, hash, error) = match &outcome {
            Ok(report) => (&report.lines[..], Some(report.hash.as_str()), None),
            Err(error) => (&[][..], None, Some(error.as_str())),
        };
        audit.record_config_reload(&audit::ConfigReload {
            result,
            changes,
            hash,
            error,
        });
    }
    match &outcome {
        Ok(report) if !dry_run => {
            tracing::info!(changes = ?report.lines, hash = %report.hash, "configuration reloaded");
            reloader.applied(&shared.config());
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "configuration reload refused; nothing changed"),
    }
    outcome
}

/// Applies `new` (validated) to the running proxy: what can change live
/// does, at once; the rest is reported.
///
/// # Errors
/// Never for a validated configuration; the type leaves room for checks
/// against the running proxy.
pub fn apply(shared: &Shared, new: ProxyConfig, dry_run: bool) -> Result<Report, String> {
    let _one_at_a_time = shared.reloading.lock().unwrap_or_else(|e| e.into_inner());
    let old = shared.config();
    let mut changes = changes(&old, &new);
    let users_live = users_fit(shared, &new.users);
    let tenant_limits = tenant_limit_changes(&old.tenants, &new.tenants);
    let audit_filters = audit_filter_changes(&old.audit, &new.audit).filter(|_| shared.audit.is_some());
    for change in &mut changes {
        match change.key {
            "users" if !users_live => change.effect = Effect::Restart,
            "tenants" if tenant_limits.is_some() => change.effect = Effect::Live,
            "audit" if audit_filters.is_some() => change.effect = Effect::Live,
            _ => {}
        }
    }
    let mut lines = Vec::new();
    for change in &changes {
        let restart = change.effect == Effect::Restart;
        let mark = if restart {
            " (restart required, not applied)"
        } else {
            ""
        };
        match (change.key, &tenant_limits) {
            ("users", _) => lines.extend(
                user_changes(&old.users, &new.users)
                    .into_iter()
                    .map(|line| format!("{line}{mark}")),
            ),
            ("tenants", Some(limits)) => lines.extend(limits.iter().cloned()),
            ("audit", _) if audit_filters.is_some() => lines.extend(audit_filters.iter().flatten().cloned()),
            _ if restart => lines.push(format!(
                "! {}: {} -> {}{mark}",
                change.key, change.from, change.to
            )),
            _ => lines.push(format!("~ {}: {} -> {}", change.key, change.from, change.to)),
        }
    }
    let mut running = ProxyConfig::clone(&old);
    let live = |key: &str| {
        changes
            .iter()
            .any(|change| change.key == key && change.effect == Effect::Live)
    };
    copy_live(&mut running, &new, &live);
    let report = Report {
        lines,
        hash: hash(&running),
    };
    if dry_run || !changes.iter().any(|change| change.effect == Effect::Live) {
        return Ok(Report {
            hash: hash(&old),
            ..report
        });
    }
    // The one part that may still fail is checked before anything changes.
    let audit_filter = match (&shared.audit, live("audit")) {
        (Some(_), true) => Some(
            audit::Filter::new(&new.audit, shared.stack.router.table())
                .map_err(|why| format!("audit: {why}"))?,
        ),
        _ => None,
    };
    let old_users = old.users.clone();
    drop(old);
    shared.config.store(Arc::new(running));
    let running = shared.config();
    if live("users") {
        let users = Users::new(&running.users, &shared.tenants, shared.stack.router.table());
        shared.users.store(Arc::new(users));
        shared.users_version.fetch_add(1, Ordering::Release);
        for name in disconnected(&old_users, &running.users) {
            let closed = shared.clients.kill(|client| client.user() == name);
            tracing::info!(user = %name, closed, "user removed or its credentials changed: its clients are disconnected");
        }
    }
    if live("tenants") {
        shared.tenants.set_limits(&running.tenants);
    }
    if let (Some(audit), Some(filter)) = (&shared.audit, audit_filter) {
        audit.set_filter(filter);
    }
    let router = router_config(&running);
    for stack in std::iter::once(&shared.stack).chain(&shared.groups) {
        stack.router.reconfigure(router);
        stack.request_timeout.set(running.request_timeout_ms);
        crate::backend_watch::apply(&stack.router, &stack.request_timeout);
    }
    shared
        .slowlog
        .configure(running.slowlog_log_slower_than, running.slowlog_max_len);
    shared.turn_limits.set(&running);
    Ok(report)
}

/// The router settings of `config`.
pub fn router_config(config: &ProxyConfig) -> RouterConfig {
    RouterConfig {
        max_redirects: config.max_redirects,
        retry_budget: std::time::Duration::from_millis(config.retry_budget_ms),
        read_policy: match config.read_policy {
            ReadPolicySetting::Primary => ReadPolicy::Primary,
            ReadPolicySetting::PreferReplica => ReadPolicy::PreferReplica,
        },
    }
}

/// The SHA-256 of `config`, in hex: the same settings give the same hash.
pub fn hash(config: &ProxyConfig) -> String {
    let digest = Sha256::digest(format!("{config:?}").as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `config` with every secret replaced by `(redacted)`, for showing.
pub fn masked(config: &ProxyConfig) -> ProxyConfig {
    let mut shown = config.clone();
    let redacted = || Some("(redacted)".to_string());
    if shown.backend_password.is_some() {
        shown.backend_password = redacted();
    }
    for user in &mut shown.users {
        if user.password.is_some() {
            user.password = redacted();
        }
    }
    for group in &mut shown.backend_groups {
        if group.password.is_some() {
            group.password = redacted();
        }
    }
    shown
}

/// Whether the users of `new` can replace the running ones now: every
/// tenant they name is one the running proxy has.
fn users_fit(shared: &Shared, new: &[UserConfig]) -> bool {
    new.iter().all(|user| match user.tenant.as_deref() {
        None | Some("*") => true,
        Some(tenant) => shared.tenants.number(Some(tenant)) != 0,
    })
}
