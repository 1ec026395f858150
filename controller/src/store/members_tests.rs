//! Several controllers on one PostgreSQL store, as two stores opened on
//! the same schema: each sees the other serve while its session holds its
//! lock, an agent's lease is the newest stream's, an offline command is
//! refused while any serves, and a signal sent by one reaches the other.

use std::time::Duration;

use berth_shared::id::AgentId;

use super::kv::pg::{Heard, Settings};
use super::{Lease, Member, Store};

fn member(id: &str, listen: &str) -> Member {
    Member {
        id: id.into(),
        host: "test host".into(),
        pid: 7,
        listen: listen.into(),
        since_ms: 0,
    }
}

fn open(url: &str) -> Store {
    Store::open_postgres(Settings::new(url, None, None).expect("settings")).expect("open")
}

#[test]
fn two_controllers_see_each_other_share_leases_and_signal() {
    let Some(url) = super::kv::tests::fresh_url() else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(controllers(url));
}

async fn controllers(url: String) {
    let (a, b) = (open(&url), open(&url));
    let held_a = a.join(&member("aaaa0001", "127.0.0.1:1")).expect("join a");
    let held_b = b.join(&member("bbbb0002", "127.0.0.1:2")).expect("join b");
    assert!(held_a.is_some() && held_b.is_some());
    let mut ids: Vec<String> = a
        .members()
        .expect("members")
        .into_iter()
        .map(|m| m.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["aaaa0001", "bbbb0002"]);
    assert!(
        a.refuse_while_served().is_err(),
        "an offline command waits for every controller to stop"
    );

    // The newest stream's lease stays when the older one ends.
    let agent = AgentId::new();
    let on_a = Lease {
        controller: "aaaa0001".into(),
        conn: 1,
    };
    let on_b = Lease {
        controller: "bbbb0002".into(),
        conn: 9,
    };
    a.put_lease(agent, &on_a).expect("lease a");
    b.put_lease(agent, &on_b).expect("lease b");
    a.drop_lease(agent, &on_a).expect("drop a");
    assert_eq!(b.lease(agent).expect("lease"), Some(on_b.clone()));
    assert_eq!(a.leases().expect("leases"), vec![(agent, on_b.clone())]);
    let counts = a.leases_by_controller().expect("counts");
    assert_eq!(counts.get("bbbb0002"), Some(&1));
    assert_eq!(counts.get("aaaa0001"), None);

    // Only the lease's controller claims the agent's task, and each claim
    // draws a new generation in the same transaction.
    let deployment = crate::testing::deployment(&["h1"], 0);
    a.create_deployment(&deployment, true, false)
        .expect("create");
    let refused = a.claim_task(deployment.id, agent, Some("aaaa0001"), |_, _| Ok(()));
    assert!(
        matches!(&refused, Err(crate::store::StoreError::Conflict(reason)) if reason.contains("bbbb0002")),
        "{refused:?}"
    );
    let (_, first) = b
        .claim_task(deployment.id, agent, Some("bbbb0002"), |_, generation| {
            Ok(generation)
        })
        .expect("claimed");
    let (_, second) = a
        .claim_task(
            deployment.id,
            AgentId::new(),
            Some("aaaa0001"),
            |_, generation| Ok(generation),
        )
        .expect("an agent without a lease");
    assert!(second > first, "{second} after {first}");
    assert!(b.next_generation().expect("generation") > second);

    // A controller whose session ended is no longer one of them.
    drop(held_b);
    let gone = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let members = a.members().expect("members");
            if members.iter().all(|m| m.id != "bbbb0002") {
                return members;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("b left within 10s");
    assert_eq!(gone.len(), 1);

    // A signal from one reaches the other's listener.
    let (send, _own) = a.bus().expect("bus a").expect("postgres");
    let (_b_send, mut heard) = b.bus().expect("bus b").expect("postgres");
    // Listening starts on a thread: send until one arrives.
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            send.send("hello from a".into());
            if let Ok(Some(Heard::Signal(payload))) =
                tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
            {
                return payload;
            }
        }
    })
    .await
    .expect("a signal within 10s");
    assert_eq!(got, "hello from a");
    drop(held_a);
}
