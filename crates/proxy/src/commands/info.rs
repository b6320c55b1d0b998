//! INFO: the backend's sections, with `# Clients` describing the proxy's
//! own clients rather than the backend's (which are the proxy's
//! connections): tools and test harnesses wait on `blocked_clients` and
//! `connected_clients` of the server they talk to. A tenant's client gets
//! `# Server` and its tenant's `# Clients` only: the other sections
//! describe a server every tenant shares.

use std::fmt::Write as _;

use bytes::Bytes;
use resp::{Frame, Request};
use router::Reply;

use super::Local;
use crate::context::{SessionState, Shared};
use crate::door;
use crate::tenants::Isolation;

/// `INFO [section ...]`, through the door, with the proxy's clients.
pub fn info(request: &Request, state: &SessionState, shared: &Shared) -> Local {
    let scoped;
    let isolation = shared.tenants.isolation(state.tenant);
    let request = if matches!(isolation, None | Some(Isolation::Dedicated)) {
        request
    } else {
        match tenant_sections(request, isolation == Some(Isolation::Database)) {
            Some(sections) => {
                scoped = sections;
                &scoped
            }
            // Only sections a tenant does not see: as for unknown ones.
            None => return Local::Reply(Frame::Bulk(Bytes::new())),
        }
    };
    let asked = door::run(request, state, shared);
    let mut own = vec![("# Clients\r\n", clients_section(shared, state.tenant))];
    if state.tenant == 0 {
        // What the proxy's clients sent, where the backends' would be
        // what the proxy sent them.
        let stats = &shared.stack.stats;
        own.push(("# Commandstats\r\n", stats.commandstats_section()));
        own.push(("# Latencystats\r\n", stats.latencystats_section()));
    }
    let databases = shared.tenants.databases(state.tenant);
    Local::Later(Box::pin(async move {
        let reply = own.iter().fold(asked.await?, |reply, (heading, text)| {
            with_section(reply, heading, text)
        });
        Ok(match databases {
            Some(range) => map_text(reply, |text| Some(own_databases(text, range))),
            None => reply,
        })
    }))
}

/// `text` with its `# Keyspace` lines kept for the databases `base ..
/// base + count` only, numbered from 0.
fn own_databases(text: &str, (base, count): (u32, u32)) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive("\r\n") {
        let db = line
            .strip_prefix("db")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(number, rest)| Some((number.parse::<u32>().ok()?, rest)));
        match db {
            Some((number, rest)) if (base..base + count).contains(&number) => {
                let _ = write!(out, "db{}:{rest}", number - base);
            }
            Some(_) => {}
            None => out.push_str(line),
        }
    }
    out
}

/// `INFO` as a tenant's client may ask it: the server and clients
/// sections it named (or that `default`, `all` or `everything` hold), and
/// the keyspace for a tenant with `databases` of its own; `None` when it
/// named none of them.
fn tenant_sections(request: &Request, databases: bool) -> Option<Request> {
    let mut sections: Vec<&str> = Vec::new();
    let asked = request.args().iter().skip(1);
    let named = if request.len() == 1 {
        vec![&b"default"[..]]
    } else {
        asked.collect()
    };
    for name in named {
        let name = name.to_ascii_lowercase();
        let these: &[&str] = match &name[..] {
            b"default" | b"all" | b"everything" if databases => &["server", "clients", "keyspace"],
            b"default" | b"all" | b"everything" => &["server", "clients"],
            b"server" => &["server"],
            b"clients" => &["clients"],
            b"keyspace" if databases => &["keyspace"],
            _ => &[],
        };
        for section in these {
            if !sections.contains(section) {
                sections.push(section);
            }
        }
    }
    (!sections.is_empty()).then(|| Request::from_args(std::iter::once("INFO").chain(sections)))
}

/// The `# Clients` section for the proxy's clients (a tenant's only, for
/// `tenant` other than 0), with Valkey's field names. Fields the proxy
/// does not measure are left out.
fn clients_section(shared: &Shared, tenant: u16) -> String {
    let all: Vec<_> = shared
        .clients
        .list()
        .into_iter()
        .filter(|client| tenant == 0 || client.tenant() == tenant)
        .collect();
    let max_clients = shared
        .tenants
        .max_clients(tenant)
        .unwrap_or(shared.config().max_clients);
    let count =
        |held: fn(&crate::clients::SessionView) -> bool| all.iter().filter(|c| held(&c.view())).count();
    let (paused_actions, paused_ms) = match shared.clients.pause.remaining() {
        Some((left, true)) => ("write", left.as_millis()),
        Some((left, false)) => ("all", left.as_millis()),
        None => ("none", 0),
    };
    let mut out = String::from("# Clients\r\n");
    let _ = write!(
        out,
        "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\
         tracking_clients:{}\r\npubsub_clients:{}\r\nwatching_clients:{}\r\n\
         paused_reason:{}\r\npaused_actions:{paused_actions}\r\npaused_timeout_milliseconds:{paused_ms}\r\n",
        all.len(),
        max_clients,
        count(|v| v.blocked),
        count(|v| v.tracking),
        count(|v| v.sub + v.psub + v.ssub > 0),
        count(|v| v.watching),
        if paused_actions == "none" {
            "none"
        } else {
            "client_pause"
        },
    );
    out
}

/// `reply` with its section under `heading`, if it has one, replaced by
/// `section`.
fn with_section(reply: Reply, heading: &str, section: &str) -> Reply {
    map_text(reply, |text| {
        let start = text.find(heading)?;
        // Sections end with a blank line, which stays.
        let end = text[start..]
            .find("\r\n\r\n")
            .map_or(text.len(), |at| start + at + 2);
        Some(format!("{}{section}{}", &text[..start], &text[end..]))
    })
}

/// `reply`, an INFO text, changed by `change` (unchanged for `None`).
fn map_text(reply: Reply, change: impl FnOnce(&str) -> Option<String>) -> Reply {
    let frame = match &reply {
        Reply::Raw(raw) => match Frame::parse_complete(raw) {
            Ok(frame) => frame,
            Err(_) => return reply,
        },
        Reply::Frame(frame) => frame.clone(),
        Reply::Admitted => return reply,
    };
    let rebuild =
        |text: &Bytes| -> Option<Bytes> { change(std::str::from_utf8(text).ok()?).map(Bytes::from) };
    match frame {
        Frame::Bulk(text) => rebuild(&text).map_or(reply, |text| Reply::Frame(Frame::Bulk(text))),
        Frame::Verbatim { format, text } => {
            rebuild(&text).map_or(reply, |text| Reply::Frame(Frame::Verbatim { format, text }))
        }
        _ => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_clients_section_is_replaced() {
        let text = "# Server\r\nv:1\r\n\r\n# Clients\r\nconnected_clients:3\r\n\r\n# Memory\r\nm:2\r\n";
        let reply = with_section(
            Reply::Frame(Frame::Bulk(Bytes::from(text))),
            "# Clients\r\n",
            "# Clients\r\nmine:1\r\n",
        );
        assert_eq!(
            reply,
            Reply::Frame(Frame::Bulk(Bytes::from(
                "# Server\r\nv:1\r\n\r\n# Clients\r\nmine:1\r\n\r\n# Memory\r\nm:2\r\n"
            )))
        );
        let last = "# Clients\r\nconnected_clients:3\r\n";
        let reply = with_section(
            Reply::Frame(Frame::Bulk(Bytes::from(last))),
            "# Clients\r\n",
            "# Clients\r\nmine:1\r\n",
        );
        assert_eq!(
            reply,
            Reply::Frame(Frame::Bulk(Bytes::from("# Clients\r\nmine:1\r\n")))
        );
    }

    #[test]
    fn a_tenants_databases_are_numbered_from_its_base() {
        let text = "# Keyspace\r\ndb0:keys=5,expires=0\r\ndb8:keys=1,expires=0\r\ndb9:keys=2,expires=1\r\ndb12:keys=3,expires=0\r\n";
        assert_eq!(
            own_databases(text, (8, 4)),
            "# Keyspace\r\ndb0:keys=1,expires=0\r\ndb1:keys=2,expires=1\r\n"
        );
    }
}
