//! The router alone, as a gateway would use it: learn a cluster's layout,
//! then decide for each request which node serves it, with no proxy around.
//!
//! ```text
//! cargo run --example router_only -- 127.0.0.1:7001 GET user:1 MGET a b
//! ```

use bytes::Bytes;
use resp::Request;
use router::{select, CommandTable, Route};
use topology::{discover, DiscoveryConfig, TcpProbe};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        args = vec!["127.0.0.1:7001".into(), "GET".into(), "user:1".into()];
    }
    let seed = args.remove(0);
    let config = DiscoveryConfig {
        mode: None,
        seeds: vec![seed],
    };
    let topology = discover(&config, &TcpProbe::default()).await?;
    let table = CommandTable::builtin();
    println!(
        "{} backend with {} shard(s)",
        topology.mode(),
        topology.shards().len()
    );
    // Arguments after the seed are read as commands, each starting at an
    // upper-case word.
    let mut commands: Vec<Vec<String>> = Vec::new();
    for arg in args {
        if arg.chars().all(|c| c.is_ascii_uppercase()) || commands.is_empty() {
            commands.push(vec![arg]);
        } else if let Some(last) = commands.last_mut() {
            last.push(arg);
        }
    }
    for command in commands {
        let request = Request::from_args(command.iter().map(|a| Bytes::from(a.clone())));
        let spec = table.lookup(&request);
        let route = select(&request, spec.map(|s| &**s), &topology)?;
        let target = match route {
            Route::Shard { shard, .. } => topology.shards()[shard as usize].primary.to_string(),
            other => format!("{other:?}"),
        };
        println!("{:<40} -> {target}", command.join(" "));
    }
    Ok(())
}
