//! Git push hooks' records as messages; the secret only in the answer to
//! `AddHook`.

use berth_proto::v1 as pb;
use berth_shared::record::{CreatedHook, HookView, PushView};

pub fn list(records: Vec<HookView>) -> pb::HookList {
    pb::HookList {
        hooks: records.into_iter().map(view).collect(),
    }
}

pub fn reply(record: HookView) -> pb::HookReply {
    pb::HookReply {
        hook: Some(view(record)),
    }
}

pub fn created(created: CreatedHook) -> pb::CreatedHookReply {
    pb::CreatedHookReply {
        hook: Some(view(created.hook)),
        url: created.url,
        secret: created.secret,
    }
}

fn view(record: HookView) -> pb::HookView {
    let HookView {
        id,
        app,
        environment,
        git_ref,
        repo,
        path,
        provider,
        credential,
        build_labels,
        accepted,
        refused,
        pushes,
        created_at,
        created_by,
    } = record;
    pb::HookView {
        id,
        app,
        environment,
        git_ref,
        repo,
        path,
        provider: provider.to_string(),
        credential,
        build_labels,
        accepted,
        refused,
        pushes: pushes.into_iter().map(push).collect(),
        created_at_ms: created_at.0,
        created_by,
    }
}

fn push(record: PushView) -> pb::PushView {
    let PushView {
        id,
        delivery,
        git_ref,
        commit,
        message,
        author,
        commit_time,
        state,
        deployment,
        error,
        received_at,
    } = record;
    pb::PushView {
        id,
        delivery,
        git_ref,
        commit,
        message,
        author,
        commit_time_ms: commit_time.map(|at| at.0),
        state: state.as_str().to_string(),
        deployment,
        error,
        received_at_ms: received_at.0,
    }
}

#[cfg(test)]
mod tests {
    use berth_cli::wire;
    use berth_shared::record::{GitProvider, PushState, Timestamp};

    use super::*;
    use crate::grpc::cli::records::tests::round_trip;

    #[test]
    fn hooks_round_trip_through_the_wire() {
        let hook = HookView {
            id: "01JF3Z8Q9V0000000000000000".into(),
            app: "web".into(),
            environment: "prod".into(),
            git_ref: "refs/tags/v*".into(),
            repo: "https://git.example.com/acme/web.git".into(),
            path: Some("deploy".into()),
            provider: GitProvider::Gitlab,
            credential: Some("DEPLOY_KEY".into()),
            build_labels: "role=build".into(),
            accepted: 3,
            refused: 2,
            pushes: vec![PushView {
                id: "01JF3Z8Q9V0000000000000001".into(),
                delivery: "d-1".into(),
                git_ref: "refs/tags/v1".into(),
                commit: "abc".into(),
                message: Some("release".into()),
                author: Some("Ana".into()),
                commit_time: Some(Timestamp(1_700_000_000_000)),
                state: PushState::Failed,
                deployment: Some("01JF3Z8Q9V0000000000000002".into()),
                error: Some("no berth.toml".into()),
                received_at: Timestamp(1_700_000_001_000),
            }],
            created_at: Timestamp(1_600_000_000_000),
            created_by: "ana".into(),
        };
        round_trip(&hook, reply, wire::hook);
        round_trip(&vec![hook.clone()], list, wire::hooks);
        let made = CreatedHook {
            hook,
            url: "/api/v1/hooks/git/01JF3Z8Q9V0000000000000000".into(),
            secret: "f00d".into(),
        };
        round_trip(&made, created, wire::created_hook);
    }
}
