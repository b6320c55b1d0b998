//! The admin HTTP port of valkey-proxy: what load balancers, Prometheus and
//! scripts ask a running proxy.
//!
//! - `GET /metrics`: every metric in the Prometheus text format: the
//!   proxy's own families ([`families`]), then whatever was recorded
//!   through the `metrics` facade (audit log, closed clients, ...) when
//!   [`install_recorder`] installed the exporter.
//! - `GET /healthz`: 200 while the process serves HTTP at all.
//! - `GET /readyz`: 200 when the proxy can serve clients (every backend
//!   discovered and its last refresh worked, not draining), else 503 with
//!   the reason.
//! - `GET /stats`: the statistics as JSON ([`json`]).
//!
//! Start it with [`Admin::bind`] and [`Admin::run`] beside a
//! [`proxy::Proxy`], giving it the proxy's [`proxy::context::Shared`].

pub mod exposition;
pub mod families;
mod http;
pub mod json;

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use proxy::context::Shared;
use tokio::net::TcpListener;

/// Installs the Prometheus exporter as the `metrics` facade's recorder for
/// the whole process, and returns the handle that renders what it holds.
/// Call it before [`proxy::Proxy::bind`], so that the proxy's handles are
/// registered with it.
///
/// # Errors
/// Another recorder is installed already.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|error| error.to_string())?;
    describe();
    Ok(handle)
}

/// The help lines of the metrics recorded through the facade.
fn describe() {
    for (name, help) in [
        ("redis_net_input_bytes_total", "Bytes read from clients."),
        ("redis_net_output_bytes_total", "Bytes written to clients."),
        (
            "redis_rejected_connections_total",
            "Clients refused because max_clients were connected.",
        ),
        (
            "valkey_proxy_clients_closed_total",
            "Client connections ended, by reason (client, quit, kill, protocol, idle, output-buffer, query-buffer, evicted, drain).",
        ),
        (
            "valkey_proxy_config_reloads_total",
            "Configuration reloads, by result (ok, dryrun, error).",
        ),
        ("valkey_proxy_audit_records_total", "Audit records queued."),
        (
            "valkey_proxy_audit_dropped_total",
            "Audit records dropped because a sink's queue was full (on_full = drop).",
        ),
        (
            "valkey_proxy_audit_failed_total",
            "Commands refused because the audit queue was full (on_full = fail).",
        ),
        (
            "valkey_proxy_audit_blocked_us_total",
            "Microseconds clients waited for room in the audit queue (on_full = block).",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
}

/// A bound admin port.
#[derive(Debug)]
pub struct Admin {
    listener: TcpListener,
    state: Arc<http::State>,
}

impl Admin {
    /// Binds `addr`. `recorded`, from [`install_recorder`], adds the
    /// facade's metrics to `/metrics`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(
        addr: &str,
        shared: Arc<Shared>,
        recorded: Option<PrometheusHandle>,
    ) -> std::io::Result<Admin> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Admin {
            listener,
            state: Arc::new(http::State { shared, recorded }),
        })
    }

    /// The address bound.
    ///
    /// # Errors
    /// The socket has no local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves requests until the task is dropped.
    pub async fn run(self) {
        http::serve(self.listener, self.state).await
    }
}
