-- berth's controller store on PostgreSQL, first schema.
--
-- Each of the store's trees is a table of ordered byte keys and values,
-- the same bytes sled keeps (see controller/src/store/kv/pg.rs). bytea
-- compares as memcmp does, so the primary key's order is sled's order.

CREATE SEQUENCE berth_ids;

CREATE TABLE kv_deployments (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_idx_app_env (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_idx_status (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_idx_user (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_idx_idempotency (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_log_chunks (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_agents (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_agent_names (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_principals (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_tokens (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_registries (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_users (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_api_tokens (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_sessions (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_setup_links (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_blobs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_blob_grants (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_audit (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_ratings (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_environments (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_secret_names (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_secrets (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_jobs (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_builds (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_webhooks (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_hooks (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_hook_seen (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_pushes (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_webhook_outbox (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_webhook_deliveries (k bytea PRIMARY KEY, v bytea NOT NULL);
CREATE TABLE kv_meta (k bytea PRIMARY KEY, v bytea NOT NULL);
