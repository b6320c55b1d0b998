//! CRC16 and hash tags agree with a real server's CLUSTER KEYSLOT on 100k
//! random binary keys (many with braces, to exercise hash tags).

use bytes::Bytes;
use futures::future::join_all;
use pool::{Endpoint, Pool, PoolConfig};
use rand::{Rng, SeedableRng};
use resp::{Frame, Request};
use test_util::{Flavor, Server};
use valkey_proxy_router::slot::key_slot;

fn random_key(rng: &mut impl Rng) -> Vec<u8> {
    let len = rng.random_range(0..24);
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0 => b'{',
            1 => b'}',
            _ => rng.random(),
        })
        .collect()
}

#[tokio::test]
async fn crc16_matches_cluster_keyslot() {
    let server = Server::start_with(Flavor::Valkey, &[("cluster-enabled", "yes")]);
    let pool = Pool::new(PoolConfig::default());
    let endpoint = Endpoint::new(server.addr());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let keys: Vec<Vec<u8>> = (0..100_000).map(|_| random_key(&mut rng)).collect();
    let mut mismatches = 0;
    for chunk in keys.chunks(5_000) {
        let replies = join_all(chunk.iter().map(|key| {
            let request = Request::from_args([
                Bytes::from_static(b"CLUSTER"),
                Bytes::from_static(b"KEYSLOT"),
                Bytes::copy_from_slice(key),
            ]);
            pool.call(&endpoint, request.raw().clone())
        }))
        .await;
        for (key, reply) in chunk.iter().zip(replies) {
            let server_slot = Frame::parse_complete(&reply.unwrap())
                .unwrap()
                .as_integer()
                .unwrap();
            if server_slot != i64::from(key_slot(key)) {
                mismatches += 1;
            }
        }
    }
    assert_eq!(mismatches, 0);
}
